"""app/whatsapp/neonize_mapping.py on every item of tests/whatsapp/corpus.py (real neonize protobufs)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from app.whatsapp.backend import (
    BANNED,
    DELETED,
    DISCONNECTED,
    EDITED,
    INCOMING,
    LOGGED_OUT,
    MESSAGE,
    OUTDATED,
    PAIRING_FAILED,
    POLL_VOTE,
    PUMP_ENDED,
    REACTION,
    STATUS_POST,
    STOPPED,
    BackendError,
)
from app.whatsapp.neonize_mapping import (
    KNOWN_PUMP_FAILURES,
    PERMANENT_ERRORS,
    call_offer_to_dict,
    command_error,
    connect_failure_to_event,
    incoming_message,
    logged_out_to_dict,
    needs_phone_lookup,
    pair_status_to_event,
    pairing_failure,
    poll_vote_selection,
    pump_failure,
    receipt_to_dict,
    recipient,
    temporary_ban_to_dict,
    undecryptable_to_dict,
)
from tests.whatsapp import corpus
from tests.whatsapp.corpus import E2E, EXTRACT_TEXT, NZ, PB

COMMON = ("message_id", "chat", "from", "sender_jid", "push_name", "timestamp", "is_group", "is_from_me", "raw")
MESSAGE_FIELDS = (*COMMON, "type", "text", "media", "poll")


def mapped(builder: Callable[[], Any]) -> tuple[str, dict[str, Any]]:
    result = incoming_message(builder())
    assert result is not None, builder.__name__
    return result


def content_of(builder: Callable[[], Any]) -> dict[str, Any]:
    """The MESSAGE data of a corpus item, without the common fields (checked on their own)."""
    name, data = mapped(builder)
    assert name == MESSAGE
    return {key: data[key] for key in ("type", "text", "media", "poll")}


# -- what every incoming message carries ------------------------------------------------------------------------------

DELIVERED_MESSAGES = [name for name, builder in corpus.MESSAGES.items() if incoming_message(builder()) is not None]


def test_the_corpus_covers_every_incoming_message_event() -> None:
    names = {mapped(builder)[0] for builder in corpus.MESSAGES.values() if incoming_message(builder()) is not None}
    assert names == {MESSAGE, STATUS_POST, EDITED, DELETED, REACTION, POLL_VOTE}
    assert names <= INCOMING


@pytest.mark.parametrize("name", DELIVERED_MESSAGES)
def test_common_fields(name: str) -> None:
    event = corpus.MESSAGES[name]()
    _kind, data = mapped(corpus.MESSAGES[name])
    assert set(COMMON) <= set(data)
    assert data["message_id"] == event.Info.ID
    assert data["push_name"] == corpus.PUSH_NAME
    assert data["timestamp"] == corpus.TS_ISO  # Info.Timestamp is milliseconds
    assert isinstance(data["is_group"], bool) and isinstance(data["is_from_me"], bool)


@pytest.mark.parametrize("name", DELIVERED_MESSAGES)
def test_raw_round_trips_to_the_same_message(name: str) -> None:
    event = corpus.MESSAGES[name]()
    _kind, data = mapped(corpus.MESSAGES[name])
    assert isinstance(data["raw"], str)
    parsed = E2E.Message()
    parsed.ParseFromString(base64.b64decode(data["raw"], validate=True))
    assert parsed == event.Message
    json.dumps(data)  # the intake sends it to the parent as JSON


def test_raw_keeps_wrappers_and_media_keys() -> None:
    _kind, data = mapped(corpus.view_once_image)
    parsed = E2E.Message.FromString(base64.b64decode(data["raw"]))
    image = parsed.viewOnceMessageV2.message.imageMessage
    assert image.mediaKey == corpus.MEDIA_KEYS["mediaKey"]
    assert image.directPath == corpus.MEDIA_KEYS["directPath"]
    assert image.fileSHA256 == corpus.MEDIA_KEYS["fileSHA256"]
    assert image.fileEncSHA256 == corpus.MEDIA_KEYS["fileEncSHA256"]


@pytest.mark.parametrize("name", DELIVERED_MESSAGES)
def test_message_and_status_posts_have_the_message_fields(name: str) -> None:
    kind, data = mapped(corpus.MESSAGES[name])
    if kind in (MESSAGE, STATUS_POST):
        assert set(data) == set(MESSAGE_FIELDS)
    else:
        assert not {"type", "media", "poll"} & set(data)


# -- content types ----------------------------------------------------------------------------------------------------


def test_plain_text() -> None:
    name, data = mapped(corpus.text)
    assert name == MESSAGE
    assert data == {
        "message_id": corpus.MESSAGE_ID,
        "chat": "6281234567890@s.whatsapp.net",
        "from": "+6281234567890",
        "sender_jid": "6281234567890@s.whatsapp.net",
        "push_name": "Ana",
        "timestamp": corpus.TS_ISO,
        "is_group": False,
        "is_from_me": False,
        "raw": base64.b64encode(E2E.Message(conversation="hello").SerializeToString()).decode("ascii"),
        "type": "text",
        "text": "hello",
        "media": None,
        "poll": None,
    }


@pytest.mark.parametrize(
    ("builder", "expected"),
    [
        (corpus.extended_text, {"type": "text", "text": "see https://example.com", "media": None, "poll": None}),
        (
            corpus.image,
            {
                "type": "image",
                "text": "a cat",
                "media": {"mimetype": "image/jpeg", "size": 48213, "file_name": None},
                "poll": None,
            },
        ),
        (
            corpus.video,
            {
                "type": "video",
                "text": "the beach",
                "media": {"mimetype": "video/mp4", "size": 1_048_576, "file_name": None},
                "poll": None,
            },
        ),
        (
            corpus.voice_note,
            {
                "type": "audio",
                "text": None,
                "media": {"mimetype": "audio/ogg; codecs=opus", "size": 5120, "file_name": None},
                "poll": None,
            },
        ),
        (
            corpus.document_with_caption,
            {
                "type": "document",
                "text": "the report",
                "media": {"mimetype": "application/pdf", "size": 1024, "file_name": "invoice.pdf"},
                "poll": None,
            },
        ),
        (
            corpus.sticker,
            {
                "type": "sticker",
                "text": None,
                "media": {"mimetype": "image/webp", "size": 9000, "file_name": None},
                "poll": None,
            },
        ),
        (corpus.location, {"type": "location", "text": None, "media": None, "poll": None}),
        (corpus.contact, {"type": "contact", "text": None, "media": None, "poll": None}),
        (corpus.ephemeral_text, {"type": "text", "text": "psst", "media": None, "poll": None}),
        (corpus.unknown_content, {"type": "other", "text": None, "media": None, "poll": None}),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_content_types(builder: Callable[[], Any], expected: dict[str, Any]) -> None:
    assert content_of(builder) == expected


@pytest.mark.parametrize("builder", [corpus.view_once_image, corpus.view_once_image_unwrapped])
def test_view_once_image_is_an_image_in_either_shape(builder: Callable[[], Any]) -> None:
    content = content_of(builder)
    assert (content["type"], content["text"], content["media"]["mimetype"]) == ("image", "a cat", "image/jpeg")


def test_own_message_sent_from_the_phone_is_unwrapped() -> None:
    name, data = mapped(corpus.device_sent_text)
    assert (name, data["type"], data["text"]) == (MESSAGE, "text", "sent from my phone")
    assert data["is_from_me"] is True
    assert data["chat"] == "6281234567890@s.whatsapp.net"
    assert data["from"] == "+15550001111"


def test_poll_creation() -> None:
    name, data = mapped(corpus.poll_creation)
    assert name == MESSAGE
    assert (data["type"], data["text"], data["media"]) == ("poll", "Which day?", None)
    assert data["poll"] == {
        "question": "Which day?",
        "options": ["Tuesday", "Wednesday", "Thursday"],
        "selectable_count": 1,
    }


@pytest.mark.parametrize(
    "field", ["pollCreationMessage", "pollCreationMessageV2", "pollCreationMessageV5", "pollCreationMessageV6"]
)
def test_every_poll_creation_variant_is_a_poll(field: str) -> None:
    body = E2E.PollCreationMessage(name="Q?", options=[E2E.PollCreationMessage.Option(optionName="A")])
    name, data = mapped(lambda: corpus.message_event(E2E.Message(**{field: body})))
    assert (name, data["type"], data["poll"]["options"]) == (MESSAGE, "poll", ["A"])


def test_poll_creation_v4_container_is_unwrapped() -> None:
    inner = E2E.Message(pollCreationMessage=E2E.PollCreationMessage(name="Q4?"))
    content = E2E.Message(pollCreationMessageV4=E2E.FutureProofMessage(message=inner))
    name, data = mapped(lambda: corpus.message_event(content))
    assert (name, data["type"], data["text"]) == (MESSAGE, "poll", "Q4?")


def test_text_agrees_with_neonize_extract_text() -> None:
    for builder in (corpus.text, corpus.extended_text, corpus.image, corpus.video):
        event = builder()
        assert mapped(builder)[1]["text"] == (EXTRACT_TEXT(event.Message) or None)


# -- edits, deletes, reactions, votes ------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [corpus.edit, corpus.edit_wrapped])
def test_edit_in_either_shape(builder: Callable[[], Any]) -> None:
    name, data = mapped(builder)
    assert name == EDITED
    assert (data["target_id"], data["text"]) == (corpus.TARGET_ID, "hello (fixed)")
    assert data["message_id"] == corpus.MESSAGE_ID  # the edit's own id, not the target


def test_edit_of_a_caption() -> None:
    assert mapped(corpus.edit_of_caption)[1]["text"] == "a better caption"


def test_newsletter_edit_targets_the_original_post() -> None:
    name, data = mapped(corpus.newsletter_edit)
    assert (name, data["target_id"], data["text"]) == (EDITED, corpus.TARGET_ID, "corrected post")


def test_revoke_is_a_delete() -> None:
    name, data = mapped(corpus.revoke)
    assert (name, data["target_id"]) == (DELETED, corpus.TARGET_ID)
    assert "text" not in data


def test_protocol_message_without_type_is_not_a_delete() -> None:
    event = corpus.protocol_without_type()
    assert event.Message.protocolMessage.type == E2E.ProtocolMessage.REVOKE  # the proto2 default: the trap
    assert incoming_message(event) is None


@pytest.mark.parametrize(("builder", "emoji"), [(corpus.reaction, "👍"), (corpus.reaction_removed, "")])
def test_reactions(builder: Callable[[], Any], emoji: str) -> None:
    name, data = mapped(builder)
    assert (name, data["target_id"], data["emoji"]) == (REACTION, corpus.TARGET_ID, emoji)


def test_poll_vote_leaves_the_selection_to_the_backend() -> None:
    name, data = mapped(corpus.poll_update)
    assert name == POLL_VOTE
    assert (data["target_id"], data["selected_hashes"], data["selected"]) == (corpus.TARGET_ID, [], None)
    assert data["is_group"] is True


def test_poll_vote_selection_and_names() -> None:
    vote = corpus.poll_vote_decrypted("Wednesday", "Thursday")
    hashes = poll_vote_selection(vote)
    assert hashes == [hashlib.sha256(b"Wednesday").hexdigest(), hashlib.sha256(b"Thursday").hexdigest()]
    assert poll_vote_selection(corpus.poll_vote_decrypted()) == []


@pytest.mark.parametrize(
    "builder",
    [
        corpus.edit,
        corpus.edit_wrapped,
        corpus.edit_of_caption,
        corpus.newsletter_edit,
        corpus.revoke,
        corpus.reaction,
        corpus.reaction_removed,
        corpus.poll_update,
    ],
)
def test_edits_deletes_reactions_and_votes_are_never_messages(builder: Callable[[], Any]) -> None:
    name, _data = mapped(builder)
    assert name not in (MESSAGE, STATUS_POST)


def test_an_edit_that_also_carries_key_material_is_still_an_edit() -> None:
    event = corpus.edit()
    event.Message.senderKeyDistributionMessage.groupID = "g"
    assert mapped(lambda: event)[0] == EDITED


# -- status posts, plumbing ----------------------------------------------------------------------------------------


def test_status_post() -> None:
    name, data = mapped(corpus.status_post)
    assert name == STATUS_POST
    assert (data["chat"], data["from"], data["type"], data["text"]) == (
        "status@broadcast",
        "+6281234567890",
        "image",
        "a cat",
    )


def test_newsletter_post() -> None:
    name, data = mapped(corpus.newsletter_post)
    assert name == STATUS_POST
    assert (data["chat"], data["from"], data["text"]) == ("120363123456789012@newsletter", None, "weekly news")
    assert needs_phone_lookup(data) is None  # a newsletter has no phone number to look up


@pytest.mark.parametrize(
    "builder",
    [
        corpus.sender_key_only,
        corpus.ephemeral_setting,
        corpus.history_sync_notification,
        corpus.app_state_key_share,
        corpus.protocol_without_type,
    ],
)
def test_protocol_plumbing_is_dropped(builder: Callable[[], Any]) -> None:
    assert incoming_message(builder()) is None


def test_empty_message_is_dropped_but_content_with_key_material_is_not() -> None:
    assert incoming_message(corpus.message_event(E2E.Message())) is None
    event = corpus.sender_key_only()
    event.Message.conversation = "real"
    name, data = mapped(lambda: event)
    assert (name, data["text"]) == (MESSAGE, "real")


# -- LIDs -------------------------------------------------------------------------------------------------------------


def test_group_lid_sender_takes_the_phone_from_sender_alt() -> None:
    name, data = mapped(corpus.group_lid_with_alt)
    assert name == MESSAGE
    assert (data["from"], data["sender_jid"], data["chat"]) == (
        "+6281234567890",
        "123456789012345@lid",
        "120363041234567890@g.us",
    )
    assert data["is_group"] is True
    assert needs_phone_lookup(data) is None


def test_lid_sender_without_alt_needs_a_lookup() -> None:
    _name, data = mapped(corpus.lid_without_alt)
    assert data["from"] is None
    assert needs_phone_lookup(data) == "123456789012345@lid"


def test_phone_sender_needs_no_lookup() -> None:
    assert needs_phone_lookup(mapped(corpus.text)[1]) is None
    assert needs_phone_lookup({"from": None, "sender_jid": "120363041234567890@g.us"}) is None
    assert needs_phone_lookup({"from": None, "sender_jid": None}) is None


# -- undecryptable, calls, receipts ----------------------------------------------------------------------------------


def test_undecryptable() -> None:
    assert undecryptable_to_dict(corpus.undecryptable()) == {
        "message_id": corpus.MESSAGE_ID,
        "chat": "120363041234567890@g.us",
        "from": "+6281234567890",
        "sender_jid": "123456789012345@lid",
        "push_name": "Ana",
        "timestamp": corpus.TS_ISO,
        "is_group": True,
        "is_from_me": False,
        "raw": None,
    }


@pytest.mark.parametrize(
    ("builder", "sender_jid", "video"),
    [
        (corpus.call_offer_video, "6281234567890@s.whatsapp.net", True),
        (corpus.call_offer_voice, "123456789012345@lid", False),
        (corpus.call_offer_notice_video, "6281234567890@s.whatsapp.net", True),
    ],
    ids=["offer-video", "offer-voice-lid", "notice-video"],
)
def test_call_offers(builder: Callable[[], Any], sender_jid: str, video: bool) -> None:
    assert call_offer_to_dict(builder()) == {
        "call_id": "CALL0123456789ABCDEF",
        "chat": "6281234567890@s.whatsapp.net",  # the caller's device JID without its device part
        "from": "+6281234567890",
        "sender_jid": sender_jid,
        "timestamp": corpus.TS_S_ISO,  # seconds, unlike Message
        "video": video,
    }


def test_call_offer_notice_for_audio_is_not_video() -> None:
    event = corpus.call_offer_notice_video()
    event.media = "audio"
    assert call_offer_to_dict(event)["video"] is False


@pytest.mark.parametrize(
    ("builder", "status"),
    [(corpus.delivered_receipt, "delivered"), (corpus.read_receipt, "read"), (corpus.played_receipt, "played")],
)
def test_receipts_of_our_messages(builder: Callable[[], Any], status: str) -> None:
    assert receipt_to_dict(builder()) == {
        "chat": "6281234567890@s.whatsapp.net",
        "message_ids": [corpus.TARGET_ID, "3EB0BBBB33334444"],
        "status": status,
        "timestamp": corpus.TS_S_ISO,
    }


@pytest.mark.parametrize("builder", [corpus.own_device_read_receipt, corpus.read_self_receipt])
def test_receipts_from_our_own_devices_are_dropped(builder: Callable[[], Any]) -> None:
    event = builder()
    assert event.MessageSource.IsFromMe
    assert receipt_to_dict(event) is None


@pytest.mark.parametrize(
    "type_name", ["SENDER", "RETRY", "READ_SELF", "PLAYED_SELF", "SERVER_ERROR", "INACTIVE", "PEER_MSG"]
)
def test_other_receipt_types_are_dropped(type_name: str) -> None:
    assert receipt_to_dict(corpus.receipt(type_name)) is None


def test_receipt_without_type_is_dropped_and_cannot_be_replayed() -> None:
    event = corpus.receipt_without_type()
    assert event.Type == PB.Receipt.DELIVERED  # proto2 default: the trap
    assert receipt_to_dict(event) is None
    with pytest.raises(Exception, match="Type"):
        corpus.replay_line(event)  # neonize's proto.Marshal fails the same way, ending its pump


# -- replay format -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(corpus.CORPUS))
def test_replay_lines_round_trip(name: str) -> None:
    event = corpus.CORPUS[name]()
    line = corpus.replay_line(event)
    assert set(line) == {"event", "data"}
    assert line == json.loads(json.dumps(line))
    assert corpus.replay_event(line) == event


def test_replay_codes_are_neonizes() -> None:
    assert corpus.replay_line(corpus.text())["event"] == 17
    assert corpus.replay_line(corpus.read_receipt())["event"] == 18
    assert corpus.replay_line(corpus.undecryptable())["event"] == 44
    assert corpus.replay_line(corpus.call_offer_voice())["event"] == 36
    assert corpus.replay_line(corpus.call_offer_notice_video())["event"] == 40


# -- session events ---------------------------------------------------------------------------------------------------


def test_connect_failure_409_stops_for_good() -> None:
    assert connect_failure_to_event(corpus.connect_failure_409()) == (
        STOPPED,
        {
            "reason": "bad_user_agent",
            "detail": "WhatsApp refuses this client's user agent (409); upgrade the app's neonize",
        },
    )


def test_connect_failure_405_is_outdated() -> None:
    assert connect_failure_to_event(corpus.connect_failure_405()) == (OUTDATED, {"detail": "client is out of date"})


def test_other_connect_failures_are_unchanged() -> None:
    assert connect_failure_to_event(corpus.connect_failure("SERVICE_UNAVAILABLE")) == (
        DISCONNECTED,
        {"reason": "connect_failure_503", "detail": None},
    )
    assert connect_failure_to_event(corpus.connect_failure("LOGGED_OUT")) == (LOGGED_OUT, {"reason": "logged_out"})
    assert connect_failure_to_event(corpus.connect_failure("TEMP_BANNED"))[0] == BANNED


def test_logged_out_and_ban() -> None:
    assert logged_out_to_dict(corpus.logged_out()) == {"reason": "main_device_gone"}
    assert temporary_ban_to_dict(corpus.temporary_ban(), datetime(2026, 1, 1, tzinfo=UTC)) == {
        "until": "2026-01-01T01:00:00.000+00:00",
        "code": 102,
    }


# -- pump failures -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", [" ", "\u00a0"], ids=["space", "no-break-space"])
@pytest.mark.parametrize(("message", "field", "_why"), KNOWN_PUMP_FAILURES)
def test_pump_failures_name_the_message_and_field(space: str, message: str, field: str, _why: str) -> None:
    # protobuf-go picks the space after "proto:" at random (a plain or a no-break space) to defeat string matching.
    text = f"proto:{space}required field neonize.{message}.{field} not set"
    assert pump_failure(text) == (PUMP_ENDED, {"detail": text, "message": message, "field": field})


def test_pump_failure_in_a_wrapped_error_and_an_old_quoted_format() -> None:
    name, data = pump_failure('NeonizeError: proto: required field "neonize.Receipt.Type" not set') or ("", {})
    assert (name, data["message"], data["field"]) == (PUMP_ENDED, "Receipt", "Type")


def test_known_pump_failures_are_required_fields_of_neonizes_protos() -> None:
    for message, field, _why in KNOWN_PUMP_FAILURES:
        assert getattr(PB, message).DESCRIPTOR.fields_by_name[field].is_required


@pytest.mark.parametrize(
    "text", ["websocket not connected", "failed to upgrade database: pq: SSL is not enabled on the server", ""]
)
def test_other_errors_are_not_pump_failures(text: str) -> None:
    assert pump_failure(text) is None


# -- pairing --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["success", "timeout", "code", "passkey-request"])
def test_pairing_outcomes_that_are_not_failures(status: str) -> None:
    assert pairing_failure(status) is None


def test_pairing_client_outdated_says_to_upgrade_the_app() -> None:
    name, data = pairing_failure("err-client-outdated") or ("", {})
    assert (name, data["error"]) == (PAIRING_FAILED, "err-client-outdated")
    assert "upgrade the app" in data["detail"]


def test_pairing_without_multidevice_says_to_update_the_phone() -> None:
    name, data = pairing_failure("err-scanned-without-multidevice") or ("", {})
    assert (name, data["error"]) == (PAIRING_FAILED, "err-scanned-without-multidevice")
    assert "update WhatsApp on the phone" in data["detail"]


@pytest.mark.parametrize("status", ["err-unexpected-state", "error", "err-something-new"])
def test_other_pairing_errors(status: str) -> None:
    name, data = pairing_failure(status) or ("", {})
    assert (name, data["error"]) == (PAIRING_FAILED, status)
    assert data["detail"]


def test_pair_status_events() -> None:
    assert pair_status_to_event(corpus.pair_success()) is None
    name, data = pair_status_to_event(corpus.pair_error()) or ("", {})
    assert (name, data["error"]) == (PAIRING_FAILED, "pair-error")
    assert "context deadline exceeded" in data["detail"]


# -- recipients and command errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("6281234567890", ("6281234567890", "s.whatsapp.net")),
        (" +6281234567890 ", ("6281234567890", "s.whatsapp.net")),
        ("6281234567890@s.whatsapp.net", ("6281234567890", "s.whatsapp.net")),
        ("6281234567890@c.us", ("6281234567890", "s.whatsapp.net")),
        ("123456789012345@lid", ("123456789012345", "lid")),
        ("120363041234567890@g.us", ("120363041234567890", "g.us")),
        ("6281234567890-1596000000@g.us", ("6281234567890-1596000000", "g.us")),
    ],
)
def test_recipients(to: str, expected: tuple[str, str]) -> None:
    assert recipient(to) == expected


@pytest.mark.parametrize(
    "to",
    [
        "",
        "abc",
        "12345",
        "+0812 3456",
        "120363123456789012@newsletter",
        "status@broadcast",
        "6281234567890@example.com",
        "6281234567890:12@s.whatsapp.net",
        "+6281234567890@s.whatsapp.net",
        "abc@lid",
        "@g.us",
        "group@g.us",
        "123@",
    ],
)
def test_bad_recipients_are_refused_for_good(to: str) -> None:
    with pytest.raises(BackendError) as raised:
        recipient(to)
    assert raised.value.permanent
    assert repr(to.strip()) in str(raised.value)


@pytest.mark.parametrize(
    ("message", "permanent"),
    [
        ("failed to get group members: you're not participating in that group", True),
        ("failed to get group members: that group does not exist", True),
        ("server returned error 403", True),
        ("info query returned status 403: forbidden", True),
        ("info query returned status 401: not-authorized", True),
        ("info query returned status 404: item-not-found", True),
        ("no LID found for 6281234567890@s.whatsapp.net from server", True),
        ("server returned error 500", False),
        ("server returned error 4030", False),
        ("info query timed out", False),
        ("timed out waiting for message send response", False),
        ("websocket not connected", False),
        ("info query returned status 429: rate-overlimit", False),
    ],
)
def test_command_errors(message: str, permanent: bool) -> None:
    error = command_error(NZ.NeonizeError(message))
    assert (str(error), error.permanent) == (message, permanent)


def test_unpaired_is_transient_even_though_it_reads_like_a_refusal() -> None:
    error = command_error(NZ.NeonizeError("the store doesn't contain a device JID"))
    assert (error.permanent, str(error).startswith("not paired")) == (False, True)
    assert all(marker == marker.strip() and marker for marker in PERMANENT_ERRORS)
