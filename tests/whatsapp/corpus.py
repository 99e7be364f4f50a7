"""neonize events built from neonize's own protobuf classes, one for every kind of event the gateway has to map.

Each builder fills every proto2 `required` field, as neonize's Go encoders do (goneonize/utils/encoder.go): an event
that does not serialize could never have reached Python. Message contents come in the shape neonize hands them over,
i.e. after whatsmeow's UnwrapRaw (an edit is a bare protocolMessage MESSAGE_EDIT with IsEdit set), and, where a
container matters, also in the wrapped shape a raw WhatsApp message has.

`replay_line(event)` gives the replay file format: one JSON object per line, {"event": <EVENT_TO_INT code>, "data":
<base64 of the serialized event>}.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
from collections.abc import Callable
from typing import Any

from app.whatsapp.neonize_backend import load_neonize

NZ = load_neonize()  # imports neonize once, undoing its logging side effects
PB: Any = NZ.proto  # neonize's Neonize_pb2
E2E: Any = NZ.e2e  # WhatsApp's message protobufs (waE2E)
EVENT_TO_INT: dict[type[Any], int] = importlib.import_module("neonize.events").EVENT_TO_INT
# neonize's own text extraction, which the mapping's text must agree with (the app does not use it).
EXTRACT_TEXT: Callable[[Any], str] = importlib.import_module("neonize.utils.message").extract_text

TS_MS = 1_763_000_000_123  # Info.Timestamp of a Message event is in milliseconds
TS_ISO = "2025-11-13T02:13:20.123+00:00"
TS_S = 1_763_000_000  # Receipt and call timestamps are in seconds
TS_S_ISO = "2025-11-13T02:13:20.000+00:00"
MESSAGE_ID = "3EB0C431D5E4A1B2"
TARGET_ID = "3EB0AAAA11112222"  # the message an edit / delete / reaction / vote is about
PUSH_NAME = "Ana"
POLL_OPTIONS = ("Tuesday", "Wednesday", "Thursday")

# Media fields WhatsApp sends with every attachment; whatever stores `raw` needs them to download the file later.
MEDIA_KEYS: dict[str, Any] = {
    "directPath": "/v/t62.7118-24/12345_67890.enc?ccb=11-4&oh=01_Q5AaIabc&oe=6800AAAA",
    "mediaKey": bytes(range(32)),
    "fileSHA256": hashlib.sha256(b"plain").digest(),
    "fileEncSHA256": hashlib.sha256(b"encrypted").digest(),
    "mediaKeyTimestamp": TS_S,
}


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0) -> Any:
    return PB.JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0, IsEmpty=False)


EMPTY_JID = PB.JID(User="", Server="", Device=0, RawAgent=0, Integrator=0, IsEmpty=True)
PHONE = jid("6281234567890")
PHONE_DEVICE = jid("6281234567890", device=12)  # a linked device of the same person
LID = jid("123456789012345", "lid")
OWN_PHONE = jid("15550001111")
OWN_DEVICE = jid("15550001111", device=3)
GROUP = jid("120363041234567890", "g.us")
STATUS = jid("status", "broadcast")
NEWSLETTER = jid("120363123456789012", "newsletter")


def source(
    chat: Any = PHONE,
    sender: Any = None,
    *,
    sender_alt: Any = EMPTY_JID,
    is_group: bool = False,
    from_me: bool = False,
) -> Any:
    return PB.MessageSource(
        Chat=chat,
        Sender=sender if sender is not None else chat,
        IsFromMe=from_me,
        IsGroup=is_group,
        SenderAlt=sender_alt,
        RecipientAlt=EMPTY_JID,
        BroadcastListOwner=EMPTY_JID,
    )


def info(message_source: Any, *, message_id: str = MESSAGE_ID, edit: str = "", kind: str = "text") -> Any:
    return PB.MessageInfo(
        MessageSource=message_source,
        ID=message_id,
        ServerID=0,
        Type=kind,
        Pushname=PUSH_NAME,
        Timestamp=TS_MS,
        Category="",
        Multicast=False,
        MediaType="",
        Edit=edit,
    )


def message_event(
    content: Any,
    message_source: Any = None,
    *,
    message_id: str = MESSAGE_ID,
    edit: str = "",
    **flags: bool,
) -> Any:
    """A Message event (17). `flags`: IsEphemeral, IsViewOnce, IsEdit, ... as whatsmeow sets them when unwrapping."""
    required = {
        "IsEphemeral": False,
        "IsViewOnce": False,
        "IsViewOnceV2": False,
        "IsViewOnceV2Extension": False,
        "IsDocumentWithCaption": False,
        "IsLottieSticker": False,
        "IsEdit": False,
    }
    return PB.Message(
        Info=info(message_source if message_source is not None else source(), message_id=message_id, edit=edit),
        Message=content,
        UnavailableRequestID="",
        RetryCount=0,
        **{**required, **flags},
    )


def key(target: str = TARGET_ID, *, chat: Any = PHONE, from_me: bool = False) -> dict[str, Any]:
    """A waCommon.MessageKey, as the dict protobuf constructors accept (MessageKey's fields: remoteJID, fromMe, ID)."""
    return {"remoteJID": f"{chat.User}@{chat.Server}", "fromMe": from_me, "ID": target}


# -- message contents ---------------------------------------------------------------------------------------------


def text() -> Any:
    return message_event(E2E.Message(conversation="hello"))


def extended_text() -> Any:
    return message_event(E2E.Message(extendedTextMessage=E2E.ExtendedTextMessage(text="see https://example.com")))


def image_message() -> Any:
    return E2E.ImageMessage(
        caption="a cat", mimetype="image/jpeg", fileLength=48213, width=640, height=480, **MEDIA_KEYS
    )


def image() -> Any:
    return message_event(E2E.Message(imageMessage=image_message()))


def video() -> Any:
    body = E2E.VideoMessage(caption="the beach", mimetype="video/mp4", fileLength=1_048_576, seconds=12, **MEDIA_KEYS)
    return message_event(E2E.Message(videoMessage=body))


def voice_note() -> Any:
    body = E2E.AudioMessage(mimetype="audio/ogg; codecs=opus", fileLength=5120, seconds=4, PTT=True, **MEDIA_KEYS)
    return message_event(E2E.Message(audioMessage=body))


def unwrap_content(message: Any) -> Any:
    """The Message inside a documentWithCaptionMessage (or the message itself): where the media body is."""
    if message.HasField("documentWithCaptionMessage"):
        return message.documentWithCaptionMessage.message
    return message


def document_with_caption() -> Any:
    """The raw shape: documentWithCaptionMessage{message{documentMessage}} (whatsmeow would unwrap it)."""
    document = E2E.DocumentMessage(
        fileName="invoice.pdf", caption="the report", mimetype="application/pdf", fileLength=1024, **MEDIA_KEYS
    )
    wrapped = E2E.Message(
        documentWithCaptionMessage=E2E.FutureProofMessage(message=E2E.Message(documentMessage=document))
    )
    return message_event(wrapped)


def sticker() -> Any:
    return message_event(
        E2E.Message(stickerMessage=E2E.StickerMessage(mimetype="image/webp", fileLength=9000, **MEDIA_KEYS))
    )


def location() -> Any:
    body = E2E.LocationMessage(degreesLatitude=-6.2, degreesLongitude=106.8, name="Monas")
    return message_event(E2E.Message(locationMessage=body))


def contact() -> Any:
    vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Budi\nTEL;type=CELL:+62 811 0000 0000\nEND:VCARD"
    return message_event(E2E.Message(contactMessage=E2E.ContactMessage(displayName="Budi", vcard=vcard)))


def view_once_image() -> Any:
    """The raw shape: viewOnceMessageV2{message{imageMessage}}."""
    inner = E2E.Message(imageMessage=image_message())
    return message_event(E2E.Message(viewOnceMessageV2=E2E.FutureProofMessage(message=inner)))


def view_once_image_unwrapped() -> Any:
    """What neonize hands over for the same message: whatsmeow unwrapped it and set the flags."""
    return message_event(E2E.Message(imageMessage=image_message()), IsViewOnce=True, IsViewOnceV2=True)


def ephemeral_text() -> Any:
    inner = E2E.Message(extendedTextMessage=E2E.ExtendedTextMessage(text="psst"))
    return message_event(E2E.Message(ephemeralMessage=E2E.FutureProofMessage(message=inner)))


def device_sent_text() -> Any:
    """Our own message, typed on the phone, as it reaches this linked device (deviceSentMessage container)."""
    inner = E2E.Message(conversation="sent from my phone")
    content = E2E.Message(
        deviceSentMessage=E2E.DeviceSentMessage(destinationJID="6281234567890@s.whatsapp.net", message=inner)
    )
    return message_event(content, source(PHONE, OWN_DEVICE, from_me=True))


def edit_protocol_message() -> Any:
    return E2E.ProtocolMessage(
        key=key(),
        type=E2E.ProtocolMessage.MESSAGE_EDIT,
        editedMessage=E2E.Message(conversation="hello (fixed)"),
        timestampMS=TS_MS,
    )


def edit() -> Any:
    """An edit as neonize hands it over: whatsmeow stripped editedMessage, set IsEdit and Info.Edit "1"."""
    return message_event(E2E.Message(protocolMessage=edit_protocol_message()), edit="1", IsEdit=True)


def edit_wrapped() -> Any:
    """The same edit in the wire shape whatsmeow's BuildEdit produces: editedMessage{message{protocolMessage}}."""
    inner = E2E.Message(protocolMessage=edit_protocol_message())
    return message_event(E2E.Message(editedMessage=E2E.FutureProofMessage(message=inner)), edit="1")


def edit_of_caption() -> Any:
    protocol = E2E.ProtocolMessage(
        key=key(),
        type=E2E.ProtocolMessage.MESSAGE_EDIT,
        editedMessage=E2E.Message(imageMessage=E2E.ImageMessage(caption="a better caption")),
    )
    return message_event(E2E.Message(protocolMessage=protocol), edit="1", IsEdit=True)


def newsletter_edit() -> Any:
    """A newsletter edit: the new content itself under the original ID, with NewsLetterMeta (whatsmeow events.go)."""
    event = message_event(
        E2E.Message(conversation="corrected post"), source(NEWSLETTER), message_id=TARGET_ID, edit="3"
    )
    event.NewsLetterMeta.CopyFrom(PB.NewsLetterMessageMeta(EditTS=TS_S + 60, OriginalTS=TS_S))
    return event


def revoke() -> Any:
    protocol = E2E.ProtocolMessage(key=key(), type=E2E.ProtocolMessage.REVOKE)
    return message_event(E2E.Message(protocolMessage=protocol), edit="7")


def protocol_without_type() -> Any:
    """A protocolMessage with no type: proto2 reads the type as 0 = REVOKE, which must not count as a delete."""
    return message_event(E2E.Message(protocolMessage=E2E.ProtocolMessage(key=key())))


def ephemeral_setting() -> Any:
    protocol = E2E.ProtocolMessage(type=E2E.ProtocolMessage.EPHEMERAL_SETTING, ephemeralExpiration=604800)
    return message_event(E2E.Message(protocolMessage=protocol))


def history_sync_notification() -> Any:
    protocol = E2E.ProtocolMessage(type=E2E.ProtocolMessage.HISTORY_SYNC_NOTIFICATION)
    return message_event(E2E.Message(protocolMessage=protocol), source(OWN_PHONE, OWN_DEVICE, from_me=True))


def app_state_key_share() -> Any:
    protocol = E2E.ProtocolMessage(type=E2E.ProtocolMessage.APP_STATE_SYNC_KEY_SHARE)
    return message_event(E2E.Message(protocolMessage=protocol), source(OWN_PHONE, OWN_DEVICE, from_me=True))


def reaction() -> Any:
    body = E2E.ReactionMessage(key=key(), text="👍", senderTimestampMS=TS_MS)
    return message_event(E2E.Message(reactionMessage=body))


def reaction_removed() -> Any:
    body = E2E.ReactionMessage(key=key(), text="", senderTimestampMS=TS_MS)
    return message_event(E2E.Message(reactionMessage=body), edit="7")


def poll_creation() -> Any:
    options = [E2E.PollCreationMessage.Option(optionName=name) for name in POLL_OPTIONS]
    body = E2E.PollCreationMessage(name="Which day?", options=options, selectableOptionsCount=1, encKey=bytes(32))
    return message_event(E2E.Message(pollCreationMessageV3=body), source(GROUP, PHONE, is_group=True))


def poll_update() -> Any:
    body = E2E.PollUpdateMessage(
        pollCreationMessageKey=key(chat=GROUP),
        vote=E2E.PollEncValue(encPayload=b"\x01" * 40, encIV=b"\x02" * 12),
        senderTimestampMS=TS_MS,
    )
    return message_event(E2E.Message(pollUpdateMessage=body), source(GROUP, PHONE, is_group=True))


def poll_vote_decrypted(*names: str) -> Any:
    """What client.decrypt_poll_vote returns: a PollVoteMessage with the SHA-256 of each chosen option name."""
    return E2E.PollVoteMessage(selectedOptions=[hashlib.sha256(name.encode()).digest() for name in names])


def status_post() -> Any:
    # whatsmeow parseMessageSource: a broadcast chat counts as a group, the poster is the participant.
    return message_event(E2E.Message(imageMessage=image_message()), source(STATUS, PHONE, is_group=True))


def newsletter_post() -> Any:
    return message_event(E2E.Message(conversation="weekly news"), source(NEWSLETTER))


def group_lid_with_alt() -> Any:
    return message_event(E2E.Message(conversation="hi all"), source(GROUP, LID, sender_alt=PHONE_DEVICE, is_group=True))


def lid_without_alt() -> Any:
    return message_event(E2E.Message(conversation="who am I"), source(LID))


def sender_key_only() -> Any:
    content = E2E.Message(
        senderKeyDistributionMessage=E2E.SenderKeyDistributionMessage(
            groupID="120363041234567890@g.us", axolotlSenderKeyDistributionMessage=b"\x33" * 40
        ),
        messageContextInfo=E2E.MessageContextInfo(messageSecret=bytes(32)),
    )
    return message_event(content, source(GROUP, PHONE, is_group=True))


def unknown_content() -> Any:
    """Real content this gateway has no type for (an event invitation): still delivered, as type "other"."""
    return message_event(E2E.Message(eventMessage=E2E.EventMessage(name="Launch party")))


# -- receipts, undecryptable, calls -----------------------------------------------------------------------------------


def receipt(type_name: str = "DELIVERED", message_source: Any = None) -> Any:
    return PB.Receipt(
        MessageSource=message_source if message_source is not None else source(),
        MessageIDs=[TARGET_ID, "3EB0BBBB33334444"],
        Timestamp=TS_S,
        Type=PB.Receipt.ReceiptType.Value(type_name),
    )


def delivered_receipt() -> Any:
    return receipt("DELIVERED")


def read_receipt() -> Any:
    return receipt("READ")


def played_receipt() -> Any:
    return receipt("PLAYED")


def own_device_read_receipt() -> Any:
    """The owner read an incoming chat on the phone: from = our own account, so whatsmeow sets IsFromMe."""
    return receipt("READ", source(PHONE, OWN_DEVICE, from_me=True))


def read_self_receipt() -> Any:
    return receipt("READ_SELF", source(PHONE, OWN_DEVICE, from_me=True))


def receipt_without_type() -> Any:
    """What EncodeReceipts builds for "server-error": Type left nil. It cannot be serialized (the pump dies)."""
    return PB.Receipt(MessageSource=source(), MessageIDs=[TARGET_ID], Timestamp=TS_S)


def undecryptable() -> Any:
    return PB.UndecryptableMessage(
        Info=info(source(GROUP, LID, sender_alt=PHONE, is_group=True), kind=""),
        IsUnavailable=False,
        DecryptFailMode=PB.UndecryptableMessage.DECRYPT_FAIL_SHOW,
    )


def call_node(video: bool) -> Any:
    attrs = [PB.NodeAttrs(name="call-id", text="CALL0123456789ABCDEF"), PB.NodeAttrs(name="call-creator", jid=PHONE)]
    children = [
        PB.Node(Tag="audio", Attrs=[PB.NodeAttrs(name="enc", text="opus"), PB.NodeAttrs(name="rate", text="16000")]),
        PB.Node(Tag="net", Attrs=[PB.NodeAttrs(name="medium", text="3")]),
    ]
    if video:
        children.append(PB.Node(Tag="video", Attrs=[PB.NodeAttrs(name="enc", text="vp8")]))
    return PB.Node(Tag="offer", Attrs=attrs, Nodes=children)


def call_meta(*, creator: Any = PHONE, creator_alt: Any = EMPTY_JID) -> Any:
    return PB.BasicCallMeta(
        **{"from": PHONE_DEVICE},  # `from` is a Python keyword
        timestamp=TS_S,
        callCreator=creator,
        callCreatorAlt=creator_alt,
        callID="CALL0123456789ABCDEF",
    )


def call_offer_video() -> Any:
    return PB.CallOffer(
        basicCallMeta=call_meta(),
        callRemoteMeta=PB.CallRemoteMeta(remotePlatform="android", remoteVersion="2.25.30.12"),
        data=call_node(video=True),
    )


def call_offer_voice() -> Any:
    return PB.CallOffer(
        basicCallMeta=call_meta(creator=LID, creator_alt=PHONE),
        callRemoteMeta=PB.CallRemoteMeta(remotePlatform="iphone", remoteVersion="2.25.30.12"),
        data=call_node(video=False),
    )


def call_offer_notice_video() -> Any:
    return PB.CallOfferNotice(basicCallMeta=call_meta(), media="video", type="group", data=call_node(video=False))


# -- session events -----------------------------------------------------------------------------------------------


def temporary_ban() -> Any:
    return PB.TemporaryBan(Code=PB.TemporaryBan.BLOCKED_BY_USERS, Expire=3600)


def connect_failure(reason: str, message: str = "") -> Any:
    return PB.ConnectFailure(
        Reason=PB.ConnectFailureReason.Value(reason), Message=message, Raw=PB.Node(Tag="failure", Nil=True)
    )


def connect_failure_409() -> Any:
    return connect_failure("BAD_USER_AGENT", "client user agent was rejected")


def connect_failure_405() -> Any:
    return connect_failure("CLIENT_OUTDATED", "client is out of date")


def logged_out() -> Any:
    return PB.LoggedOut(OnConnect=True, Reason=PB.ConnectFailureReason.Value("MAIN_DEVICE_GONE"))


def connected() -> Any:
    return PB.Connected(status=True)


def disconnected() -> Any:
    return PB.Disconnected(status=True)


def pair_success() -> Any:
    return PB.PairStatus(ID=OWN_DEVICE, BusinessName="", Platform="android", Status=PB.PairStatus.SUCCESS)


def pair_error() -> Any:
    return PB.PairStatus(
        ID=OWN_DEVICE,
        BusinessName="",
        Platform="android",
        Status=PB.PairStatus.ERROR,
        Error="failed to store main device identity: context deadline exceeded",
    )


# Every corpus item that neonize can actually deliver (receipt_without_type is the one it cannot encode).
MESSAGES: dict[str, Callable[[], Any]] = {
    builder.__name__: builder
    for builder in (
        text,
        extended_text,
        image,
        video,
        voice_note,
        document_with_caption,
        sticker,
        location,
        contact,
        view_once_image,
        view_once_image_unwrapped,
        ephemeral_text,
        device_sent_text,
        edit,
        edit_wrapped,
        edit_of_caption,
        newsletter_edit,
        revoke,
        protocol_without_type,
        ephemeral_setting,
        history_sync_notification,
        app_state_key_share,
        reaction,
        reaction_removed,
        poll_creation,
        poll_update,
        status_post,
        newsletter_post,
        group_lid_with_alt,
        lid_without_alt,
        sender_key_only,
        unknown_content,
    )
}
OTHER_EVENTS: dict[str, Callable[[], Any]] = {
    builder.__name__: builder
    for builder in (
        delivered_receipt,
        read_receipt,
        played_receipt,
        own_device_read_receipt,
        read_self_receipt,
        undecryptable,
        call_offer_video,
        call_offer_voice,
        call_offer_notice_video,
        temporary_ban,
        connect_failure_409,
        connect_failure_405,
        logged_out,
        connected,
        disconnected,
        pair_success,
        pair_error,
    )
}
CORPUS: dict[str, Callable[[], Any]] = {**MESSAGES, **OTHER_EVENTS}


def replay_line(event: Any) -> dict[str, Any]:
    """One line of a replay file: the event's neonize code and its serialized bytes, as the Go side would send them.

    SerializeToString checks required fields like Go's proto.Marshal does: an event neonize could not encode
    (e.g. receipt_without_type) raises here, as it ends neonize's pump there."""
    return {"event": EVENT_TO_INT[type(event)], "data": base64.b64encode(event.SerializeToString()).decode("ascii")}


def replay_event(line: dict[str, Any]) -> Any:
    """The event a replay line holds (the inverse of replay_line)."""
    event_type = next(kind for kind, code in EVENT_TO_INT.items() if code == line["event"])
    event = event_type()
    event.ParseFromString(base64.b64decode(line["data"]))
    return event
