"""A readiness-aware TCP load balancer, standing in for a Service and kube-proxy.

It behaves the way the proxy's pods are load-balanced in a cluster:
- it works on connections, not requests: a client connection is bound to one
  backend when it is accepted and piped byte for byte until either side closes
  (kube-proxy NATs connections; it never sees HTTP);
- a backend gets new connections only while it is an endpoint and ready: it
  becomes ready when its readiness probe (`GET /health`, every `probe_interval`
  seconds, a fresh connection each time like the kubelet's) answers 200, and
  unready after `failure_threshold` failed probes in a row (a 503 while draining,
  a refused connection, a timeout);
- `remove()` is the endpoint removal the control plane sends when a pod starts
  terminating, independent of its readiness;
- existing connections are never touched when a backend turns unready or is
  removed: they end when the client or the backend closes them.

With `tag_header`, it also notes which backend each request went to, by that header's
value (read from the bytes it pipes, never changed), so every request can be
attributed to the pod that received it.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.timeline import Timeline

PIPE_CHUNK = 65536
TAG_CARRY = 512  # bytes kept between chunks, so a header split across two is still seen


@dataclass
class Backend:
    name: str
    port: int
    ready: bool = False
    removed: bool = False
    failures: int = 0
    connections: int = 0  # accepted over its lifetime
    prober: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def serving(self) -> bool:
        return self.ready and not self.removed


async def probe(port: int, path: str, within: float = 1.0) -> tuple[int, bytes] | None:
    """`GET path` on a fresh loopback connection, as the kubelet probes: (status, body),
    or None when nothing answered in time (refused, reset, timed out)."""
    writer = None
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n".encode()
            )
            raw = await reader.read()
        head, _, body = raw.partition(b"\r\n\r\n")
        return int(head.split(None, 2)[1]), body
    except (OSError, TimeoutError, IndexError, ValueError):
        return None
    finally:
        if writer is not None:
            writer.close()


class LoadBalancer:
    def __init__(
        self,
        timeline: Timeline,
        *,
        probe_interval: float = 0.25,
        probe_timeout: float = 1.0,
        failure_threshold: int = 1,
        no_backend_wait: float = 5.0,
        tag_header: str | None = None,
    ) -> None:
        self.timeline = timeline
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.failure_threshold = failure_threshold
        self.no_backend_wait = no_backend_wait
        self.backends: dict[str, Backend] = {}
        self.refused = 0  # client connections that found no backend, or a dead one
        self.sent_to: dict[str, str] = {}  # tag_header value → backend name
        self._tag = (
            re.compile(rb"\r\n" + re.escape(tag_header.encode()) + rb":[ \t]*([^\r\n]+)\r\n", re.I)
            if tag_header
            else None
        )
        self._rr = itertools.count()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.port = 0

    # ---- control plane ----------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, name: str, port: int) -> Backend:
        """A new endpoint: not ready until its first successful probe."""
        backend = Backend(name, port)
        self.backends[name] = backend
        backend.prober = asyncio.create_task(self._probe_loop(backend), name=f"probe-{name}")
        return backend

    def remove(self, name: str) -> None:
        """Endpoint removal: no new connections; open ones keep going."""
        backend = self.backends[name]
        if not backend.removed:
            backend.removed = True
            self.timeline.mark("lb", f"{name} removed from endpoints")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for backend in self.backends.values():
            if backend.prober is not None:
                backend.prober.cancel()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)

    # ---- readiness ----------------------------------------------------------------
    async def _probe_loop(self, backend: Backend) -> None:
        while True:
            answer = await probe(backend.port, "/health", self.probe_timeout)
            status = answer[0] if answer else None
            if status == 200:
                backend.failures = 0
                if not backend.ready:
                    backend.ready = True
                    self.timeline.mark("lb", f"{backend.name} ready (/health 200)")
            else:
                backend.failures += 1
                if backend.ready and backend.failures >= self.failure_threshold:
                    backend.ready = False
                    seen = f"/health {status}" if status else "probe failed"
                    self.timeline.mark("lb", f"{backend.name} unready ({seen})")
            await asyncio.sleep(self.probe_interval)

    # ---- data plane ---------------------------------------------------------------
    async def _pick(self) -> Backend | None:
        deadline = asyncio.get_running_loop().time() + self.no_backend_wait
        while True:
            serving = [b for b in self.backends.values() if b.serving]
            if serving:
                return serving[next(self._rr) % len(serving)]
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(0.02)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            backend = await self._pick()
            if backend is None:
                self.refused += 1
                self.timeline.mark("lb", "no ready backend: connection closed")
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend.port)
            except OSError as exc:
                self.refused += 1
                self.timeline.mark("lb", f"connect to {backend.name} failed: {exc}")
                return
            backend.connections += 1
            try:
                await asyncio.gather(
                    self._pipe(reader, up_writer, self._tagger(backend.name)),
                    self._pipe(up_reader, writer),
                )
            finally:
                up_writer.close()
        finally:
            writer.close()
            self._conns.discard(task)

    def _tagger(self, backend: str) -> Callable[[bytes], None] | None:
        pattern = self._tag
        if pattern is None:
            return None
        carry = b""

        def see(data: bytes) -> None:
            nonlocal carry
            window = carry + data
            for match in pattern.finditer(window):
                self.sent_to[match.group(1).decode("latin-1").strip()] = backend
            carry = window[-TAG_CARRY:]

        return see

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        see: Callable[[bytes], None] | None = None,
    ) -> None:
        try:
            while data := await reader.read(PIPE_CHUNK):
                if see is not None:
                    see(data)
                writer.write(data)
                await writer.drain()
            # Half-close, as TCP would end to end: the other direction may still flow.
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            # A reset on one side: close the other, which ends the opposite pipe too.
            writer.close()
