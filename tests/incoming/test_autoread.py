"""AUTO_READ through the app: a message is marked read at WhatsApp once a webhook endpoint took its event, naming its
sender; a message whose delivery failed is not."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from app.session.states import State
from tests.processes import TOKEN
from tests.session.conftest import wait_state
from tests.web.conftest import app_client, state_of
from tests.webhooks.receiver import Received, Receiver, Reply

__all__ = ["app_client"]

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def refuse_some(request: Received) -> Reply:
    return Reply(500 if request.data.get("text") == "refused" else 200)


async def marked(client: httpx.AsyncClient, message_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The simulated server's read receipt naming `message_id` (the auto-reader acts in its own task; polled)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await client.post("/api/simulator/actions", headers=AUTH)
        for action in answer.json()["actions"]:
            if action["action"] == "mark_read" and message_id in action["message_ids"]:
                return dict(action)
        assert time.monotonic() < deadline, f"{message_id} was never marked read"
        await asyncio.sleep(0.05)


async def test_messages_are_marked_read_once_a_webhook_took_them(app_client: Any) -> None:
    receiver = Receiver(refuse_some).start()
    env = {"AUTO_READ": "true", "WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": "s" * 32}
    try:
        async with app_client(**env) as client:
            supervisor = state_of(client)["supervisor"]
            await wait_state(supervisor, State.PAIRING)
            paired = await client.post("/api/simulator/pair", headers=AUTH, json={"phone": "+6281234567890"})
            assert paired.status_code == 202
            await wait_state(supervisor, State.CONNECTED)

            async def incoming(**body: Any) -> str:
                answer = await client.post("/api/simulator/incoming", headers=AUTH, json=body)
                assert answer.status_code == 202
                return str(answer.json()["message_id"])

            refused = await incoming(**{"from": "+6283333333333", "text": "refused"})
            await receiver.until(lambda got: any(item.data.get("message_id") == refused for item in got))
            direct = await incoming(**{"from": "+6281111111111", "text": "halo"})
            in_group = await incoming(**{"from": "+6282222222222", "group": "120363021234567890", "text": "hi"})
            own = await incoming(**{"from": "+6281111111111", "text": "from the phone", "from_me": True})

            one = await marked(client, direct)
            assert (one["chat"], one["sender"]) == ("6281111111111@s.whatsapp.net", "6281111111111@s.whatsapp.net")
            group = await marked(client, in_group)
            assert (group["chat"], group["sender"]) == ("120363021234567890@g.us", "6282222222222@s.whatsapp.net")
            await receiver.until(lambda got: any(item.data.get("message_id") == own for item in got))
            last = await incoming(**{"from": "+6281111111111", "text": "after the phone's own message"})
            await marked(client, last)  # receipts go in the order their deliveries succeeded
            answer = await client.post("/api/simulator/actions", headers=AUTH)
            actions = answer.json()["actions"]
            read = [i for action in actions if action["action"] == "mark_read" for i in action["message_ids"]]
            assert refused not in read and own not in read  # a failed delivery, and our own message, stay unread
            assert read.count(direct) == 1
    finally:
        receiver.close()
