"""Property-based fuzz of the API's inputs against the real server: whatever arrives, the answer is never a 5xx,
and every error is the JSON `{"error", "detail"}` shape.

Routes whose only effect is to restart the session (reconnect, logout, pair, crash, hang) take no input and are left
out: a restart in progress may rightly answer 503 for a moment. Valid disconnect reasons are left out for the same
reason; their validation is fuzzed all the same.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.web.simulator_models import DISCONNECT_REASONS
from tests.processes import TOKEN, AppProcess
from tests.web.test_api import AUTH

FIELDS = (
    "phone",
    "from",
    "text",
    "message_id",
    "push_name",
    "group",
    "type",
    "media",
    "message_ids",
    "status",
    "reason",
    "seconds",
)
POSTS = (
    "/api/session/pair-code",
    "/api/simulator/pair",
    "/api/simulator/incoming",
    "/api/simulator/receipt",
    "/api/simulator/disconnect",
)
CONTENT_TYPES = (
    None,
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
)
NASTY_BODIES = (
    b"[" * 2000 + b"]" * 2000,
    b'{"phone": "\\ud800"}',
    b'{"push_name": "\\udfff x", "phone": "+6281234567890"}',
    b'{"text": "\\u0000", "from": "+6281234567890"}',
    b'{"from": "+6281234567890\\n"}',
    b'{"seconds": NaN, "reason": "banned"}',
    b'{"seconds": 1e999, "reason": "banned"}',
    b'{"phone": "+\\u0666\\u0662\\u0668\\u0661\\u0662\\u0663\\u0664\\u0665\\u0666\\u0667"}',
    b'{"message_ids": [' + b'"x",' * 1001 + b'"x"], "from": "+6281234567890"}',
    b"\xff\xfe\x00",
    b"",
)

phones = st.one_of(
    st.just("+6281234567890"),
    st.from_regex(r"\A\+[1-9][0-9]{6,14}\Z"),
    st.from_regex(r"\A[+0-9 ()-]{0,20}\Z"),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    phones,
    st.sampled_from(["delivered", "read", "played", "text", "image", "other", "meteor", "Banned", "silent "]),
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
objects = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6).map(
    # a valid reason would really end the connection (see the module's docstring)
    lambda body: {**body, "reason": f"x{body['reason']}"} if body.get("reason") in DISCONNECT_REASONS else body
)
bodies = st.one_of(
    objects.map(lambda body: json.dumps(body).encode()),
    values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
    st.sampled_from(NASTY_BODIES),
)
# What HTTP allows in a header value (no surrounding whitespace: h11 would refuse to send it).
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(str.strip)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["post", "post", "post", "get", "action"]))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type:
        headers["Content-Type"] = content_type
    if kind == "get":
        path = draw(st.sampled_from(["/api/status", "/api/session/qr", "/api/openapi.json"]))
        query = draw(st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3))
        return {"method": "GET", "url": path, "params": query, "headers": headers}
    if kind == "action":
        path = "/api/simulator/" + draw(st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=12))
        if path.endswith(("/crash", "/hang")):
            path += "x"
    else:
        path = draw(st.sampled_from(POSTS))
    if path == "/api/simulator/disconnect":  # always a reason, never a valid one (see the module's docstring)
        body = {**draw(objects), "reason": draw(st.sampled_from(["", "x", "Banned", "silent ", "connection-lost"]))}
        headers["Content-Type"] = "application/json"
        return {"method": "POST", "url": path, "content": json.dumps(body).encode(), "headers": headers}
    return {"method": "POST", "url": path, "content": draw(bodies), "headers": headers}


@st.composite
def strangers(draw: st.DrawFn) -> dict[str, Any]:
    """Requests with made-up credentials: refused, never a crash."""
    headers = {
        "Authorization": draw(header_text),
        "Cookie": "wag_session=" + draw(header_text.filter(lambda text: ";" not in text)),
        "X-CSRF-Token": draw(header_text),
        "Origin": draw(header_text),
    }
    path = draw(st.sampled_from(["/api/status", "/api/session/qr", *POSTS, "/events", "/logout"]))
    method = "GET" if path in ("/api/status", "/api/session/qr", "/events") else "POST"
    return {"method": method, "url": path, "headers": headers, "content": draw(bodies)}


FUZZ = settings(
    max_examples=250,
    deadline=None,
    database=None,
    derandomize=True,  # the same inputs on every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(response: httpx.Response, request: dict[str, Any]) -> None:
    assert response.status_code < 500, (request["method"], request["url"], response.status_code, response.text)
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        assert set(body) == {"error", "detail"} and body["detail"], body


def test_api_inputs_never_cause_a_5xx(database_url: str, tmp_path: Path) -> None:
    app = AppProcess(database_url, tmp_path / "app.log", env={"SIMULATOR_QR_SECONDS": "600"}).start()
    try:
        app.wait_state("pairing")
        seen: collections.Counter[tuple[str, int]] = collections.Counter()
        with httpx.Client(base_url=app.url, timeout=30) as client:

            @FUZZ
            @given(request=requests())
            def authenticated(request: dict[str, Any]) -> None:
                response = client.request(**request)
                check(response, request)
                seen[request["url"], response.status_code] += 1

            @FUZZ
            @given(request=strangers())
            def unauthenticated(request: dict[str, Any]) -> None:
                response = client.request(**request)
                check(response, request)
                assert response.status_code in (303, 401, 403), (request, response.status_code)

            authenticated()
            unauthenticated()
            assert client.get("/healthz").json()["ok"] is True
        # The fuzz reached the routes' validation (whether random inputs also reach a 2xx depends on the draw).
        assert seen["/api/session/pair-code", 422] and seen["/api/simulator/disconnect", 422]
    finally:
        assert app.terminate() == 0
    assert "Traceback" not in app.output() and "unhandled error" not in app.output()


# What the fuzz found (or would find) before the API validated it: each is a clear 4xx now.
CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("/api/simulator/disconnect", {"reason": "banned", "seconds": "abc"}, 422, "'seconds'"),
    ("/api/simulator/disconnect", {"reason": "banned", "seconds": True}, 422, "'seconds'"),
    ("/api/simulator/disconnect", {"reason": "banned", "seconds": 1e300}, 422, "'seconds'"),
    ("/api/simulator/disconnect", {"reason": "banned", "seconds": -5}, 422, "'seconds'"),
    ("/api/simulator/pair", {"phone": "6281234567890"}, 422, "+<country code><number>"),
    ("/api/simulator/pair", {"phone": "+62 812"}, 422, "+<country code><number>"),
    ("/api/simulator/pair", {"push_name": "a\x00b"}, 422, "without NUL"),
    ("/api/simulator/pair", {"push_name": "\ud800"}, 400, "not valid JSON"),  # a lone surrogate is no text
    ("/api/simulator/incoming", {"from": "+6281234567890", "type": "hologram"}, 422, "'type' must be one of"),
    ("/api/simulator/incoming", {"from": "+6281234567890", "media": {"size": "big"}}, 422, "'media'"),
    ("/api/simulator/incoming", {"from": "+6281234567890", "media": {"x": 1}}, 422, "'media'"),
    ("/api/simulator/receipt", {"from": "+6281234567890", "message_ids": ["a"] * 1001}, 422, "1 to 1000"),
    ("/api/simulator/receipt", {"from": "+6281234567890", "message_ids": [""]}, 422, "message ids"),
]


async def test_inputs_the_fuzz_is_about(client: httpx.AsyncClient) -> None:
    for path, body, status, words in CASES:
        response = await client.post(
            path, headers={**AUTH, "Content-Type": "application/json"}, content=json.dumps(body).encode()
        )
        assert response.status_code == status, (path, body, response.text)
        assert words in response.json()["detail"], (path, body)


async def test_json_nested_too_deeply_is_a_400(client: httpx.AsyncClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    response = await client.post("/api/session/pair-code", headers=AUTH, content=deep)
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]
