"""Forwarding through a real proxy process to a real fake upstream, over sockets."""

from __future__ import annotations

import asyncio
import base64
import gzip
import itertools
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace

import aiohttp
import pytest
from yarl import URL

from handlers.dashboard import root as dashboard_root
from tests.conftest import ProxyProcess, free_port, start_proxy
from tests.fake_upstream import RATE_LIMIT_HEADERS, FakeUpstream
from tests.fixtures import STREAMS, message_bytes, stream_bytes

# Serial (make test's second phase): SSE events 120-400 ms apart, 2-3 s header and idle timeouts.
pytestmark = pytest.mark.serial

CLAUDE_CODE_HEADERS = {
    "x-api-key": "sk-ant-api03-test-key",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
    "fine-grained-tool-streaming-2025-05-14,context-management-2025-06-27",
    "x-app": "cli",
    "user-agent": "claude-cli/2.1.3 (external, cli)",
    "X-Claude-Code-Session-Id": "0f3c1f0e-8a51-4b4e-9d55-1b8c4d6f2a10",
    "content-type": "application/json",
}

BODY = json.dumps(
    {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "stream": True,
        "messages": [{"role": "user", "content": "héllo"}],
        "metadata": {"user_id": "u"},
    },
    separators=(", ", ": "),  # unusual spacing: proves the body is not re-serialised
).encode()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


@pytest.mark.parametrize("name", STREAMS)
async def test_sse_relayed_byte_for_byte(
    name: str, proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    headers = {**CLAUDE_CODE_HEADERS, "x-fake": f"sse:{name}"}
    async with http.post(f"{proxy.url}/v1/messages?beta=true", data=BODY, headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert await resp.read() == stream_bytes(name)


async def test_request_forwarded_unchanged(
    proxy: ProxyProcess, fresh_upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    headers = [
        *CLAUDE_CODE_HEADERS.items(),
        ("x-fake", "echo"),
        ("x-stainless-lang", "js"),
        ("x-dup", "one"),
        ("x-dup", "two"),
        ("Connection", "keep-alive, x-hop"),
        ("x-hop", "must not pass"),
        ("accept-encoding", "br, gzip;q=0.8, zstd"),
    ]
    url = URL(f"{proxy.url}/v1/messages?beta=true&x=%2F1", encoded=True)
    async with http.post(url, data=BODY, headers=headers) as resp:
        echo = json.loads(await resp.read())
    assert echo["path_qs"] == "/v1/messages?beta=true&x=%2F1"
    assert base64.b64decode(echo["body_b64"]) == BODY
    received = [(k.lower(), v) for k, v in echo["headers"]]
    for name, value in CLAUDE_CODE_HEADERS.items():
        assert (name.lower(), value) in received
    assert ("x-dup", "one") in received and ("x-dup", "two") in received
    names = {k for k, _ in received}
    assert "x-hop" not in names
    assert ("connection", "keep-alive, x-hop") not in received
    # Only codings the proxy can decode for the log are offered upstream.
    assert ("accept-encoding", "gzip;q=0.8") in received
    host = dict(received)["host"]
    assert host == f"127.0.0.1:{fresh_upstream.port}"


async def test_response_headers_relayed(proxy: ProxyProcess, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{proxy.url}/v1/messages", data=BODY, headers={"x-fake": "sse:text_basic"}
    ) as resp:
        await resp.read()
    for name, value in RATE_LIMIT_HEADERS.items():
        assert resp.headers[name] == value
    assert resp.headers["request-id"].startswith("req_fake")
    assert resp.headers["cache-control"] == "no-cache"
    assert len(resp.headers["x-proxy-request-id"]) == 32


@pytest.mark.parametrize("status", [429, 529, 500, 401])
async def test_upstream_errors_pass_through(
    status: int, proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{proxy.url}/v1/messages", data=BODY, headers={"x-fake": f"status:{status}"}
    ) as resp:
        body = json.loads(await resp.read())
    assert resp.status == status
    assert body["type"] == "error" and body["error"]["message"].startswith("fake ")
    assert resp.headers["anthropic-ratelimit-unified-5h-utilization"] == "0.42"
    if status == 429:
        assert resp.headers["retry-after"] == "17"


async def test_gzip_body_relayed_as_encoded(
    proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    headers = {"x-fake": "json:tool_use", "x-fake-gzip": "1", "accept-encoding": "gzip, br"}
    async with http.post(f"{proxy.url}/v1/messages", data=BODY, headers=headers) as resp:
        raw = await resp.read()
    assert resp.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == message_bytes("tool_use")


async def test_no_compression_when_client_accepts_only_undecodable(
    proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    headers = {"x-fake": "json:text_basic", "x-fake-gzip": "1", "accept-encoding": "br"}
    async with http.post(f"{proxy.url}/v1/messages", data=BODY, headers=headers) as resp:
        raw = await resp.read()
    assert "content-encoding" not in resp.headers
    assert raw == message_bytes("text_basic")


async def test_json_response_keeps_bytes(proxy: ProxyProcess, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{proxy.url}/v1/messages", data=BODY, headers={"x-fake": "json:thinking"}
    ) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"] == "application/json"
        assert await resp.read() == message_bytes("thinking")


async def test_models_count_tokens_and_other_paths(
    proxy: ProxyProcess, fresh_upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{proxy.url}/v1/models?limit=5") as resp:
        models = await resp.json()
    assert models["data"][0]["id"] == "claude-sonnet-4-5-20250929"
    async with http.post(
        f"{proxy.url}/v1/messages/count_tokens?beta=true",
        data=b'{"model":"m","messages":[]}',
        headers={"content-type": "application/json"},
    ) as resp:
        assert await resp.json() == {"input_tokens": 42}
    async with http.delete(f"{proxy.url}/v1/files/file_011CNha8iCJcU1wXNR6q4V8w") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["type"] == "not_found_error"
    paths = [(r.method, r.path_qs) for r in fresh_upstream.received]
    assert paths == [
        ("GET", "/v1/models?limit=5"),
        ("POST", "/v1/messages/count_tokens?beta=true"),
        ("DELETE", "/v1/files/file_011CNha8iCJcU1wXNR6q4V8w"),
    ]


async def test_long_sse_line_passes(proxy: ProxyProcess, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{proxy.url}/v1/messages", data=BODY, headers={"x-fake": "bigline:300000"}
    ) as resp:
        raw = await resp.read()
    assert len(raw) > 300000 and raw.endswith(b'"}}\n\n')


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"model": "m", "messages": [', "not valid JSON"),
        (b"[1, 2]", "JSON object, got a JSON list"),
        (b"", "JSON object, got empty"),
        (b'{"model": 5}', "model: must be a string"),
        (b'{"model": "m", "stream": "yes"}', "stream: must be a boolean"),
        (b'{"model": "m", "max_tokens": "10"}', "max_tokens: must be an integer"),
        (b'{"model": "\xff\xfe"}', "not valid JSON"),
    ],
)
async def test_bad_messages_body_is_400(
    body: bytes,
    fragment: str,
    proxy: ProxyProcess,
    fresh_upstream: FakeUpstream,
    http: aiohttp.ClientSession,
) -> None:
    async with http.post(f"{proxy.url}/v1/messages", data=body) as resp:
        payload = await resp.json()
    assert resp.status == 400
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert fragment in payload["error"]["message"]
    assert fresh_upstream.received == []


async def test_chat_completions_points_to_messages(
    proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{proxy.url}/v1/chat/completions", data=b"{}") as resp:
        payload = await resp.json()
    assert resp.status == 400
    assert payload["error"]["type"] == "invalid_request_error"
    assert "/v1/messages" in payload["error"]["message"]


async def test_body_over_limit_is_413(tmp_path, upstream: FakeUpstream) -> None:
    small = start_proxy(
        tmp_path, {"ANTHROPIC_FORWARD_URL": upstream.url, "REQUEST_MAX_BYTES": "1000"}
    )
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{small.url}/v1/messages", data=b"x" * 5000) as resp:
                payload = await resp.json()
        assert resp.status == 413
        assert payload["error"]["type"] == "request_too_large"
        assert "REQUEST_MAX_BYTES" in payload["error"]["message"]
    finally:
        small.stop()


async def test_unreachable_upstream_is_502_and_logged(tmp_path) -> None:
    dead = start_proxy(tmp_path, {"ANTHROPIC_FORWARD_URL": f"http://127.0.0.1:{free_port()}"})
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{dead.url}/v1/messages?beta=true",
                data=BODY,
                headers={"anthropic-beta": "b1,b2", "content-type": "application/json"},
            ) as resp:
                payload = await resp.json()
        assert resp.status == 502
        assert payload["error"]["type"] == "api_error"
        assert "unreachable" in payload["error"]["message"]
    finally:
        dead.stop()
    line = next(x for x in dead.log().splitlines() if "forward_failed" in x)
    for part in (
        f"request_id={payload['request_id']}",
        "model=claude-sonnet-4-5-20250929",
        "stream=true",
        f"body_bytes={len(BODY)}",
        "has_thinking=false",
        "anthropic_beta=b1,b2",
        "query=beta=true",
        "elapsed=",
        "error=",
    ):
        assert part in line
    assert "sk-ant" not in dead.log()


async def test_slow_headers_is_504(proxy: ProxyProcess, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{proxy.url}/v1/messages", data=BODY, headers={"x-fake": "slow-headers:4"}
    ) as resp:
        payload = await resp.json()
    assert resp.status == 504
    assert payload["error"]["type"] == "timeout_error"
    assert "ANTHROPIC_RESPONSE_HEADER_TIMEOUT" in payload["error"]["message"]


async def test_header_timeout_does_not_limit_stream_length(
    proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    # The session proxy has a 2 s header timeout; this stream runs 3 s in total.
    async with http.post(
        f"{proxy.url}/v1/messages", data=BODY, headers={"x-fake": "ticks:16:200"}
    ) as resp:
        raw = await resp.read()
    assert raw.count(b"event: ping") == 16


async def test_silence_beyond_idle_timeout_ends_with_error_event(
    proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{proxy.url}/v1/messages", data=BODY, headers={"x-fake": "silence:6"}
    ) as resp:
        raw = await resp.read()
    first, _, rest = raw.partition(b"\n\n")
    assert first.startswith(b"event: message_start")
    assert rest.startswith(b"event: error\ndata: ")
    error = json.loads(rest.split(b"data: ", 1)[1])
    assert "UPSTREAM_READ_IDLE_TIMEOUT" in error["error"]["message"]


async def test_upstream_cut_midstream_ends_with_error_event(
    proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{proxy.url}/v1/messages", data=BODY, headers={"x-fake": "drop:3"}
    ) as resp:
        raw = await resp.read()
    assert raw.startswith(stream_bytes("text_basic")[:50])
    assert b"event: error\ndata: " in raw
    assert raw.endswith(b"\n\n")


async def test_client_disconnect_cancels_upstream(
    proxy: ProxyProcess, fresh_upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    resp = await http.post(
        f"{proxy.url}/v1/messages", data=BODY, headers={"x-fake": "ticks:100:100"}
    )
    await resp.content.readuntil(b"\n\n")
    resp.close()  # drop the connection mid-stream
    for _ in range(50):
        if "ticks:100:100" in fresh_upstream.cancelled:
            break
        await asyncio.sleep(0.05)
    assert fresh_upstream.cancelled == ["ticks:100:100"]
    assert fresh_upstream.finished == []
    async with http.get(f"{proxy.url}/livez") as live:
        assert (await live.json())["in_flight"] == 0


async def test_events_flushed_as_they_arrive(
    proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    """Events spaced 200 ms upstream arrive spaced ~200 ms, not bunched at the end."""
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    async with http.post(
        f"{proxy.url}/v1/messages", data=BODY, headers={"x-fake": "ticks:6:200"}
    ) as resp:
        buffer = b""
        async for chunk in resp.content.iter_any():
            buffer += chunk
            while b"\n\n" in buffer:
                _, buffer = buffer.split(b"\n\n", 1)
                arrivals.append(loop.time())
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 6
    # Generous bounds: this checks flushing, not speed (speed lives in bench/).
    assert all(0.12 < gap < 0.4 for gap in gaps), gaps


async def _raw_head(proxy: ProxyProcess, path: str) -> list[bytes]:
    """The response's header lines exactly as sent (aiohttp would tidy them)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
    return head.split(b"\r\n")


async def test_head_root_sends_a_real_content_type(proxy: ProxyProcess) -> None:
    """Claude Code's start-up probe: Sanic writes a missing content type as the
    literal `content-type: None`; the answer names a real one."""
    lines = await _raw_head(proxy, "/")
    assert lines[0] == b"HTTP/1.1 200 OK"
    types = [line for line in lines if line.lower().startswith(b"content-type:")]
    assert types == [b"content-type: text/plain; charset=utf-8"]
    assert not any(line.lower().endswith(b": none") for line in lines)


async def test_the_dashboards_own_head_answer_names_a_content_type_too() -> None:
    """The dashboard's `GET /` route answers a HEAD itself where no probe route is
    registered: the header lines Sanic would write for it."""
    response = await dashboard_root(SimpleNamespace(method="HEAD"))  # type: ignore[arg-type]
    assert response.status == 200
    assert dict(response.processed_headers)[b"content-type"] == b"text/plain; charset=utf-8"
