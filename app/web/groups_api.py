"""GET /api/groups (the account's groups) and GET /api/groups/{jid} (one, with its members), asked of WhatsApp each
time: the answer is as current as WhatsApp's."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.phone import GROUP_FORMS, group_jid
from app.session.supervisor import SessionError
from app.web.endpoint import Operation, Reply, api, reply
from app.web.models import GroupDetail, Groups
from app.web.state import state
from app.whatsapp import protocol

GROUP = {
    "jid": {
        "type": "string",
        "description": GROUP_FORMS,
        "examples": ["120363021234567890@g.us", "6281234567890-1600000000@g.us"],
    }
}
NOT_NOW = "WhatsApp is not connected, or did not answer; the detail says which (try again)"
# whatsmeow's ErrNotInGroup and ErrGroupNotFound: nothing this account can see.
NOT_VISIBLE = ("not participating in that group", "group does not exist")


async def groups(request: Request) -> Response:
    answer = await state(request)["supervisor"].command(protocol.JOINED_GROUPS, {})
    return reply(Groups.model_validate(answer))


async def group(request: Request) -> Response:
    try:
        jid = group_jid(request.path_params["jid"])
    except ValueError as error:
        raise HTTPException(422, f"the group in the path {error}") from None
    try:
        answer = await state(request)["supervisor"].command(protocol.GROUP_INFO, {"jid": jid})
    except SessionError as error:
        if any(words in str(error) for words in NOT_VISIBLE):
            raise HTTPException(404, f"no such group for this account: {error}") from None
        raise
    return reply(GroupDetail.model_validate(answer))


ROUTES = [
    api(
        "/api/groups",
        "GET",
        Operation(
            "The groups this account is a member of",
            {200: Reply("the groups", Groups), 409: Reply(NOT_NOW), 429: Reply("WhatsApp's rate limit; try later")},
        ),
        groups,
    ),
    api(
        "/api/groups/{jid}",
        "GET",
        Operation(
            "One group and its members",
            {
                200: Reply("the group", GroupDetail),
                404: Reply("the account is not a member of that group, or it does not exist"),
                409: Reply(NOT_NOW),
                422: Reply("not a group JID"),
                429: Reply("WhatsApp's rate limit; try later"),
            },
            path=GROUP,
        ),
        group,
    ),
]
