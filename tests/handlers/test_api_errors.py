"""Every error of the dashboard API (`/api`, `/api/*`) is the seed's `ErrorResponse`,
`{"error": <short sentence>, "details": <the specifics>}`, with its status and a JSON
content type: the handlers' own (bad parameter, unknown id, no request log, invalid
settings) and Sanic's (unknown route, wrong method, oversized body, a crash). The
model API (`/v1/*`) keeps Anthropic's shape, which the SDKs parse."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from pymongo.errors import ServerSelectionTimeoutError
from sanic import Sanic

from app import create_app
from runtime.settings import Settings
from tests.conftest import ProxyProcess, start_proxy
from tests.fake_upstream import FakeUpstream

MAX_BYTES = 64 * 1024
UNKNOWN_ID = "f" * 32
LOG_OFF = (
    "Request log unavailable",
    "The request log is disabled (REQUEST_LOG=false) or its database is not connected",
)
_T = "start=2026-11-01&end=2026-11-02"


@pytest.fixture(scope="module")
def served(
    upstream: FakeUpstream, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("api_errors")
    proxy = start_proxy(
        tmp,
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "MONGODB_URI": mongo_uri,
            "REQUEST_MAX_BYTES": str(MAX_BYTES),
            "DATA_DIR": str(tmp / "data"),
        },
    )
    yield proxy
    proxy.stop()


def _log_off_app() -> Sanic:
    return create_app(
        Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9", "REQUEST_LOG": "false"})
    )


def _bad(name: str, rule: str) -> tuple[int, str, str]:
    return 400, f"Invalid parameter '{name}'", f"{name}: {rule}"


# (method, path, body) → (status, error, the start of details), on the live proxy
# with its request log.
LIVE: list[tuple[str, str, bytes | None, tuple[int, str, str]]] = [
    ("GET", "/api/requests?page=0", None, _bad("page", "must be between 1 and 1000000")),
    ("GET", "/api/requests?limit=ten", None, _bad("limit", "must be an integer")),
    ("GET", "/api/requests?model=%01", None, _bad("model", "must be at most 200")),
    ("GET", "/api/requests/summary?start=soon", None, _bad("start", "not an ISO 8601")),
    ("GET", "/api/requests/summary?offset=-1", None, _bad("offset", "must be between 0")),
    ("GET", "/api/requests/NOT-HEX", None, _bad("id", "must be 4 to 32 lowercase hex")),
    (
        "GET",
        f"/api/requests/{UNKNOWN_ID}",
        None,
        (404, "Request not found", f"No logged request has the id {UNKNOWN_ID}"),
    ),
    *[
        ("GET", f"/api/stats{route}?start=2026-11-02&end=2026-11-01", None, _bad("end", "must"))
        for route in ("", "/dashboard", "/hourly", "/models", "/latency", "/ratelimits")
    ],
    ("GET", "/api/stats?start_date=2026-13-45", None, _bad("start_date", "not a valid date")),
    ("GET", "/api/stats/hourly", None, _bad("start", "required")),
    ("GET", f"/api/stats/hourly?{_T}&bucket=7", None, _bad("bucket", "must be one of")),
    ("GET", f"/api/stats/ratelimits?{_T}&tz=Mars/Base", None, _bad("tz", "unknown IANA")),
    ("GET", "/api/stats/models?start=2026-11-01", None, _bad("end", "required")),
    ("GET", "/api/conversations?limit=101", None, _bad("limit", "must be between 1 and 100")),
    ("GET", "/api/conversations/project", None, _bad("project", "required")),
    ("GET", "/api/conversations/search", None, _bad("q", "required")),
    ("GET", "/api/conversations/search?q=%21%21", None, _bad("q", "needs a word")),
    ("GET", "/api/conversations/bad%20id", None, _bad("id", "1 to 128 letters")),
    (
        "GET",
        "/api/conversations/no-such-conversation",
        None,
        (404, "Conversation not found", "No conversation no-such-conversation"),
    ),
    (
        "GET",
        "/api/conversations/no-such-conversation?project=/p",
        None,
        (404, "Conversation not found", "No conversation no-such-conversation in project /p"),
    ),
    (
        "PUT",
        "/api/settings",
        b"{not json",
        (400, "Invalid settings", "settings: body is not valid JSON"),
    ),
    (
        "PUT",
        "/api/settings",
        b'{"requestHeaderRules": [{"header": "x", "action": "explode"}]}',
        (400, "Invalid settings", "requestHeaderRules[0].action: must be one of"),
    ),
    ("PUT", "/api/settings", b"[]", (400, "Invalid settings", "settings: must be a JSON object")),
    ("GET", "/api", None, (404, "Not found", "No dashboard API route matches GET /api")),
    ("GET", "/api/", None, (404, "Not found", "No dashboard API route matches GET /api/")),
    ("GET", "/api/nope", None, (404, "Not found", "No dashboard API route matches GET /api/nope")),
    ("POST", "/api/requests", b"{}", (405, "Method not allowed", "POST is not allowed")),
    ("PUT", "/api/requests/abcd", b"{}", (405, "Method not allowed", "PUT is not allowed")),
    ("DELETE", "/api/settings", None, (405, "Method not allowed", "DELETE is not allowed")),
    ("POST", "/api/stats/organizations", b"{}", (405, "Method not allowed", "POST is not")),
    ("PATCH", "/api/conversations", b"{}", (405, "Method not allowed", "PATCH is not allowed")),
]

# Routes reading the request log, with REQUEST_LOG=false: 503, past valid parameters.
LOG_ROUTES: list[tuple[str, str]] = [
    ("GET", "/api/requests"),
    ("DELETE", "/api/requests"),
    ("GET", "/api/requests/summary"),
    ("GET", "/api/requests/latest-date"),
    ("GET", "/api/requests/abcd"),
    *[
        ("GET", f"/api/stats{route}?{_T}")
        for route in ("", "/dashboard", "/hourly", "/models", "/latency", "/ratelimits")
    ],
    ("GET", "/api/stats/organizations"),
    ("GET", "/api/conversations"),
    ("GET", "/api/conversations/project?project=/p"),
    ("GET", "/api/conversations/search?q=hello"),
    ("GET", "/api/conversations/some-id"),
]


def assert_api_error(
    status: int, content_type: str | None, body: Any, expected: tuple[int, str, str]
) -> None:
    want_status, want_error, details_start = expected
    assert status == want_status, body
    assert content_type == "application/json", content_type
    assert isinstance(body, dict) and set(body) == {"error", "details"}, body
    assert body["error"] == want_error, body
    assert isinstance(body["details"], str) and body["details"].startswith(details_start), body


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), LIVE, ids=[f"{m} {p}" for m, p, _, _ in LIVE]
)
async def test_live_errors_are_the_seeds_error_response(
    served: ProxyProcess,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: bytes | None,
    expected: tuple[int, str, str],
) -> None:
    async with http.request(method, served.url + path, data=body) as resp:
        payload = json.loads(await resp.read())
        assert_api_error(resp.status, resp.content_type, payload, expected)
        if resp.status == 405:
            # The methods the route takes, in the header and in the details.
            allowed = resp.headers["allow"]
            assert "GET" in allowed or "PUT" in allowed, allowed
            assert payload["details"].endswith(f"allowed: {allowed}"), payload


@pytest.mark.parametrize(("method", "path"), LOG_ROUTES, ids=[f"{m} {p}" for m, p in LOG_ROUTES])
async def test_no_request_log_is_a_503_in_the_seeds_shape(method: str, path: str) -> None:
    app = _log_off_app()
    _, resp = await app.asgi_client.request(method, path)
    assert_api_error(resp.status, resp.content_type, resp.json, (503, *LOG_OFF))
    assert resp.json["details"] == LOG_OFF[1]


class _FailingRepo:
    def __init__(self, error: BaseException) -> None:
        self._error = error

    async def page(self, *_: object) -> Any:
        raise self._error


async def test_a_crash_is_a_500_without_its_internals() -> None:
    app = _log_off_app()
    app.ctx.requests_repo = _FailingRepo(KeyError("mongodb://secret-host/db"))
    _, resp = await app.asgi_client.get("/api/requests")
    assert_api_error(
        resp.status, resp.content_type, resp.json, (500, "Internal proxy error", "An unexpected")
    )
    assert "secret-host" not in resp.text


async def test_an_unreachable_log_is_a_503_not_a_crash() -> None:
    app = _log_off_app()
    app.ctx.requests_repo = _FailingRepo(ServerSelectionTimeoutError("db-host:27017 down"))
    _, resp = await app.asgi_client.get("/api/requests")
    assert_api_error(
        resp.status, resp.content_type, resp.json, (503, "Request log unavailable", "The request")
    )
    assert "db-host" not in resp.text


async def _raw(port: int, head: str) -> tuple[int, dict[str, str], Any]:
    """Send a request head announcing a body, never the body: Sanic answers an
    oversized Content-Length at once (aiohttp would write the body into a closed
    connection and lose the answer to the reset)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode("latin-1"))
        await writer.drain()
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = raw.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)
        }
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
        return int(lines[0].split()[1]), headers, json.loads(body)
    finally:
        writer.close()


def _oversized(method: str, path: str) -> str:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BYTES * 4}\r\n\r\n"
    )


async def test_an_oversized_settings_body_is_a_413_in_the_seeds_shape(
    served: ProxyProcess,
) -> None:
    status, headers, body = await _raw(served.port, _oversized("PUT", "/api/settings"))
    assert_api_error(
        status,
        headers["content-type"],
        body,
        (413, "Request body too large", f"Request body exceeds {MAX_BYTES} bytes"),
    )
    assert "REQUEST_MAX_BYTES" in body["details"]


# ---- /v1/* keeps Anthropic's shape ------------------------------------------------------
def assert_anthropic_error(status: int, body: Any, want_status: int, error_type: str) -> None:
    assert status == want_status, body
    assert body["type"] == "error", body
    assert body["error"]["type"] == error_type, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


async def test_a_proxy_400_on_v1_keeps_anthropics_shape(
    served: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{served.url}/v1/messages", data=b"{", headers={"content-type": "application/json"}
    ) as resp:
        body = await resp.json()
        assert resp.content_type == "application/json"
        assert_anthropic_error(resp.status, body, 400, "invalid_request_error")
        assert body["request_id"] == resp.headers["x-proxy-request-id"]


async def test_a_413_on_v1_keeps_anthropics_shape(served: ProxyProcess) -> None:
    status, headers, body = await _raw(served.port, _oversized("POST", "/v1/messages"))
    assert headers["content-type"] == "application/json"
    assert_anthropic_error(status, body, 413, "request_too_large")
    assert body["error"]["message"] == (
        f"Request body exceeds {MAX_BYTES} bytes (REQUEST_MAX_BYTES)"
    )


async def test_other_paths_keep_their_shape() -> None:
    # Not the dashboard API: `/apix` only shares a prefix, `/nope` is nobody's.
    app = _log_off_app()
    for path in ("/apix", "/nope"):
        _, resp = await app.asgi_client.get(path)
        assert_anthropic_error(resp.status, resp.json, 404, "not_found_error")
