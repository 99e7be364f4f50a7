"""Every kind of message (files, a location, a contact card, replies) through the app, the durable queue, the sender,
the worker and the simulated WhatsApp: what went out, the file handed over and taken back, refusals as 422s."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from app.media import store as media_store
from app.ogg import is_ogg_opus
from app.phone import parse_recipient
from app.sending import queue
from app.session.states import State
from app.whatsapp import samples
from tests.media.test_fetch import server
from tests.media.test_voice import tone
from tests.processes import TOKEN
from tests.sending.test_actions import server_actions, status_events, until_status
from tests.session.conftest import wait_state
from tests.web.conftest import ClientFactory, linked_app, state_of

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTACT = "+6281111111111"
CONTACT_JID = "6281111111111@s.whatsapp.net"


@pytest.fixture
async def linked(app_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with linked_app(app_client, SEND_MIN_INTERVAL="0") as client:
        yield client


async def stored_file(client: httpx.AsyncClient, kind: str) -> tuple[str, bytes]:
    """A file in the media table (as a received one is stored), from the simulator's samples: its id and bytes."""
    found = samples.sample(kind)
    assert found is not None
    data, mimetype, file_name = found
    async with state_of(client)["database"].connection() as connection:
        media_id = await media_store.save(
            connection, chat=CONTACT_JID, message_id=f"IN-{uuid.uuid4().hex[:8]}", mimetype=mimetype,
            sha256=hashlib.sha256(data).hexdigest(), file_name=file_name, data=data,
        )  # fmt: skip
    return str(media_id), data


def handed_files(client: httpx.AsyncClient) -> list[str]:
    """Files for the worker still in the app's media folder."""
    folder = state_of(client)["sender"].media_dir
    assert folder is not None
    return [name for name in os.listdir(folder) if name.endswith(".send")]


async def sent_messages(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """What the simulated server sent besides plain texts, by WhatsApp's id."""
    return {action["message_id"]: action for action in await server_actions(client, "send_message")}


async def send(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post("/api/messages", headers={**AUTH, **headers}, json={"to": CONTACT, **body})


async def test_every_kind_goes_out_with_what_it_carries(linked: httpx.AsyncClient) -> None:
    files = {kind: await stored_file(linked, kind) for kind in ("image", "video", "audio", "document", "sticker")}
    bodies: dict[str, dict[str, Any]] = {
        "image": {"image": {"media_id": files["image"][0], "caption": "Your receipt"}},
        "video": {"video": {"media_id": files["video"][0], "caption": "How to", "mimetype": "video/mp4"}},
        "audio": {"audio": {"media_id": files["audio"][0], "ptt": True}},
        "document": {"document": {"media_id": files["document"][0], "file_name": "invoice-1234.pdf"}},
        "sticker": {"sticker": {"media_id": files["sticker"][0], "mimetype": "image/webp"}},
        "location": {"location": {"latitude": -6.2, "longitude": 106.816666, "name": "Toko Maju"}},
        "contact": {"contact": {"name": "Budi Santoso", "phone": "+6289876543210"}},
    }
    queued = {}
    for kind, body in bodies.items():
        response = await send(linked, body)
        assert response.status_code == 202, response.text
        assert response.json()["kind"] == kind and response.json()["status"] == "queued"
        queued[kind] = response.json()
    assert queued["image"]["content"] == {
        "media_id": files["image"][0],
        "mimetype": "image/png",  # as stored
        "caption": "Your receipt",
    }
    assert queued["document"]["content"]["file_name"] == "invoice-1234.pdf"  # as given, over the stored order.pdf
    assert queued["audio"]["content"]["ptt"] is True
    vcard = queued["contact"]["content"]["vcard"]
    assert vcard == (
        "BEGIN:VCARD\nVERSION:3.0\nFN:Budi Santoso\nTEL;type=CELL;waid=6289876543210:+6289876543210\nEND:VCARD"
    )
    sent = {kind: await until_status(linked, message["id"], "sent") for kind, message in queued.items()}
    out = await sent_messages(linked)
    for kind, message in sent.items():
        action = out[message["message_id"]]
        assert action["to"] == CONTACT_JID and action["reply"] is None
        assert action["content"] == {"type": kind, **queued[kind]["content"]}
        if kind in files:  # the stored bytes went to the worker whole
            data = files[kind][1]
            assert (action["sha256"], action["size"]) == (hashlib.sha256(data).hexdigest(), len(data))
        else:
            assert "sha256" not in action
        [*_, last] = await status_events(linked, message["id"])
        assert (last["status"], last["kind"]) == ("sent", kind)
    assert handed_files(linked) == []  # every file handed over was deleted after the worker's answer
    listed = (await linked.get("/api/messages", headers=AUTH)).json()["items"]
    assert {item["kind"] for item in listed} == set(bodies)


async def test_a_file_sent_as_a_reply_quotes_the_received_message(linked: httpx.AsyncClient) -> None:
    incoming = await linked.post(
        "/api/simulator/incoming", headers=AUTH, json={"from": CONTACT, "text": "Do you have it in blue?"}
    )
    whatsapp_id = incoming.json()["message_id"]
    database = state_of(linked)["database"]
    deadline = time.monotonic() + 15
    while True:  # the store writes it in its own task; the row is the signal
        async with database.connection() as connection:
            if await connection.fetchval("SELECT 1 FROM incoming_messages WHERE message_id = $1", whatsapp_id):
                break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    media_id, _ = await stored_file(linked, "image")
    reply = await send(linked, {"image": {"media_id": media_id, "caption": "This one"}, "reply_to": whatsapp_id})
    assert reply.status_code == 202 and reply.json()["reply_to"] == whatsapp_id
    ours = await until_status(linked, reply.json()["id"], "sent")
    text_reply = await send(linked, {"text": "Sent above", "reply_to": ours["message_id"]})  # to our own message
    answered = await until_status(linked, text_reply.json()["id"], "sent")
    out = await sent_messages(linked)
    # The simulator has no raw message for what it made up (quoted: None); the replay test checks the real quote.
    assert out[ours["message_id"]]["reply"] == {"id": whatsapp_id, "sender": CONTACT_JID, "quoted": None}
    assert out[answered["message_id"]]["reply"] == {"id": ours["message_id"], "sender": None, "quoted": None}
    assert out[answered["message_id"]]["content"] == {"type": "text", "text": "Sent above", "mentions": None}

    unknown = await send(linked, {"text": "hm", "reply_to": "3EB0UNKNOWN"})
    assert unknown.status_code == 422 and "'reply_to': no message '3EB0UNKNOWN'" in unknown.json()["detail"]
    elsewhere = await linked.post(  # the id exists, but in another chat
        "/api/messages", headers=AUTH, json={"to": "+6282222222222", "text": "hm", "reply_to": whatsapp_id}
    )
    assert elsewhere.status_code == 422


async def test_a_failed_try_is_retried_and_the_file_handed_over_again(linked: httpx.AsyncClient) -> None:
    failing = await linked.post(
        "/api/simulator/send_failures", headers=AUTH, json={"count": 1, "error": "server returned error 500"}
    )
    assert failing.status_code == 202
    media_id, data = await stored_file(linked, "document")
    queued = await send(linked, {"document": {"media_id": media_id}})
    sent = await until_status(linked, queued.json()["id"], "sent")
    assert sent["attempts"] == 2 and sent["error"] is None
    assert (await sent_messages(linked))[sent["message_id"]]["sha256"] == hashlib.sha256(data).hexdigest()
    statuses = [event["status"] for event in await status_events(linked, queued.json()["id"])]
    assert statuses == ["sending", "queued", "sending", "sent"]
    assert handed_files(linked) == []


async def test_a_send_given_up_on_deletes_its_file_and_a_late_answer_still_counts(linked: httpx.AsyncClient) -> None:
    supervisor = state_of(linked)["supervisor"]
    supervisor.send_timeout = 0.5  # the simulated WhatsApp answers after 1.5 s: past it
    await linked.post("/api/simulator/send_failures", headers=AUTH, json={"count": 1, "delay": 1.5})
    media_id, _ = await stored_file(linked, "image")
    queued = await send(linked, {"image": {"media_id": media_id}})
    failed = await until_status(linked, queued.json()["id"], "failed")
    assert failed["error"].startswith("interrupted:")
    assert handed_files(linked) == []  # taken back when the parent stopped waiting
    late = await until_status(linked, queued.json()["id"], "sent")  # the worker had read it: it went out
    assert late["message_id"] in await sent_messages(linked)


async def test_a_file_removed_while_queued_fails_the_message_for_good(app_client: ClientFactory) -> None:
    async with app_client(SEND_MIN_INTERVAL="0") as client:
        supervisor = state_of(client)["supervisor"]
        await wait_state(supervisor, State.PAIRING)  # not linked yet: the message waits in the queue
        media_id, _ = await stored_file(client, "image")
        queued = await send(client, {"image": {"media_id": media_id}})
        assert queued.status_code == 202
        async with state_of(client)["database"].connection() as connection:
            await connection.execute(
                "UPDATE media SET bytes = NULL, removed = 'removed: test' WHERE id = $1::uuid", media_id
            )
        await client.post("/api/simulator/pair", headers=AUTH, json={"phone": "+6281234567890"})
        failed = await until_status(client, queued.json()["id"], "failed")
        assert failed["error"] == f"the file {media_id} is no longer stored (deleted or removed)"
        assert failed["attempts"] == 1 and handed_files(client) == []


async def test_receipts_move_a_file_message_forward(linked: httpx.AsyncClient) -> None:
    media_id, _ = await stored_file(linked, "sticker")
    queued = await send(linked, {"sticker": {"media_id": media_id}})
    sent = await until_status(linked, queued.json()["id"], "sent")
    await linked.post(
        "/api/simulator/receipt",
        headers=AUTH,
        json={"from": CONTACT, "message_ids": [sent["message_id"]], "status": "read"},
    )
    assert (await until_status(linked, queued.json()["id"], "read"))["read_at"] is not None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"text": "hi", "image": {"media_id": str(uuid.uuid4())}}, "give 'text' alone, or exactly one of"),
        ({"image": {"media_id": str(uuid.uuid4())}, "location": {"latitude": 0, "longitude": 0}}, "not several"),
        ({"image": {"media_id": "abc"}}, "'image.media_id' must be a UUID"),
        ({"image": {}}, "'image' must give either 'url' or 'media_id'"),
        ({"image": {"url": "https://example.com/a.png", "media_id": str(uuid.uuid4())}}, "not both"),
        ({"sticker": {"media_id": str(uuid.uuid4()), "caption": "x"}}, "WhatsApp shows no caption on sticker"),
        ({"image": {"media_id": str(uuid.uuid4()), "ptt": True}}, "'image.ptt' is for audio only"),
        ({"image": {"media_id": str(uuid.uuid4())}, "typing": True}, "'typing' is shown only before a text"),
        ({"location": {"latitude": 91, "longitude": 0}}, "'location.latitude' must be a number from -90 to 90"),
        ({"location": {"latitude": 0, "longitude": -180.5}}, "'location.longitude' must be a number from -180 to 180"),
        ({"location": {"latitude": "1", "longitude": 0}}, "'location.latitude' must be a number"),
        ({"contact": {"name": "Budi"}}, "'contact' must give 'name' and 'phone', or a 'vcard'"),
        ({"contact": {"name": "Budi", "phone": "0812"}}, "'contact.phone' '0812' is not in international form"),
        ({"contact": {"vcard": "hello"}}, "'contact.vcard' must be a vCard"),
        (
            {"contact": {"vcard": "BEGIN:VCARD\n" + "x" * 10000 + "\nEND:VCARD"}},
            "'contact.vcard' must be a vCard of up to 10000",
        ),
    ],
)
async def test_invalid_kinds_are_422s_naming_the_problem(
    app_client: ClientFactory, body: dict[str, Any], words: str
) -> None:
    async with app_client() as client:  # refused before anything is queued: no linked account needed
        response = await send(client, body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert words in detail, detail


async def test_a_file_must_be_stored_and_kept(linked: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    response = await send(linked, {"document": {"media_id": missing}})
    assert response.status_code == 422
    assert response.json()["detail"] == f"'document.media_id': no stored file has the id {missing}"
    media_id, _ = await stored_file(linked, "image")
    async with state_of(linked)["database"].connection() as connection:
        await connection.execute("UPDATE media SET bytes = NULL, removed = 'removed: over the cap' WHERE id = $1::uuid",
                                 media_id)  # fmt: skip
    removed = await send(linked, {"image": {"media_id": media_id}})
    assert removed.status_code == 422
    assert "is no longer stored (removed: over the cap)" in removed.json()["detail"]
    private = await send(linked, {"image": {"url": "http://127.0.0.1:9/a.png"}})  # MEDIA_FETCH_ALLOW_PRIVATE unset
    assert private.status_code == 422 and "'image.url'" in private.json()["detail"]
    assert "127.0.0.1" in private.json()["detail"] and "MEDIA_FETCH_ALLOW_PRIVATE" in private.json()["detail"]
    png, _ = await stored_file(linked, "image")
    sticker = await send(linked, {"sticker": {"media_id": png}})  # WhatsApp's stickers are WebP
    assert sticker.status_code == 422 and "image/png" in sticker.json()["detail"], sticker.text
    async with state_of(linked)["database"].connection() as connection:
        assert await connection.fetchval("SELECT count(*) FROM outgoing_messages") == 0


async def test_a_vcard_is_sent_as_given(linked: httpx.AsyncClient) -> None:
    card = "BEGIN:VCARD\nVERSION:3.0\nFN:Toko Maju\nTEL;type=WORK;waid=6281234567890:+6281234567890\nEND:VCARD"
    response = await send(linked, {"contact": {"vcard": card}})
    assert response.status_code == 202
    assert response.json()["content"] == {"name": "Toko Maju", "vcard": card}  # the name shown: the card's FN


async def test_idempotency_covers_the_new_fields_and_old_keys_still_match(linked: httpx.AsyncClient) -> None:
    recipient = parse_recipient(CONTACT)
    old = hashlib.sha256(json.dumps([recipient.jid, "hi"], ensure_ascii=False).encode()).hexdigest()
    assert queue.request_hash(recipient, "hi") == old  # a text queued before this change matches its retry
    media_id, _ = await stored_file(linked, "image")
    first = await send(linked, {"image": {"media_id": media_id, "caption": "a"}}, **{"Idempotency-Key": "k-1"})
    again = await send(linked, {"image": {"media_id": media_id, "caption": "a"}}, **{"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (202, 200) and first.json()["id"] == again.json()["id"]
    other = await send(linked, {"image": {"media_id": media_id, "caption": "b"}}, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 409
    located = await send(linked, {"location": {"latitude": 1, "longitude": 2}}, **{"Idempotency-Key": "k-1"})
    assert located.status_code == 409


async def test_a_file_can_be_reacted_to_and_deleted_but_only_a_text_edited(linked: httpx.AsyncClient) -> None:
    media_id, _ = await stored_file(linked, "image")
    queued = await send(linked, {"image": {"media_id": media_id, "caption": "v1"}})
    sent = await until_status(linked, queued.json()["id"], "sent")
    edited = await linked.patch(f"/api/messages/{sent['id']}", headers=AUTH, json={"text": "v2"})
    assert edited.status_code == 422
    assert edited.json()["detail"] == "only a text can be edited; this message's kind is image"
    reacted = await linked.post(f"/api/messages/{sent['id']}/reaction", headers=AUTH, json={"emoji": "👍"})
    assert reacted.status_code == 202 and reacted.json()["kind"] == "reaction"
    deleted = await linked.delete(f"/api/messages/{sent['id']}", headers=AUTH)
    assert deleted.status_code == 202 and deleted.json()["kind"] == "delete"


async def test_a_contact_name_is_escaped_in_the_vcard(linked: httpx.AsyncClient) -> None:
    response = await send(linked, {"contact": {"name": "Budi; Jr, \\ Toko", "phone": "+6289876543210"}})
    assert response.status_code == 202
    assert "\nFN:Budi\\; Jr\\, \\\\ Toko\n" in response.json()["content"]["vcard"]


@pytest.fixture
async def receipt_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A real local server with a PNG at /receipt.png: its base URL, and the paths it was asked for."""
    hits: list[str] = []

    async def image(request: web.Request) -> web.StreamResponse:
        hits.append(request.path)
        return web.Response(body=samples.png(), content_type="image/png")

    async with server("127.0.0.1", {"/receipt.png": image}) as base:
        yield base, hits


@pytest.fixture
async def fetching(app_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The linked app, allowed to fetch a send's url from this machine (the test's server is on loopback)."""
    async with linked_app(app_client, SEND_MIN_INTERVAL="0", MEDIA_FETCH_ALLOW_PRIVATE="true") as client:
        yield client


async def test_a_file_at_a_url_is_fetched_once_when_queued_and_sent(
    receipt_server: tuple[str, list[str]], fetching: httpx.AsyncClient
) -> None:
    (base, hits), client = receipt_server, fetching
    queued = await send(client, {"image": {"url": f"{base}/receipt.png", "caption": "Your receipt"}})
    assert queued.status_code == 202, queued.text
    assert hits == ["/receipt.png"]  # fetched while the request was answered, not when the message's turn came
    media_id = queued.json()["content"]["media_id"]
    async with state_of(client)["database"].connection() as connection:
        origin = await connection.fetchval("SELECT origin FROM media WHERE id = $1::uuid", media_id)
    assert origin == "fetched" and queued.json()["content"]["mimetype"] == "image/png"
    sent = await until_status(client, queued.json()["id"], "sent")
    action = (await sent_messages(client))[sent["message_id"]]
    assert action["sha256"] == hashlib.sha256(samples.png()).hexdigest()
    assert hits == ["/receipt.png"]  # and never again
    missing = await send(client, {"image": {"url": f"{base}/gone.png"}})
    assert missing.status_code == 502 and "404" in missing.json()["detail"], missing.text


async def test_a_voice_note_in_another_format_is_sent_as_its_ogg_opus_copy(linked: httpx.AsyncClient) -> None:
    wav = tone(1.0)
    uploaded = await linked.post("/api/media", headers=AUTH, files={"file": ("memo.wav", wav, "audio/wav")})
    assert uploaded.status_code == 201, uploaded.text
    original = uploaded.json()["media_id"]
    queued = await send(linked, {"audio": {"media_id": original, "ptt": True}})
    assert queued.status_code == 202, queued.text
    content = queued.json()["content"]
    assert content["media_id"] != original and content["mimetype"] == "audio/ogg; codecs=opus"
    assert content["ptt"] is True
    async with state_of(linked)["database"].connection() as connection:
        converted = await media_store.content(connection, uuid.UUID(content["media_id"]))
    assert converted is not None and is_ogg_opus(converted)
    sent = await until_status(linked, queued.json()["id"], "sent")
    action = (await sent_messages(linked))[sent["message_id"]]
    assert action["sha256"] == hashlib.sha256(converted).hexdigest()  # the worker got the converted copy
    document = await linked.post("/api/media", headers=AUTH, files={"file": ("order.pdf", samples.pdf(), "")})
    refused = await send(linked, {"audio": {"media_id": document.json()["media_id"], "ptt": True}})
    assert refused.status_code == 422 and "application/pdf" in refused.json()["detail"], refused.text


async def test_a_retried_request_with_its_key_is_the_same_message_whatever_the_file_became(
    receipt_server: tuple[str, list[str]], fetching: httpx.AsyncClient
) -> None:
    """The key names the request as sent: a url fetched (or a voice note converted) into a new stored file each time
    must not make its retry a different message, nor fetch again."""
    (base, hits), client = receipt_server, fetching
    body = {"image": {"url": f"{base}/receipt.png"}}
    first = await send(client, body, **{"Idempotency-Key": "url-1"})
    again = await send(client, body, **{"Idempotency-Key": "url-1"})
    assert (first.status_code, again.status_code) == (202, 200), again.text
    assert again.json()["id"] == first.json()["id"] and hits == ["/receipt.png"]  # fetched once
    other = await send(client, {"image": {"url": f"{base}/receipt.png?v=2"}}, **{"Idempotency-Key": "url-1"})
    assert other.status_code == 409 and hits == ["/receipt.png"]  # a different request: refused before a fetch
    wav = tone(0.2)
    uploaded = await client.post("/api/media", headers=AUTH, files={"file": ("memo.wav", wav, "audio/wav")})
    voice = {"audio": {"media_id": uploaded.json()["media_id"], "ptt": True}}
    note = await send(client, voice, **{"Idempotency-Key": "voice-1"})
    note_again = await send(client, voice, **{"Idempotency-Key": "voice-1"})
    assert (note.status_code, note_again.status_code) == (202, 200), note_again.text
    assert note_again.json()["id"] == note.json()["id"]
