"""The app as deployed, with ALERT_WEBHOOK_URL set: a logout from the phone reaches the operator's chat once, and so
does the recovery; the watch runs by itself in the process holding the session."""

from __future__ import annotations

import httpx

from app.alerts.watch import Alerts
from app.session.states import State
from app.session.supervisor import Supervisor
from tests.processes import TOKEN
from tests.session.conftest import wait_state
from tests.web.conftest import ClientFactory, app_client
from tests.webhooks.receiver import Receiver

__all__ = ["app_client"]

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def services(client: httpx.AsyncClient) -> tuple[Supervisor, Alerts]:
    found = client.app.state.services  # type: ignore[attr-defined]
    return found.supervisor, found.alerts


async def pair(client: httpx.AsyncClient, supervisor: Supervisor) -> None:
    await wait_state(supervisor, State.PAIRING)
    response = await client.post("/api/simulator/pair", headers=AUTH, json={"phone": "+6281234567890"})
    assert response.status_code == 202
    await wait_state(supervisor, State.CONNECTED)


async def test_a_logout_from_the_phone_is_alerted_once_and_recovers(
    app_client: ClientFactory, receiver: Receiver
) -> None:
    async with app_client(ALERT_WEBHOOK_URL=receiver.url) as client:
        supervisor, alerts = services(client)
        await pair(client, supervisor)
        response = await client.post("/api/simulator/disconnect", headers=AUTH, json={"reason": "logged_out"})
        assert response.status_code == 202
        received = await receiver.until(lambda received: len(received) >= 1)
        assert "logged this device out" in received[0].json()["text"]
        await pair(client, supervisor)
        received = await receiver.until(lambda received: len(received) >= 2)
        assert "resolved" in received[1].json()["content"]
        await alerts.passed(alerts.passes + 2)  # two more passes: nothing is repeated
        assert len(receiver.received) == 2
