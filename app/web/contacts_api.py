"""POST /api/contacts/check: which phone numbers have a WhatsApp account (app/contacts/checks.py keeps the answers
and paces the look-ups)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.contacts.checks import LIMITS, RateLimited
from app.web.endpoint import Operation, Reply, api, reply
from app.web.models import CheckContacts, ContactChecks
from app.web.state import state

PACE = ", ".join(f"{most} per {window} s" for window, most in LIMITS)


async def check(request: Request, body: CheckContacts) -> Response:
    phones = list(dict.fromkeys(body.phones))  # each number once, in the order first asked
    try:
        results = await state(request)["number_checker"].check(phones)
    except RateLimited as error:
        raise HTTPException(429, str(error), {"Retry-After": str(error.retry_after)}) from None
    return reply(ContactChecks.model_validate({"results": results}))


ROUTES = [
    api(
        "/api/contacts/check",
        "POST",
        Operation(
            "Whether phone numbers are on WhatsApp, and their JIDs",
            {
                200: Reply("one answer per number", ContactChecks),
                409: Reply("WhatsApp is not connected, or did not answer; the detail says which (try again)"),
                422: Reply("a number is invalid (the detail names it), or WhatsApp refused the look-up"),
                429: Reply(
                    f"the look-ups at WhatsApp are paced ({PACE}; cached answers do not count): Retry-After says "
                    "when these would fit, or WhatsApp itself answered with its rate limit",
                    headers={"Retry-After": "seconds"},
                ),
            },
            body=CheckContacts,
            description=(
                f"Answers are kept for CHECK_CACHE_DAYS and reused; numbers not cached are looked up at WhatsApp, "
                f"at most {PACE}, because bulk checks get accounts banned."
            ),
        ),
        check,
    ),
]
