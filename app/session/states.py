"""The session's states: public names (the API, the page and the `session.state_changed` webhook use them)."""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    STARTING = "starting"
    STANDBY = "standby"  # another process holds the lease
    CONNECTING = "connecting"
    PAIRING = "pairing"  # a QR code or pair code is on offer
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"  # transient loss; retry_at is known
    LOGGED_OUT = "logged_out"  # unlinked: needs pairing
    REPLACED = "replaced"  # another client took the stream
    BANNED = "banned"  # temporary ban; until is known
    STOPPED = "stopped"


class Reason(enum.StrEnum):
    """Why the session left where it was: the input of the reconnect policy."""

    CONNECTION_LOST = "connection_lost"
    DIAL_FAILED = "dial_failed"
    CONNECT_FAILURE = "connect_failure"
    WORKER_CRASHED = "worker_crashed"
    WORKER_HUNG = "worker_hung"
    HEARTBEAT_LOST = "heartbeat_lost"  # the worker answers but its link is down behind a "connected" state
    LOGGED_OUT = "logged_out"
    PAIRING_EXPIRED = "pairing_expired"
    REPLACED = "replaced"
    BANNED = "banned"
    OUTDATED = "outdated"
    PUMP_ENDED = "pump_ended"  # the library stopped handing events over while its client stayed connected
    PAIRING_FAILED = "pairing_failed"  # the phone refused the link (not outdated: that is OUTDATED)
    BAD_USER_AGENT = "bad_user_agent"  # WhatsApp refuses this client (409); retrying cannot help
    WORKER_MEMORY = "worker_memory"  # the memory watchdog replaced a worker grown past WORKER_MAX_RSS_MB
