"""The reconnect policy as one pure function: (reason, history) -> what to do and when. Unit-tested as a table.

Seed systems died of tight reconnect loops and of two connection attempts at once; every delay here has a floor, and
the supervisor acts on one decision at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from app.backoff import Jitter, backoff
from app.session.states import Reason, State

TRANSIENT = frozenset(
    {
        Reason.CONNECTION_LOST,
        Reason.DIAL_FAILED,
        Reason.CONNECT_FAILURE,
        Reason.WORKER_CRASHED,
        Reason.WORKER_HUNG,
        Reason.HEARTBEAT_LOST,
        Reason.PUMP_ENDED,
        Reason.WORKER_MEMORY,
    }
)
# Not the network but the worker: a new one comes up at once the first time; a repeat backs off.
AT_ONCE = frozenset({Reason.WORKER_CRASHED, Reason.PUMP_ENDED, Reason.WORKER_MEMORY})


@dataclasses.dataclass(frozen=True)
class Policy:
    base_delay: float = 2.0  # exponential backoff with full jitter, base 2 s ...
    max_delay: float = 300.0  # ... capped at 5 min
    min_delay: float = 0.5  # never a tight loop, however the jitter falls
    stable_after: float = 60.0  # seconds connected after which the failure count starts again from zero
    replaced_delay: float = 60.0  # a replaced stream waits 60 s +- 20 %: the other client is probably still there
    replaced_jitter: float = 0.2
    replaced_limit: int = 3  # replaced this many times ...
    replaced_window: dt.timedelta = dt.timedelta(minutes=10)  # ... within this window: wait for the operator
    ban_fallback: float = 3600.0  # a ban without a known expiry: look again in an hour
    reconnect_grace: float = 30.0  # whatsmeow's own reconnects (0, 2, 4, 6 s apart) go on this long


DEFAULT = Policy()


@dataclasses.dataclass(frozen=True)
class Decision:
    state: State
    delay: float | None  # seconds until the next worker; None = wait for the operator
    explanation: str  # what happens next; for a transient failure only that (the reason is said elsewhere)


def decide(
    reason: Reason,
    *,
    attempt: int,
    now: dt.datetime,
    replaced_at: tuple[dt.datetime, ...] = (),
    banned_until: dt.datetime | None = None,
    rng: random.Random | None = None,
    policy: Policy = DEFAULT,
) -> Decision:
    """What to do after `reason`. `attempt` counts failures since the session was last stable (0 = first);
    `replaced_at` holds earlier replacements (this one not included)."""
    rng = rng or random.Random()
    if reason in TRANSIENT:
        if reason in AT_ONCE and attempt == 0:
            # The worker failed, not the network: bring a new one up at once; a repeat backs off.
            return Decision(State.RECONNECTING, policy.min_delay, "a new worker at once")
        delay = backoff(
            attempt, base=policy.base_delay, cap=policy.max_delay, jitter=Jitter.FULL, floor=policy.min_delay, rng=rng
        )
        return Decision(State.RECONNECTING, delay, f"retry {attempt + 1} in {delay:.1f} s")
    if reason is Reason.LOGGED_OUT:
        return Decision(State.LOGGED_OUT, None, "the device was unlinked; pairing is needed")
    if reason is Reason.PAIRING_EXPIRED:
        return Decision(State.LOGGED_OUT, None, "the QR round ended unscanned; start a new one")
    if reason is Reason.PAIRING_FAILED:
        return Decision(State.LOGGED_OUT, None, "the phone refused the link; start a new round")
    if reason is Reason.BAD_USER_AGENT:
        return Decision(State.STOPPED, None, "WhatsApp refuses this client (409); upgrade the app and redeploy")
    if reason is Reason.OUTDATED:
        return Decision(State.STOPPED, None, "WhatsApp refuses this client version; upgrade neonize and redeploy")
    if reason is Reason.REPLACED:
        recent = [at for at in replaced_at if now - at <= policy.replaced_window]
        if len(recent) + 1 >= policy.replaced_limit:
            return Decision(
                State.STOPPED,
                None,
                f"replaced {len(recent) + 1} times in 10 minutes: another client keeps taking this session; "
                "reconnect when it is gone",
            )
        jitter = rng.uniform(1 - policy.replaced_jitter, 1 + policy.replaced_jitter)
        delay = policy.replaced_delay * jitter
        return Decision(State.REPLACED, delay, f"another client took the stream; retry in {delay:.0f} s")
    if reason is Reason.BANNED:
        if banned_until is None:
            return Decision(State.BANNED, policy.ban_fallback, "temporarily banned, expiry unknown; retry in an hour")
        delay = max(policy.min_delay, (banned_until - now).total_seconds()) + rng.uniform(0, 30)
        return Decision(State.BANNED, delay, f"temporarily banned until {banned_until.isoformat()}")
    raise ValueError(f"no policy for {reason!r}")
