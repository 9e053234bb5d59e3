"""Requests through the running proxy become exact documents, readable via /api/requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import ProxyProcess, start_proxy
from tests.fake_upstream import FakeUpstream
from tests.fixtures import message_bytes

BODY = json.dumps(
    {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
).encode()
KEY = "sk-ant-api03-e2e-SECRET"


@pytest.fixture(scope="module")
def logged(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    proxy = start_proxy(tmp_path_factory.mktemp("log"), {"ANTHROPIC_FORWARD_URL": upstream.url})
    yield proxy
    proxy.stop()


async def _send(http: aiohttp.ClientSession, proxy: ProxyProcess, scenario: str) -> str:
    async with http.post(
        f"{proxy.url}/v1/messages", data=BODY, headers={"x-fake": scenario, "x-api-key": KEY}
    ) as resp:
        await resp.read()
        return resp.headers["x-proxy-request-id"]


async def _record(http: aiohttp.ClientSession, proxy: ProxyProcess, request_id: str) -> Any:
    for _ in range(100):
        async with http.get(f"{proxy.url}/api/requests/{request_id}") as resp:
            if resp.status == 200:
                return (await resp.json())["request"]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{request_id} never reached the log")


async def test_stream_and_json_documents_are_exact(logged: ProxyProcess, http) -> None:
    stream_id = await _send(http, logged, "sse:tool_use")
    json_id = await _send(http, logged, "json:thinking")
    doc = await _record(http, logged, stream_id)
    assert doc["response"]["body"] == json.loads(message_bytes("tool_use"))
    assert doc["stopReason"] == "tool_use" and doc["response"]["isStreaming"] is True
    assert doc["usage"]["input_tokens"] == 3412
    assert doc["usage"]["cache_creation"]["ephemeral_5m_input_tokens"] == 1830
    assert doc["cost"]["usd"] == pytest.approx((3412 * 3 + 142 * 15 + 1830 * 3.75) / 1e6)
    assert doc["response"]["rateLimit"]["unifiedUtilization5h"] == 0.42
    assert doc["organizationId"] == "org-fake-0001"
    assert doc["outcome"] == "completed" and doc["timeToFirstByte"] is not None
    assert KEY not in json.dumps(doc)
    thinking = await _record(http, logged, json_id)
    assert thinking["response"]["body"] == json.loads(message_bytes("thinking"))
    assert thinking["response"]["isStreaming"] is False


async def test_errors_and_cancelled_streams_are_recorded(logged: ProxyProcess, http) -> None:
    limited = await _record(http, logged, await _send(http, logged, "status:429"))
    assert limited["statusCode"] == 429 and limited["outcome"] == "upstream_error"
    assert limited["response"]["retryAfter"] == 17

    resp = await http.post(
        f"{logged.url}/v1/messages", data=BODY, headers={"x-fake": "ticks:50:100"}
    )
    request_id = resp.headers["x-proxy-request-id"]
    await resp.content.readuntil(b"\n\n")
    resp.close()
    cancelled = await _record(http, logged, request_id)
    assert cancelled["outcome"] == "client_closed"

    overloaded = await _record(http, logged, await _send(http, logged, "sse:overloaded_midstream"))
    assert overloaded["outcome"] == "upstream_error"
    assert overloaded["response"]["streamError"].startswith("overloaded_error")


async def test_list_summary_latest_and_delete(logged: ProxyProcess, http) -> None:
    ids = [await _send(http, logged, "sse:text_basic") for _ in range(3)]
    await _record(http, logged, ids[-1])
    async with http.get(f"{logged.url}/api/requests?limit=2&model=sonnet") as resp:
        page = await resp.json()
    assert len(page["requests"]) == 2 and page["total"] >= 3
    assert page["requests"][0]["requestId"] == ids[-1]  # newest first
    assert "request" not in page["requests"][0]  # no bodies in lists
    async with http.get(f"{logged.url}/api/requests/summary?start=2020-01-01T00:00:00Z") as resp:
        summary = await resp.json()
    assert summary["total"] >= 3 and "usage" in summary["requests"][0]
    async with http.get(f"{logged.url}/api/requests/latest-date") as resp:
        assert (await resp.json())["latestDate"].startswith("20")
    async with http.get(f"{logged.url}/api/requests/{ids[0][:10]}") as resp:
        assert (await resp.json())["fullId"] == ids[0]
    async with http.get(f"{logged.url}/api/requests/{'f' * 32}") as resp:
        assert resp.status == 404
        body = await resp.json()
        assert body["error"] == "Request not found" and "f" * 32 in body["details"]
    async with http.delete(f"{logged.url}/api/requests") as resp:
        assert (await resp.json())["deleted"] >= 3
    async with http.get(f"{logged.url}/api/requests") as resp:
        assert (await resp.json())["total"] == 0


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "limit=abc",
        "limit=100000",
        "",
        "start=yesterday",
        "offset=-1",
        "start=2026-02-01T00:00:00Z&end=2026-01-01T00:00:00Z",
    ],
)
async def test_bad_parameters_are_400(logged: ProxyProcess, http, query: str) -> None:
    path = "/api/requests/summary" if "start" in query or "offset" in query else "/api/requests"
    if not query:
        path, query = "/api/requests/..%2Fetc", ""
    async with http.get(f"{logged.url}{path}?{query}") as resp:
        body = await resp.json()
    assert resp.status in (400, 404)
    # The seed's ErrorResponse, both parts said.
    assert set(body) == {"error", "details"}, body
    assert body["error"] and body["details"], body
