"""The single-session lease: only the process holding it runs a worker (app/db/lease.py has the mechanism).

A standby process polls for it every POLL_INTERVAL and takes over within that; the holder's watch notices a lost
connection within about CHECK_INTERVAL, and then the supervisor kills its worker at once, because another process may
already be taking over.
"""

from __future__ import annotations

from app.db.lease import Lease

LEASE_KEY = 0x77616761_73657373  # "wagasess": the one advisory-lock key for the WhatsApp session
POLL_INTERVAL = 1.0  # seconds between attempts while in standby
CHECK_INTERVAL = 1.0  # seconds between checks of the holder's connection
CHECK_TIMEOUT = 3.0


def session_lease(database_url: str) -> Lease:
    return Lease(
        database_url,
        LEASE_KEY,
        name="session",
        poll_interval=POLL_INTERVAL,
        check_interval=CHECK_INTERVAL,
        check_timeout=CHECK_TIMEOUT,
    )
