"""Every body and answer of the JSON API, typed once: requests are validated and documented (OpenAPI) from these.

Why pydantic v2: one declaration gives the validation, the error locations (`loc`, down to a list item) and the JSON
Schema of the OpenAPI document (draft 2020-12, what OpenAPI 3.1 uses), so the three cannot drift apart; it parses the
raw body in its Rust core (no json.loads pass first), and it is the most widely kept model library for Python.
msgspec is faster still but its schemas and errors name less; attrs with cattrs generates no JSON Schema.

Bodies are strict (a number is no string, `true` no 1) and ignore fields they do not know, as the API always did.
A field's `description` reads after "must be": it is both the document's text and the 422's (app/web/endpoint.py).
Phone numbers and chat addresses are checked by app/phone.py alone; the models only call it. The simulator's bodies
and answers are in app/web/simulator_models.py, built from the same pieces.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainValidator,
    RootModel,
    WithJsonSchema,
    model_validator,
)

from app.phone import EXPECTED_FORM, Recipient, normalise_phone, parse_recipient
from app.sending import queue
from app.status import Status as StatusReport
from app.webhooks import operator


def storable(value: str | None) -> str | None:
    """Text that Postgres can hold: no NUL (pydantic's JSON parser already refuses a lone surrogate)."""
    if value is not None and "\x00" in value:
        raise ValueError("must be valid Unicode text without NUL characters")
    return value


def chars(low: int, high: int) -> Any:
    return Field(min_length=low, max_length=high, description=f"a string of {low} to {high} characters")


def to_recipient(value: Any) -> Recipient:
    if not isinstance(value, str):
        raise ValueError(f"must be {RECIPIENT_FORMS}")
    return parse_recipient(value)  # InvalidPhone (a ValueError) says what is wrong, in the field's 422


RECIPIENT_FORMS = (
    "a phone number (+<country code><number>) or any chat JID a webhook event names: <digits>@s.whatsapp.net "
    "(or WhatsApp Web's <digits>@c.us), a LID <digits>@lid, a group <digits>@g.us or <digits>-<digits>@g.us"
)
RECIPIENT_EXAMPLES = [
    "+6281234567890",
    "6281234567890@s.whatsapp.net",
    "123456789012345@lid",
    "120363021234567890@g.us",
]

NoNul = AfterValidator(storable)  # after the length checks, which pydantic then runs natively
Phone = Annotated[
    str,
    AfterValidator(normalise_phone),
    Field(description=f"an international phone number: {EXPECTED_FORM}", examples=["+6281234567890"]),
]
RecipientField = Annotated[
    Recipient,
    PlainValidator(to_recipient),
    Field(description=RECIPIENT_FORMS),
    WithJsonSchema({"type": "string", "description": RECIPIENT_FORMS, "examples": RECIPIENT_EXAMPLES}),
]
# An ISO-8601 time as the app writes it (datetime.isoformat()); kept as text so answers show it unchanged.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
OptionalTimestamp = Annotated[str | None, WithJsonSchema({"type": ["string", "null"], "format": "date-time"})]

SESSION_STATES = (
    "starting",
    "standby",
    "connecting",
    "pairing",
    "connected",
    "reconnecting",
    "logged_out",
    "replaced",
    "banned",
    "stopped",
)
MESSAGE_STATUSES = ("queued", "sending", "sent", "delivered", "read", "failed", "cancelled")
MAX_TEXT = 65536


def one_of(choices: tuple[str, ...]) -> str:
    return f"one of {', '.join(choices)}"


class Body(BaseModel):
    """A JSON request body: strict types, unknown fields ignored."""

    model_config = ConfigDict(strict=True, populate_by_name=True, frozen=True)


class Answer(BaseModel):
    """A JSON answer. Built from what the app computed, so not strict; each is documented as it is sent."""

    model_config = ConfigDict(populate_by_name=True)


class Error(Answer):
    """Every 4xx and 5xx answer (app/web/errors.py)."""

    error: str = Field(description="a short code, e.g. invalid_request, not_found, conflict")
    detail: str = Field(description="what is wrong, naming the field")


# ---- the session ------------------------------------------------------------------------------------------------


class PairCodeBody(Body):
    phone: Phone


class PairCode(Answer):
    code: str = Field(description="8 characters to type on the phone (Linked devices > Link with phone number)")


class QR(Answer):
    payload: str
    svg: str
    rotation: int
    received_at: Timestamp


class StateAnswer(Answer):
    state: Literal[SESSION_STATES]  # type: ignore[valid-type]


class StatusAnswer(RootModel[StatusReport]):
    """The session, its account and heartbeat, the 24 h figures, the worker, the auth store and its import, the
    message store, the outbox and each endpoint, the send queue and 24 h delivery figures, this process's tasks.
    The typed report of app/status.py, as it is: the schema is derived from its dataclasses."""


# ---- sending ----------------------------------------------------------------------------------------------------


TYPING = (
    'true or false: whether WhatsApp shows "typing..." in the chat before the message is sent (for a time that '
    "grows with the text, within SEND_TYPING_SECONDS or 3 s when that is 0); left out: as SEND_TYPING_SECONDS says"
)


MAX_MENTIONS = 50
MENTION_FORMS = "a phone number (+<country code><number>) or a person's JID (<digits>@s.whatsapp.net or <digits>@lid)"


def to_mention(value: Any) -> str:
    """A mentioned member as the JID WhatsApp names them by."""
    recipient = to_recipient(value)
    if recipient.is_group:
        raise ValueError(f"must be {MENTION_FORMS}, not a group")
    return recipient.jid


Mention = Annotated[
    str,
    PlainValidator(to_mention),
    WithJsonSchema({"type": "string", "description": MENTION_FORMS, "examples": ["+6281234567890"]}),
]


MAX_CAPTION = 1024  # WhatsApp's apps cut a caption at about this length
MAX_VCARD = 10000
MAX_URL = 2048
MIMETYPE_PATTERN = r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$"
CAPTIONLESS = ("audio", "sticker")  # WhatsApp shows no caption on these
KINDS = queue.MESSAGE_KINDS[1:]  # every kind but text: image, ..., location, contact
NO_KIND = (
    f"'text' must be a string of 1 to {MAX_TEXT} characters, unless the message is one of image, video, audio, "
    "document, sticker, location, contact"
)
ONE_KIND = (
    "give 'text' alone, or exactly one of image, video, audio, document, sticker, location, contact, not several "
    "(a file's text is its own 'caption')"
)


class MediaSpec(Body):
    """A file to send: one already stored (media_id: POST /api/media, or a file received here) or one to fetch (url)."""

    url: Annotated[
        str | None,
        Field(
            min_length=8,
            max_length=MAX_URL,
            pattern=r"^https?://",
            description=f"an http(s) URL of 8 to {MAX_URL} characters to fetch the file from",
            examples=["https://example.com/invoice-1234.pdf"],
        ),
        NoNul,
    ] = None
    media_id: Annotated[
        str | None,
        Field(
            pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
            description="a UUID: the id of a stored file (POST /api/media, or the media_id of a received message)",
            examples=["0c6f4a52-8a39-4d7e-9d1c-2f6b0e7d5a11"],
            json_schema_extra={"format": "uuid"},
        ),
    ] = None
    caption: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_CAPTION,
            description=f"a string of 1 to {MAX_CAPTION} characters shown under the file (not for audio or a sticker)",
        ),
        NoNul,
    ] = None
    file_name: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=255,
            pattern=r"^[^/\\]+$",
            description="a file name of 1 to 255 characters without / or \\ (a document shows it; default: as stored)",
            examples=["invoice-1234.pdf"],
        ),
        NoNul,
    ] = None
    mimetype: Annotated[
        str | None,
        Field(
            max_length=128,
            pattern=MIMETYPE_PATTERN,
            description="a lowercase MIME type such as image/jpeg (default: as stored)",
            examples=["application/pdf"],
        ),
    ] = None
    ptt: Annotated[
        bool | None,
        Field(description="true or false, audio only: true sends it as a voice note (Ogg Opus)", examples=[True]),
    ] = None

    @model_validator(mode="after")
    def one_source(self) -> MediaSpec:
        if (self.url is None) == (self.media_id is None):
            raise ValueError("must give either 'url' or 'media_id', not both and not neither")
        return self


class Location(Body):
    latitude: Annotated[
        float, Field(ge=-90, le=90, allow_inf_nan=False, description="a number from -90 to 90", examples=[-6.2])
    ]
    longitude: Annotated[
        float, Field(ge=-180, le=180, allow_inf_nan=False, description="a number from -180 to 180", examples=[106.8])
    ]
    name: Annotated[str | None, chars(1, 256), NoNul, Field(examples=["Toko Maju"])] = None
    address: Annotated[str | None, chars(1, 1024), NoNul, Field(examples=["Jl. Sudirman 1, Jakarta"])] = None


class ContactCard(Body):
    """A contact card: a name and a phone number (a vCard 3.0 is built from them), or a whole vCard."""

    name: Annotated[str | None, chars(1, 256), NoNul, Field(examples=["Budi Santoso"])] = None
    phone: Annotated[
        Phone | None, Field(description=f"an international phone number: {EXPECTED_FORM}", examples=["+6289876543210"])
    ] = None
    vcard: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_VCARD,
            pattern=r"^BEGIN:VCARD[\s\S]*END:VCARD\s*$",
            description=f"a vCard of up to {MAX_VCARD} characters, from BEGIN:VCARD to END:VCARD",
        ),
        NoNul,
    ] = None

    @model_validator(mode="after")
    def one_form(self) -> ContactCard:
        if self.vcard is None and (self.name is None or self.phone is None):
            raise ValueError("must give 'name' and 'phone', or a 'vcard'")
        if self.vcard is not None and self.phone is not None:
            raise ValueError("must give 'name' and 'phone', or a 'vcard', not both")
        return self


SEND_EXAMPLES: list[JsonValue] = [
    {"to": "+6281234567890", "text": "Your order #1234 has shipped."},
    {"to": "+6281234567890", "image": {"media_id": "0c6f4a52-8a39-4d7e-9d1c-2f6b0e7d5a11", "caption": "Your receipt"}},
    {"to": "+6281234567890", "video": {"media_id": "0c6f4a52-8a39-4d7e-9d1c-2f6b0e7d5a11", "caption": "How to"}},
    {"to": "+6281234567890", "audio": {"media_id": "0c6f4a52-8a39-4d7e-9d1c-2f6b0e7d5a11", "ptt": True}},
    {
        "to": "+6281234567890",
        "document": {"media_id": "0c6f4a52-8a39-4d7e-9d1c-2f6b0e7d5a11", "file_name": "invoice-1234.pdf"},
    },
    {"to": "+6281234567890", "sticker": {"media_id": "0c6f4a52-8a39-4d7e-9d1c-2f6b0e7d5a11"}},
    {"to": "+6281234567890", "location": {"latitude": -6.2, "longitude": 106.8, "name": "Toko Maju"}},
    {"to": "+6281234567890", "contact": {"name": "Budi Santoso", "phone": "+6289876543210"}},
    {"to": "+6281234567890", "text": "Yes, it is in stock.", "reply_to": "3EB0C431D5F1A2B3C4D5"},
]


class SendMessage(Body):
    model_config = ConfigDict(json_schema_extra={"examples": SEND_EXAMPLES})

    to: RecipientField
    text: Annotated[str | None, chars(1, MAX_TEXT), NoNul] = None
    image: MediaSpec | None = None
    video: MediaSpec | None = None
    audio: MediaSpec | None = None
    document: MediaSpec | None = None
    sticker: MediaSpec | None = None
    location: Location | None = None
    contact: ContactCard | None = None
    reply_to: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=128,
            description="WhatsApp's id of a message in the same chat to quote (a message_id from a webhook event, "
            "or of a message sent here), 1 to 128 characters",
            examples=["3EB0C431D5F1A2B3C4D5"],
        ),
        NoNul,
    ] = None
    typing: Annotated[bool | None, Field(description=TYPING, examples=[True])] = None
    mentions: Annotated[
        list[Mention] | None,
        Field(
            min_length=1,
            max_length=MAX_MENTIONS,
            description=f"a list of 1 to {MAX_MENTIONS} group members to mention ({MENTION_FORMS}); the text "
            "must name each as @<digits> (its number without +, or its LID's digits), where WhatsApp shows the "
            "mention; only in a text message to a group",
            examples=[["+6281234567890"]],
        ),
    ] = None

    @property
    def kind(self) -> str:
        """text, or the one other kind given."""
        return next((kind for kind in KINDS if getattr(self, kind) is not None), "text")

    def asked(self) -> dict[str, Any]:
        """What the request names beyond its text, typing and mentions, as it was given (a url, not the file it was
        fetched into): with them, what makes two requests the same message (queue.request_hash). Empty for a plain
        text, so the keys of texts queued before other kinds existed still match their retries."""
        asked: dict[str, Any] = {}
        if self.kind != "text":
            asked = {"kind": self.kind, "content": getattr(self, self.kind).model_dump(exclude_none=True)}
        if self.reply_to is not None:
            asked["reply_to"] = self.reply_to
        return asked

    @model_validator(mode="after")
    def one_kind(self) -> SendMessage:
        given = [kind for kind in KINDS if getattr(self, kind) is not None]
        if not given and self.text is None:
            raise ValueError(NO_KIND)
        if len(given) + (self.text is not None) != 1:
            raise ValueError(ONE_KIND)
        if given:
            kind = given[0]
            if self.typing:
                raise ValueError(f"'typing' is shown only before a text, not with '{kind}'")
            if self.mentions is not None:
                raise ValueError(f"'mentions' are only for a text, not with '{kind}'")
            spec = getattr(self, kind)
            if isinstance(spec, MediaSpec):
                if kind in CAPTIONLESS and spec.caption is not None:
                    raise ValueError(f"'{kind}.caption': WhatsApp shows no caption on {kind}")
                if kind != "audio" and spec.ptt is not None:
                    raise ValueError(f"'{kind}.ptt' is for audio only (a voice note)")
        return self

    @model_validator(mode="after")
    def mentions_fit(self) -> SendMessage:
        if self.mentions is None:
            return self
        if not self.to.is_group:
            raise ValueError("'mentions' are only for a message to a group (`to` a group JID)")
        text = self.text or ""
        missing = [jid for jid in self.mentions if "@" + jid.partition("@")[0] not in text]
        if missing:
            names = ", ".join("@" + jid.partition("@")[0] for jid in missing)
            raise ValueError(f"'text' must name each mention where WhatsApp shows it; it lacks {names}")
        self.__dict__["mentions"] = list(dict.fromkeys(self.mentions))  # frozen: each member once
        return self


MESSAGE_KINDS = (*queue.MESSAGE_KINDS, *queue.ACTIONS)
CONTENT = (
    "what a message other than text carries: a file {media_id, caption?, file_name?, mimetype, ptt?}, a location "
    "{latitude, longitude, name?, address?} or a contact {name, vcard}; null for a text and for actions"
)


class Message(Answer):
    id: str = Field(json_schema_extra={"format": "uuid"})
    to: str = Field(description="the recipient as given, normalised")
    jid: str = Field(description="where WhatsApp delivers it")
    status: Literal[MESSAGE_STATUSES]  # type: ignore[valid-type]
    error: str | None
    message_id: str | None = Field(description="WhatsApp's id, once sent")
    attempts: int
    typing: bool | None = Field(description="as asked: true, false, or null (as SEND_TYPING_SECONDS says)")
    mentions: list[str] | None = Field(description="the JIDs of the members it mentions; null: nobody")
    kind: Literal[MESSAGE_KINDS] = Field(  # type: ignore[valid-type]
        description="text, image, video, audio, document, sticker, location, contact: a message; reaction, edit, "
        "delete: an action on the message `target` names"
    )
    content: dict[str, Any] | None = Field(description=CONTENT)
    reply_to: str | None = Field(description="WhatsApp's id of the message it quotes; null: none")
    target: str | None = Field(
        description="for an action: the message acted on, by our id or (an incoming one) WhatsApp's; else null"
    )
    created_at: Timestamp
    sent_at: OptionalTimestamp
    delivered_at: OptionalTimestamp
    read_at: OptionalTimestamp


class React(Body):
    emoji: Annotated[
        str,
        Field(
            min_length=0,
            max_length=32,
            description='a string of 0 to 32 characters: the emoji ("" removes the reaction)',
            examples=["👍"],
        ),
        NoNul,
    ]


class EditText(Body):
    text: Annotated[str, chars(1, MAX_TEXT), NoNul, Field(examples=["Your order #1234 has shipped (tracking: 5567)."])]


class MessagesQuery(Body):
    model_config = ConfigDict(strict=False)  # query values arrive as text
    status: Annotated[
        Literal[MESSAGE_STATUSES] | None,  # type: ignore[valid-type]
        Field(description=one_of(MESSAGE_STATUSES)),
    ] = None
    limit: Annotated[int, Field(ge=1, le=200, description="a whole number from 1 to 200")] = 50
    before: Annotated[
        str | None,
        Field(
            description="an ISO-8601 time (the created_at of the last item)", json_schema_extra={"format": "date-time"}
        ),
    ] = None


class MessagePage(Answer):
    items: list[Message]
    next_before: OptionalTimestamp = Field(description="pass as `before` for the next page; null on the last one")


# ---- actions on chats -------------------------------------------------------------------------------------------

MAX_READ_IDS = 100
WHATSAPP_ID = "a WhatsApp message id as a webhook event names it (message_id), 1 to 128 characters"
WhatsAppId = Annotated[
    str, Field(min_length=1, max_length=128, description=WHATSAPP_ID, examples=["3EB0C431D5F1A2B3C4D5"]), NoNul
]


class MarkRead(Body):
    message_ids: Annotated[
        list[WhatsAppId] | None,
        Field(
            min_length=1,
            max_length=MAX_READ_IDS,
            description=f"a list of 1 to {MAX_READ_IDS} ids of messages received in this chat (message_id)",
            examples=[["3EB0C431D5F1A2B3C4D5", "3EB0C431D5F1A2B3C4D6"]],
        ),
    ] = None
    up_to: Annotated[
        WhatsAppId | None,
        Field(
            description=f"the id of a message received in this chat: it and the messages received before it (the "
            f"latest {MAX_READ_IDS}) are marked read; instead of message_ids",
            examples=["3EB0C431D5F1A2B3C4D6"],
        ),
    ] = None

    @model_validator(mode="after")
    def one_way(self) -> MarkRead:
        if (self.message_ids is None) == (self.up_to is None):
            raise ValueError("give either 'message_ids' or 'up_to' (a message id), not both and not neither")
        return self


class MarkedRead(Answer):
    chat: str = Field(description="the chat's JID")
    message_ids: list[str] = Field(description="the messages WhatsApp was told are read")
    receipts: int = Field(description="read receipts sent: one per sender (a group's members each get theirs)")


PRESENCE_STATES = ("typing", "recording", "paused")


class SetPresence(Body):
    state: Annotated[
        Literal[PRESENCE_STATES],  # type: ignore[valid-type]
        Field(description=f"{one_of(PRESENCE_STATES)} (recording: a voice note; paused: neither)", examples=["typing"]),
    ]


class Presence(Answer):
    chat: str = Field(description="the chat's JID")
    state: str = Field(description="what WhatsApp now shows there (it clears it after about 25 s by itself)")


# ---- groups ----------------------------------------------------------------------------------------------------


class Group(Answer):
    jid: str = Field(description="the group's JID, <digits>@g.us (a chat to send to)")
    name: str | None = Field(description="its subject")
    topic: str | None = Field(description="its description")
    owner: str | None = Field(description="the JID of whoever created it")
    created_at: OptionalTimestamp = Field(description="when it was created")
    announce: bool = Field(description="true: only admins may send messages")
    participant_count: int


class Participant(Answer):
    jid: str = Field(description="the member's JID (a LID in groups WhatsApp keeps by LID)")
    phone: str | None = Field(description="the member's phone number, when WhatsApp gives it")
    lid: str | None
    is_admin: bool
    is_super_admin: bool = Field(description="the group's creator")


class GroupDetail(Group):
    participants: list[Participant]


class Groups(Answer):
    groups: list[Group] = Field(description="the groups this account is a member of")


# ---- contacts --------------------------------------------------------------------------------------------------

MAX_CHECK = 50


class CheckContacts(Body):
    phones: Annotated[
        list[Phone],
        Field(
            min_length=1,
            max_length=MAX_CHECK,
            description=f"a list of 1 to {MAX_CHECK} international phone numbers: {EXPECTED_FORM}",
            examples=[["+6281234567890", "+6289876543210"]],
        ),
    ]


class ContactCheck(Answer):
    phone: str = Field(description="the number as asked, normalised (E.164)")
    on_whatsapp: bool = Field(description="whether the number has a WhatsApp account")
    jid: str | None = Field(description="where WhatsApp delivers to it; null when it is not on WhatsApp")
    checked_at: Timestamp = Field(description="when WhatsApp was asked")
    cached: bool = Field(description="true: an answer kept from an earlier check (CHECK_CACHE_DAYS)")


class ContactChecks(Answer):
    results: list[ContactCheck] = Field(description="one per distinct number, in the order asked")


# ---- webhooks ---------------------------------------------------------------------------------------------------

DELIVERY_STATUSES = operator.STATUSES
BULK_RETRY_STATUSES = ("dead", "failed")


class DeliveriesQuery(Body):
    model_config = ConfigDict(strict=False)
    status: Annotated[
        Literal[DELIVERY_STATUSES] | None,  # type: ignore[valid-type]
        Field(description=one_of(DELIVERY_STATUSES)),
    ] = None
    limit: Annotated[int, Field(ge=1, le=500, description="between 1 and 500 (a whole number)")] = 50
    before: Annotated[
        int | None, Field(ge=1, le=2**63 - 1, description="an integer: the id of the last delivery listed")
    ] = None


class RetryAll(Body):
    status: Annotated[
        Literal[BULK_RETRY_STATUSES],  # type: ignore[valid-type]
        Field(description=one_of(BULK_RETRY_STATUSES)),
    ] = "dead"


class EndpointRef(Answer):
    id: int
    url: str = Field(description="the URL without its credentials or query")


class Delivery(Answer):
    id: int
    event_id: str
    type: str
    chat: str | None
    endpoint: EndpointRef
    status: Literal[DELIVERY_STATUSES]  # type: ignore[valid-type]
    attempts: int
    created_at: Timestamp
    next_attempt_at: OptionalTimestamp
    last_attempt_at: OptionalTimestamp
    last_status: int | None
    last_error: str | None
    delivered_at: OptionalTimestamp


class Event(Answer):
    id: str
    type: str
    created_at: Timestamp
    data: dict[str, Any]


class DeliveryWithEvent(Delivery):
    event: Event = Field(description="the event exactly as it is sent")


class DeliveryPage(Answer):
    deliveries: list[Delivery]
    next: str | None = Field(None, description="the next page's URL, when this one is full")


class Retried(Answer):
    id: int
    status: Literal["pending"]


class BulkRetried(Answer):
    status: str
    retried: int


class Endpoint(Answer):
    id: int
    url: str
    active: bool
    paused: bool
    paused_at: OptionalTimestamp
    paused_reason: str | None
    pending: int
    oldest_pending_age_seconds: float | None
    failed: int
    waiting: int
    dead: int
    last_success_at: OptionalTimestamp
    last_error_at: OptionalTimestamp
    last_error: str | None


class Endpoints(Answer):
    endpoints: list[Endpoint]


class Resumed(Answer):
    id: int
    paused: Literal[False]


# ---- media to send --------------------------------------------------------------------------------------------------


class Uploaded(Answer):
    media_id: str = Field(
        json_schema_extra={"format": "uuid"}, description="name it as `media_id` in a send (image, video, audio...)"
    )
    mimetype: str = Field(description="read from the file's bytes, not from what the client said")
    size: int = Field(description="bytes")
    sha256: str = Field(description="the file's SHA-256, hex")
    file_name: str | None = Field(description="the part's file name, as sent; null if it had none")
