"""Every body and answer of the JSON API, typed once: requests are validated and documented (OpenAPI) from these.

Why pydantic v2: one declaration gives the validation, the error locations (`loc`, down to a list item) and the JSON
Schema of the OpenAPI document (draft 2020-12, what OpenAPI 3.1 uses), so the three cannot drift apart; it parses the
raw body in its Rust core (no json.loads pass first), and it is the most widely kept model library for Python.
msgspec is faster still but its schemas and errors name less; attrs with cattrs generates no JSON Schema.

Bodies are strict (a number is no string, `true` no 1) and ignore fields they do not know, as the API always did.
A field's `description` reads after "must be": it is both the document's text and the 422's (app/web/endpoint.py).
Phone numbers and chat addresses are checked by app/phone.py alone; the models only call it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    RootModel,
    WithJsonSchema,
    model_validator,
)

from app.phone import EXPECTED_FORM, Recipient, group_jid, normalise_phone, parse_recipient


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


def to_group(value: str) -> str:
    return group_jid(value)  # ValueError: "must be a group JID ... or its id"


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
GroupField = Annotated[
    str,
    Field(max_length=64, description="a group JID (<digits>@g.us or <digits>-<digits>@g.us) or its id"),
    AfterValidator(to_group),
]
# An ISO-8601 time as the app writes it (datetime.isoformat()); kept as text so answers show it unchanged.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
OptionalTimestamp = Annotated[str | None, WithJsonSchema({"type": ["string", "null"], "format": "date-time"})]

MESSAGE_TYPES = ("text", "image", "video", "audio", "document", "sticker", "location", "contact", "poll", "other")
# Simulated items that are not messages: each becomes the event a real one would (app/whatsapp/simulator.py).
EVENT_TYPES = ("edit", "delete", "reaction", "poll_vote", "undecryptable", "call", "status")
TARGETED = ("edit", "delete", "reaction", "poll_vote")  # these act on an earlier message: target_id is required
DISCONNECT_REASONS = ("connection_lost", "logged_out", "replaced", "banned", "outdated", "silent")
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
MAX_BATCH = 5000  # messages per simulated `incoming` command, and the largest offline backlog
MAX_BAN_SECONDS = 31 * 86400
MAX_RECEIPT_IDS = 1000


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


class Status(RootModel[dict[str, Any]]):
    """GET /api/status. The one place its model goes: app/status.py's typed status replaces this free-form object."""


# ---- the simulator ----------------------------------------------------------------------------------------------


class SimulatorPair(Body):
    phone: Phone | None = None
    push_name: Annotated[str | None, chars(1, 100), NoNul] = None


class Media(Body):
    """null or {"mimetype", "size", "file_name"} (each optional), as in a message.received webhook."""

    model_config = ConfigDict(extra="forbid")
    mimetype: Annotated[str | None, chars(0, 255), NoNul] = None
    size: Annotated[int | None, Field(ge=0, lt=2**53)] = None
    file_name: Annotated[str | None, chars(0, 255), NoNul] = None


OptionList = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=100), NoNul]] | None,
    Field(max_length=12, description="a list of up to 12 strings of 1 to 100 characters"),
]


class SimulatorIncoming(Body):
    sender: Phone = Field(alias="from")
    text: Annotated[str | None, chars(1, MAX_TEXT), NoNul] = None
    message_id: Annotated[str | None, chars(1, 128), NoNul] = None
    push_name: Annotated[str | None, chars(1, 100), NoNul] = None
    group: GroupField | None = None
    type: Annotated[
        Literal[MESSAGE_TYPES + EVENT_TYPES],  # type: ignore[valid-type]
        Field(description=one_of(MESSAGE_TYPES + EVENT_TYPES)),
    ] = "text"
    media: Annotated[
        Media | None,
        Field(description="null or an object with mimetype (string), size (integer >= 0), file_name (string)"),
    ] = None
    from_me: Annotated[bool, Field(description="true or false")] = False
    target_id: Annotated[
        str | None,
        Field(min_length=1, max_length=128, description=f"the message id that {', '.join(TARGETED)} act on"),
        NoNul,
    ] = None
    emoji: Annotated[str | None, chars(0, 16), NoNul] = None
    options: OptionList = None
    selected: OptionList = None
    video: Annotated[bool, Field(description="true or false")] = False
    count: Annotated[int | None, Field(ge=1, le=MAX_BATCH, description=f"an integer from 1 to {MAX_BATCH}")] = None

    @model_validator(mode="after")
    def targeted(self) -> SimulatorIncoming:
        if self.type in TARGETED and self.target_id is None:
            raise ValueError(f"'target_id' is required when type is {', '.join(TARGETED)}")
        return self

    def args(self) -> dict[str, Any]:
        """What the simulator takes (app/whatsapp/simulator.py): `count` only when given (a batch answers with ids)."""
        args = self.model_dump(by_alias=True, exclude={"count"})
        if self.count is not None:
            args["count"] = self.count
        return args


class SimulatorReceipt(Body):
    sender: Phone = Field(alias="from")
    message_ids: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=128), NoNul]],
        Field(
            min_length=1,
            max_length=MAX_RECEIPT_IDS,
            description=f"a list of 1 to {MAX_RECEIPT_IDS} WhatsApp message ids (strings)",
        ),
    ]
    status: Annotated[Literal["delivered", "read", "played"], Field(description="delivered, read or played")] = (
        "delivered"
    )
    group: GroupField | None = None


class SimulatorDisconnect(Body):
    reason: Annotated[
        Literal[DISCONNECT_REASONS],  # type: ignore[valid-type]
        Field(description=one_of(DISCONNECT_REASONS)),
    ] = "connection_lost"
    seconds: Annotated[
        float,
        Field(gt=0, le=MAX_BAN_SECONDS, allow_inf_nan=False, description=f"seconds above 0, at most {MAX_BAN_SECONDS}"),
    ] = 3600
    backlog: Annotated[
        int, Field(ge=0, le=MAX_BATCH, description=f"a whole number of messages from 0 to {MAX_BATCH}")
    ] = 0
    reconnect: Annotated[bool, Field(description="true or false")] = True


class SimulatorSendFailures(Body):
    count: Annotated[int, Field(ge=1, le=100, description="a whole number from 1 to 100")] = 1
    permanent: Annotated[bool, Field(description="true or false")] = False
    error: Annotated[str | None, chars(1, 200), NoNul] = None
    delay: Annotated[float, Field(ge=0, le=120, allow_inf_nan=False, description="seconds from 0 to 120")] = 0


class SimulatorGrow(Body):
    mb: Annotated[int, Field(ge=1, le=2048, description="a whole number of megabytes from 1 to 2048")]


class Paired(Answer):
    jid: str
    push_name: str


class Incoming(Answer):
    chat: str
    message_id: str | None = Field(None, description="the message's id (one message)")
    message_ids: list[str] | None = Field(None, description="the messages' ids (a batch: `count` was given)")


class Receipt(Answer):
    chat: str
    message_ids: list[str]
    status: str
    timestamp: Timestamp


class Disconnected(Answer):
    reason: str


class FailingSends(Answer):
    failing_sends: int


class Grown(Answer):
    held_mb: int


class WorkerAction(Answer):
    action: str
    worker_pid: int | None


# ---- sending ----------------------------------------------------------------------------------------------------


class SendMessage(Body):
    to: RecipientField
    text: Annotated[str, chars(1, MAX_TEXT), NoNul]


class Message(Answer):
    id: str = Field(json_schema_extra={"format": "uuid"})
    to: str = Field(description="the recipient as given, normalised")
    jid: str = Field(description="where WhatsApp delivers it")
    status: Literal[MESSAGE_STATUSES]  # type: ignore[valid-type]
    error: str | None
    message_id: str | None = Field(description="WhatsApp's id, once sent")
    attempts: int
    created_at: Timestamp
    sent_at: OptionalTimestamp
    delivered_at: OptionalTimestamp
    read_at: OptionalTimestamp


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


# ---- webhooks ---------------------------------------------------------------------------------------------------

DELIVERY_STATUSES = ("pending", "delivering", "failed", "waiting", "delivered", "dead")
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
