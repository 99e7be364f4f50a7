"""Parsing a body into its model: every problem is a 4xx that names the field, says what it must be, and where."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException

from app.web.endpoint import parse
from app.web.models import MessagesQuery, SendMessage
from app.web.simulator_models import SimulatorIncoming, SimulatorReceipt


def problem(model: type[SendMessage] | type[SimulatorIncoming] | type[SimulatorReceipt], raw: bytes) -> tuple[int, str]:
    with pytest.raises(HTTPException) as refused:
        parse(model, raw)
    return refused.value.status_code, str(refused.value.detail)


@pytest.mark.parametrize(
    ("model", "raw", "status", "words"),
    [
        (SendMessage, b"{not json", 400, "the body is not valid JSON"),
        (SendMessage, b"[" * 1000 + b"]" * 1000, 400, "nested too deeply"),
        (SendMessage, b'{"to": "\\ud800", "text": "x"}', 400, "the body is not valid JSON"),
        (SendMessage, b"[1, 2]", 422, "the body must be a JSON object"),
        (SendMessage, b'{"to": "+6281234567890", "text": 5}', 422, "'text' must be a string of 1 to 65536 characters"),
        (SendMessage, b'{"to": "+6281234567890", "text": "a\\u0000"}', 422, "'text' must be valid Unicode text"),
        (SimulatorIncoming, b'{"from": "+6281234567890", "media": {"size": -1}}', 422, "(media.size: "),
        (SimulatorIncoming, b'{"from": "+6281234567890", "options": ["a", ""]}', 422, "(options.1: "),
        (SimulatorIncoming, b'{"from": "+6281234567890", "type": "edit"}', 422, "'target_id' is required"),
        (SimulatorIncoming, b'{"from": "+6281234567890", "count": "3"}', 422, "'count' must be an integer from 1"),
        (SimulatorReceipt, b'{"message_ids": ["x"]}', 422, "'from' must be an international phone number"),
    ],
)
def test_problems_name_the_field(
    model: type[SendMessage] | type[SimulatorIncoming] | type[SimulatorReceipt],
    raw: bytes,
    status: int,
    words: str,
) -> None:
    assert problem(model, raw)[0] == status
    assert words in problem(model, raw)[1]


def test_every_problem_is_said_once_in_order() -> None:
    status, detail = problem(SendMessage, b'{"to": "0812", "text": ""}')
    assert status == 422 and detail.index("'to' '0812' is not in international form") < detail.index("'text'")


def test_valid_bodies_become_their_models() -> None:
    sent = parse(SendMessage, b'{"to": "+62 812-3456-7890", "text": "hi", "extra": 1}')
    assert (sent.to.jid, sent.text) == ("6281234567890@s.whatsapp.net", "hi")  # unknown fields are ignored
    batch = parse(SimulatorIncoming, b'{"from": "+6281234567890", "group": "120363025246125486", "count": 2}')
    assert batch.args()["group"] == "120363025246125486@g.us" and batch.args()["count"] == 2
    assert "count" not in parse(SimulatorIncoming, b'{"from": "+6281234567890"}').args()
    query = parse(MessagesQuery, {"limit": "7", "status": "queued"})
    assert (query.limit, query.status) == (7, "queued")  # query values arrive as text
