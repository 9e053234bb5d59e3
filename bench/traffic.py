"""Client traffic for a simulated rollout: a steady mix of short requests (JSON and
SSE) and long SSE streams through the load balancer.

Every request carries a unique marker header, which the proxy records with the
request headers, so the request log can be checked for each one. Every response
is checked byte for byte against what the fake upstream sent: a stream that lost
its tail (message_stop included) or a body cut short counts as failed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.timeline import Timeline
from tests.fake_upstream import long_stream
from tests.fixtures import message_bytes, stream_bytes

MARKER_HEADER = "x-rollout-marker"
MODEL = "claude-sonnet-4-5-20250929"


@dataclass(frozen=True)
class Kind:
    name: str
    scenario: str  # the fake upstream's x-fake value
    stream: bool
    expected: bytes


def kinds(long_deltas: int, long_gap_ms: int) -> dict[str, Kind]:
    return {
        "json": Kind("json", "json:text_basic", False, message_bytes("text_basic")),
        "sse": Kind("sse", "sse:tool_use", True, stream_bytes("tool_use")),
        "long": Kind(
            "long",
            f"long:{long_deltas}:{long_gap_ms}",
            True,
            b"".join(long_stream(long_deltas)),
        ),
    }


@dataclass
class Result:
    marker: str
    kind: str
    started: float  # timeline seconds
    ended: float = 0.0
    status: int | None = None
    request_id: str | None = None
    backend: str | None = None  # the pod the load balancer sent it to
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class TrafficPlan:
    short_clients: int  # concurrent loops of short requests, alternating JSON and SSE
    short_pause: float  # between two requests of one loop
    long_every: float  # a new long stream this often
    long_max: int  # at most this many long streams at once
    max_requests: int  # hard bound on the count
    long_deltas: int
    long_gap_ms: int


@dataclass
class Traffic:
    url: str
    plan: TrafficPlan
    run_id: str
    clock: Timeline
    results: list[Result] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kinds = kinds(self.plan.long_deltas, self.plan.long_gap_ms)
        self._seq = itertools.count()
        self._issued = 0

    async def run(self, stop: asyncio.Event) -> list[Result]:
        """Send until `stop` is set (or the count bound is reached), then let every
        request in flight finish."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
        # Short requests share a keep-alive pool, like one busy client; each long
        # stream opens its own connection, like the many Claude Code sessions a
        # replica serves, so the load balancer spreads them (round robin) and a pod
        # always holds some when it is told to stop.
        pooled = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0))
        fresh = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=0, force_close=True)
        )
        async with pooled, fresh:
            longs: set[asyncio.Task[None]] = set()
            loops = [
                asyncio.create_task(self._short_loop(pooled, stop, i))
                for i in range(self.plan.short_clients)
            ]
            while not stop.is_set() and self._issued < self.plan.max_requests:
                if len(longs) < self.plan.long_max:
                    task = asyncio.create_task(self.send(fresh, self.kinds["long"]))
                    longs.add(task)
                    task.add_done_callback(longs.discard)
                try:
                    await asyncio.wait_for(stop.wait(), self.plan.long_every)
                except TimeoutError:
                    pass
            await asyncio.gather(*loops, *longs)
        return self.results

    async def _short_loop(self, http: aiohttp.ClientSession, stop: asyncio.Event, i: int) -> None:
        for n in itertools.count(i):
            if stop.is_set() or self._issued >= self.plan.max_requests:
                return
            await self.send(http, self.kinds["json" if n % 2 else "sse"])
            await asyncio.sleep(self.plan.short_pause)

    async def send(self, http: aiohttp.ClientSession, kind: Kind) -> None:
        self._issued += 1
        marker = f"{self.run_id}-{next(self._seq):06d}"
        result = Result(marker, kind.name, self.clock.now())
        self.results.append(result)
        body = json.dumps(
            {
                "model": MODEL,
                "max_tokens": 64,
                "stream": kind.stream,
                "messages": [{"role": "user", "content": f"rollout request {marker}"}],
            }
        ).encode()
        headers = {
            "x-fake": kind.scenario,
            MARKER_HEADER: marker,
            "x-api-key": "sk-ant-rollout-test",
            "content-type": "application/json",
            "anthropic-version": "2023-06-01",
        }
        try:
            async with http.post(f"{self.url}/v1/messages", data=body, headers=headers) as resp:
                result.status = resp.status
                result.request_id = resp.headers.get("x-proxy-request-id")
                received = await resp.read()
            result.problem = check(kind, resp.status, resp.headers, received)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            result.problem = f"{type(exc).__name__}: {exc}"
        result.ended = self.clock.now()


def check(kind: Kind, status: int, headers: Any, received: bytes) -> str | None:
    """Why a response is not exactly what the upstream sent, or None."""
    if status != 200:
        return f"status {status}: {received[:200]!r}"
    if received == kind.expected:
        return None
    if kind.stream and not received.endswith(b'data: {"type":"message_stop"}\n\n'):
        return f"truncated stream: {len(received)} of {len(kind.expected)} bytes, no message_stop"
    if not kind.stream:
        try:
            json.loads(received)
        except ValueError:
            return f"incomplete JSON: {len(received)} of {len(kind.expected)} bytes"
    return f"body differs from the upstream's ({len(received)} vs {len(kind.expected)} bytes)"


def markers_in(documents: Iterable[dict[str, Any]]) -> list[str]:
    """The marker of each request-log document (request headers are stored as pairs)."""
    out = []
    for doc in documents:
        headers = doc.get("request", {}).get("headers", [])
        out += [value for name, value in headers if name.lower() == MARKER_HEADER]
    return out
