"""Hostile clients at the HTTP layer: huge or chunked bodies, bad headers, slow
senders, non-readers and idle crowds. Each gets a clear error or a bounded wait;
the process stays up and keeps serving others."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import pytest

from tests.conftest import ProxyProcess
from tests.fake_upstream import FakeUpstream
from tests.hostile.conftest import (
    KEEP_ALIVE,
    MAX_BYTES,
    MESSAGE,
    READ_TIMEOUT,
    assert_alive,
    assert_error,
    open_fds,
    post_head,
    raw_request,
    rss_kib,
)

# Serial (make test's second phase): read deadlines (2 s), keep-alive timeouts, RSS.
pytestmark = pytest.mark.serial

BODY = json.dumps(MESSAGE).encode()


def worker_pid(proxy: ProxyProcess) -> int:
    found = re.findall(r"Starting worker \[(\d+)\]", proxy.log())
    assert found, proxy.log()
    return int(found[-1])


async def test_huge_content_length_is_413_before_the_body_is_sent(hproxy: ProxyProcess) -> None:
    """The client announces 1 GB and sends 1 KB: the answer comes at once and the
    connection is closed, so nothing waits for (or buffers) the rest."""
    started = time.monotonic()
    resp = await raw_request(hproxy.port, post_head("/v1/messages", 10**9) + b"x" * 1024)
    assert_error(resp, 413, "request_too_large")
    assert "REQUEST_MAX_BYTES" in resp.json()["error"]["message"]
    assert resp.closed
    assert time.monotonic() - started < READ_TIMEOUT  # answered, not timed out
    await assert_alive(hproxy)


async def test_chunked_body_over_the_limit_is_413(hproxy: ProxyProcess) -> None:
    """No Content-Length to decide from: the limit applies while reading."""
    chunk = b"%x\r\n%s\r\n" % (16384, b"y" * 16384)
    head = (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\n"
    )
    count = MAX_BYTES // 16384 + 2
    resp = await raw_request(hproxy.port, head + chunk * count)
    assert_error(resp, 413, "request_too_large")
    assert resp.closed


async def test_oversized_header_is_refused(hproxy: ProxyProcess) -> None:
    head = post_head("/v1/messages", len(BODY), f"x-big: {'a' * 20000}\r\n")
    resp = await raw_request(hproxy.port, head + BODY)
    assert resp.status in (400, 413, 431)
    assert resp.json()["type"] == "error"
    await assert_alive(hproxy)


async def test_many_headers_and_duplicates_are_forwarded_unchanged(
    hproxy: ProxyProcess, fresh_upstream: FakeUpstream
) -> None:
    extra = "".join(f"x-dup: v{i}\r\n" for i in range(60))
    head = post_head("/v1/messages", len(BODY), extra + "x-fake: echo\r\n")
    resp = await raw_request(hproxy.port, head + BODY)
    assert resp.status == 200
    sent = [v for k, v in fresh_upstream.received[-1].headers if k.lower() == "x-dup"]
    assert sent == [f"v{i}" for i in range(60)]


async def test_conflicting_content_lengths_are_400(
    hproxy: ProxyProcess, fresh_upstream: FakeUpstream
) -> None:
    """Request smuggling: two lengths must never be resolved by guessing."""
    head = post_head("/v1/messages", len(BODY), "Content-Length: 5\r\n")
    resp = await raw_request(hproxy.port, head + BODY)
    assert resp.status == 400
    assert resp.json()["type"] == "error"
    assert fresh_upstream.received == []


@pytest.mark.parametrize("value", ["a\nx-injected: 1", "a\rx-injected: 1", "a\x00b"])
async def test_control_characters_in_a_header_are_400(
    hproxy: ProxyProcess, fresh_upstream: FakeUpstream, value: str
) -> None:
    """Sanic splits header lines on CRLF only: a bare LF/CR/NUL reaches the value
    and must be refused, never forwarded (injection) nor a 500."""
    head = post_head("/v1/messages", len(BODY), f"x-evil: {value}\r\n")
    resp = await raw_request(hproxy.port, head + BODY)
    assert_error(resp, 400, "invalid_request_error")
    assert "x-evil" in resp.json()["error"]["message"]
    assert fresh_upstream.received == []
    await assert_alive(hproxy)


async def test_trickled_body_is_cut_at_the_read_deadline(hproxy: ProxyProcess) -> None:
    """One byte every 0.3 s never lets an idle timer fire; the deadline does."""
    started = time.monotonic()
    trickle = [(0.3, BODY[i : i + 1]) for i in range(5, len(BODY))]
    resp = await raw_request(
        hproxy.port, post_head("/v1/messages", len(BODY)) + BODY[:5], then=trickle
    )
    elapsed = time.monotonic() - started
    assert_error(resp, 408, "timeout_error")
    assert "REQUEST_READ_TIMEOUT" in resp.json()["error"]["message"]
    assert resp.closed
    assert READ_TIMEOUT * 0.9 < elapsed < READ_TIMEOUT + 5
    await assert_alive(hproxy)


async def test_trickled_head_is_cut_at_the_read_deadline(hproxy: ProxyProcess) -> None:
    head = post_head("/v1/messages", len(BODY)) + b"x-pad: " + b"p" * 200
    started = time.monotonic()
    resp = await raw_request(
        hproxy.port, head[:5], then=[(0.3, head[i : i + 1]) for i in range(5, len(head))]
    )
    assert_error(resp, 408, "timeout_error")
    assert READ_TIMEOUT * 0.9 < time.monotonic() - started < READ_TIMEOUT + 5


async def test_client_that_never_reads_keeps_memory_bounded(
    hproxy: ProxyProcess, fresh_upstream: FakeUpstream
) -> None:
    """A ~30 MB stream to a client that reads nothing: backpressure stops the relay
    (Sanic's send awaits the transport), so the worker does not buffer it."""
    pid = worker_pid(hproxy)
    before = rss_kib(pid)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", hproxy.port))
    body = json.dumps({**MESSAGE, "stream": True}).encode()
    sock.sendall(post_head("/v1/messages", len(body), "x-fake: long:200000:0\r\n") + body)
    try:
        await asyncio.sleep(3)  # time enough to have buffered all of it, if it did
        grown_mib = (rss_kib(pid) - before) / 1024
        assert grown_mib < 15, f"worker RSS grew {grown_mib:.1f} MiB for a stalled client"
        await assert_alive(hproxy)  # others are served meanwhile
    finally:
        sock.close()
    assert hproxy.proc.poll() is None


async def test_thousands_of_idle_connections(hproxy: ProxyProcess) -> None:
    """2000 connections that send nothing: others are still served, and the read
    deadline closes them all, returning the worker's descriptors."""
    pid = worker_pid(hproxy)
    fds_before = open_fds(pid)
    writers = []
    for _ in range(20):  # in batches: the listen backlog is finite
        batch = await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", hproxy.port) for _ in range(100))
        )
        writers += batch
    try:
        await assert_alive(hproxy)

        async def closed_by_server(reader: asyncio.StreamReader) -> bool:
            return await reader.read(1024) is not None

        results = await asyncio.wait_for(
            asyncio.gather(*(closed_by_server(r) for r, _ in writers)), READ_TIMEOUT + 20
        )
        assert all(results)
    finally:
        for _, writer in writers:
            writer.close()
    deadline = time.monotonic() + 10
    while open_fds(pid) > fds_before + 20 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert open_fds(pid) <= fds_before + 20


async def test_idle_keep_alive_connection_is_closed(hproxy: ProxyProcess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", hproxy.port)
    try:
        writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        started = time.monotonic()
        while await asyncio.wait_for(reader.read(65536), KEEP_ALIVE + 10):
            pass  # the rest of the response, then EOF when the server hangs up
        assert time.monotonic() - started < KEEP_ALIVE + 5
    finally:
        writer.close()


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/anything/else"])
async def test_still_alive(hproxy: ProxyProcess, path: str) -> None:
    await assert_alive(hproxy)
