"""The bodies and answers of the simulator's routes (app/web/simulator_api.py), built from app/web/models.py's pieces:
what a test or a demo may ask the simulated WhatsApp (app/whatsapp/simulator.py) to do."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from app.phone import group_jid
from app.web.models import MAX_TEXT, Answer, Body, NoNul, Phone, Timestamp, chars, one_of

MESSAGE_TYPES = ("text", "image", "video", "audio", "document", "sticker", "location", "contact", "poll", "other")
# Simulated items that are not messages: each becomes the event a real one would (app/whatsapp/simulator.py).
EVENT_TYPES = ("edit", "delete", "reaction", "poll_vote", "undecryptable", "call", "status")
TARGETED = ("edit", "delete", "reaction", "poll_vote")  # these act on an earlier message: target_id is required
DISCONNECT_REASONS = ("connection_lost", "logged_out", "replaced", "banned", "outdated", "silent")
MAX_BATCH = 5000  # messages per simulated `incoming` command, and the largest offline backlog
MAX_BAN_SECONDS = 31 * 86400
MAX_RECEIPT_IDS = 1000


def to_group(value: str) -> str:
    return group_jid(value)  # ValueError: "must be a group JID ... or its id"


GroupField = Annotated[
    str,
    Field(max_length=64, description="a group JID (<digits>@g.us or <digits>-<digits>@g.us) or its id"),
    AfterValidator(to_group),
]


class SimulatorPair(Body):
    phone: Phone | None = None
    push_name: Annotated[str | None, chars(1, 100), NoNul] = None


class Media(Body):
    """null or {"mimetype", "size", "file_name"} (each optional), as in a message.received webhook. `size` over
    MEDIA_MAX_BYTES stands for a file too large to download; an image is made that large (a PNG of
    random pixels), for load tests."""

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
        Field(
            description="null or an object with mimetype (string), size (integer >= 0: an image is made "
            "that many bytes, of random pixels), file_name (string)"
        ),
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


SIMULATED_ACTIONS = (
    "mark_read",
    "presence",
    "check_numbers",
    "reaction",
    "edit",
    "revoke",
    "joined_groups",
    "group_info",
    "reject_call",
    "download",
)  # what the simulated server can be made to refuse (action_failures); `download`: incoming media, by its error


class SimulatorActionFailures(Body):
    name: Annotated[
        Literal[SIMULATED_ACTIONS],  # type: ignore[valid-type]
        Field(description=f"the action that fails: {', '.join(SIMULATED_ACTIONS)}"),
    ]
    count: Annotated[int, Field(ge=1, le=100, description="a whole number from 1 to 100")] = 1
    permanent: Annotated[bool, Field(description="true or false")] = False
    error: Annotated[str | None, chars(1, 200), NoNul] = None


class SimulatedGroup(Body):
    jid: GroupField
    name: Annotated[str | None, chars(1, 100), NoNul] = None
    topic: Annotated[str | None, chars(1, 500), NoNul] = None
    participants: Annotated[
        list[Phone], Field(max_length=1024, description="a list of up to 1024 international phone numbers")
    ] = []
    admins: Annotated[list[Phone], Field(max_length=1024, description="a list of the participants who are admins")] = []
    announce: Annotated[bool, Field(description="true or false")] = False


class SimulatorGroups(Body):
    groups: Annotated[
        list[SimulatedGroup], Field(max_length=100, description="a list of up to 100 groups (jid, name, participants)")
    ]


class SimulatorNumbers(Body):
    absent: Annotated[
        list[Phone],
        Field(max_length=1000, description="a list of up to 1000 international phone numbers with no WhatsApp account"),
    ] = []


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


class FailingActions(Answer):
    name: str
    failing: int


class ServerAction(Answer):
    model_config = ConfigDict(extra="allow")  # each action carries its own arguments (chat, message_ids, ...)
    action: str
    at: Timestamp


class ServerActions(Answer):
    actions: list[ServerAction] = Field(description="what the simulated server was asked to do, oldest first")


class GroupList(Answer):
    groups: list[str] = Field(description="the JIDs of the account's simulated groups")


class Numbers(Answer):
    absent: list[str] = Field(description="the numbers the simulated WhatsApp has no account for")


class Grown(Answer):
    held_mb: int


class WorkerAction(Answer):
    action: str
    worker_pid: int | None
