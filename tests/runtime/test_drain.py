"""SIGTERM drain on a real server process: streams finish, readiness goes 503, exit after."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import aiohttp
import pytest

from tests.conftest import start_proxy
from tests.fake_upstream import FakeUpstream

# Serial (make test's second phase): a SIGTERM drain timed (3 s to 6 s).
pytestmark = pytest.mark.serial


async def _read_events(resp: aiohttp.ClientResponse) -> list[bytes]:
    raw = await resp.read()
    return [e for e in raw.split(b"\n\n") if e]


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_drains_running_stream(
    tmp_path, upstream: FakeUpstream, workers: str
) -> None:
    proxy = start_proxy(
        tmp_path,
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "SANIC_WORKERS": workers,
            "DRAIN_TIMEOUT": "60",
            # Far below the stream's length: Sanic's own timeout must not cut it.
            "GRACEFUL_SHUTDOWN_TIMEOUT": "1",
        },
    )
    try:
        async with aiohttp.ClientSession() as http:
            stream = asyncio.create_task(
                http.post(
                    f"{proxy.url}/v1/messages",
                    data=b'{"stream":true}',
                    headers={"x-fake": "ticks:25:200"},
                )  # a 5 s stream
            )
            resp = await stream
            reader = asyncio.create_task(_read_events(resp))
            await asyncio.sleep(1.0)
            signalled = time.monotonic()
            proxy.signal(signal.SIGTERM)
            await asyncio.sleep(0.5)

            # Readiness fails at once; liveness stays up and shows the live state.
            async with http.get(f"{proxy.url}/health") as health:
                assert health.status == 503
                body = await health.json()
                assert body["status"] == "draining"
                assert body["in_flight"] == 1  # the whole server's count, any worker answers
            async with http.get(f"{proxy.url}/livez") as livez:
                assert livez.status == 200
                assert (await livez.json())["draining"] is True

            # A request that still arrives while draining is served.
            async with http.post(
                f"{proxy.url}/v1/messages", data=b"{}", headers={"x-fake": "json:text_basic"}
            ) as late:
                assert late.status == 200
                assert late.headers["connection"] == "close"

            events = await reader
        assert len(events) == 25
        assert json.loads(events[-1].split(b"data: ", 1)[1])["seq"] == 24
        assert await asyncio.to_thread(proxy.proc.wait, 15) == 0
        assert time.monotonic() - signalled >= 3.0  # it waited for the stream
    finally:
        proxy.stop()
    log = proxy.log()
    assert "draining" in log and "drained in" in log


async def test_drain_timeout_bounds_the_wait(tmp_path, upstream: FakeUpstream) -> None:
    proxy = start_proxy(
        tmp_path,
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "DRAIN_TIMEOUT": "1",
            "GRACEFUL_SHUTDOWN_TIMEOUT": "1",
        },
    )
    try:
        async with aiohttp.ClientSession() as http:
            resp = await http.post(
                f"{proxy.url}/v1/messages", data=b"{}", headers={"x-fake": "ticks:100:100"}
            )  # 10 s
            await resp.content.readuntil(b"\n\n")
            started = time.monotonic()
            proxy.signal(signal.SIGTERM)
            code = await asyncio.to_thread(proxy.proc.wait, 15)
            assert code == 0, proxy.log()
            assert time.monotonic() - started < 6
            resp.close()
    finally:
        proxy.stop()
    assert "drain timeout" in proxy.log()


async def test_manager_waits_for_a_worker_draining_longer_than_sanics_10s(
    tmp_path, upstream: FakeUpstream
) -> None:
    """Sanic's manager gives each worker 10 s after SIGTERM, then closes the socket
    under it; ours waits: /livez answers until the long stream has finished."""
    proxy = start_proxy(
        tmp_path,
        {"ANTHROPIC_FORWARD_URL": upstream.url, "SANIC_WORKERS": "2", "DRAIN_TIMEOUT": "60"},
    )
    try:
        async with aiohttp.ClientSession() as http:
            resp = await http.post(
                f"{proxy.url}/v1/messages",
                data=b'{"stream":true}',
                headers={"x-fake": "ticks:56:250"},  # a 14 s stream
            )
            reader = asyncio.create_task(_read_events(resp))
            await asyncio.sleep(1.0)
            proxy.signal(signal.SIGTERM)
            refused = []
            while not reader.done():
                try:
                    async with http.get(f"{proxy.url}/livez") as livez:
                        assert livez.status == 200
                except aiohttp.ClientConnectionError:
                    refused.append(time.monotonic())
                await asyncio.sleep(0.5)
            events = await reader
        assert len(events) == 56
        assert refused == [], "the listener closed while a worker was still draining"
        assert await asyncio.to_thread(proxy.proc.wait, 20) == 0
    finally:
        proxy.stop()
    assert "all workers exited after" in proxy.log()
