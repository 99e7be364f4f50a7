"""What the active dispatcher holds in memory during one tenure of the dispatch lock: the claimed deliveries per lane
(a chat at one endpoint), each endpoint's queue of lanes ready to send, and the tasks sending them.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import uuid
from typing import Any

from app.webhooks.deliveries import Claimed


@dataclasses.dataclass(eq=False)
class Lane:
    """The claimed deliveries of one chat to one endpoint, in seq order."""

    key: tuple[int, str]
    rows: collections.deque[Claimed] = dataclasses.field(default_factory=collections.deque)
    queued: bool = False  # in its endpoint's ready queue
    running: bool = False  # a sender is working on it
    blocked: bool = False  # an attempt failed; until that is stored, nothing else of the lane may go out


@dataclasses.dataclass(eq=False)
class EndpointWork:
    id: int
    url: str
    ready: asyncio.Queue[Lane] = dataclasses.field(default_factory=asyncio.Queue)
    paused: bool = False  # answered 410; cleared once that is stored (claims then skip the endpoint)
    failing: bool = False  # for logging the change between working and failing once, not every attempt


@dataclasses.dataclass(eq=False)
class Holding:
    """One tenure of the dispatch lock: what was claimed under `token`, and the tasks sending it."""

    token: uuid.UUID
    lanes: dict[tuple[int, str], Lane] = dataclasses.field(default_factory=dict)
    endpoints: dict[int, EndpointWork] = dataclasses.field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = dataclasses.field(default_factory=set)
    held: int = 0  # claimed, not yet attempted
    in_flight: int = 0
    idle: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    over: bool = False
    broken: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)  # a side task died, or the lock went
