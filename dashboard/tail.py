"""The live tail's fan-out: one poller per worker, any number of listeners up to
a bound, none of which can slow the poller or each other.

- The poller is a named task ("dashboard-tail-poller"), started when the first
  listener subscribes and ended when the last one leaves; every `interval`
  seconds it reads what was stored since its last read (an indexed range on the
  completion time, through `fetch`) and hands each listener the rows its filter
  passes.
- Each listener has a bounded queue. A listener whose queue is full (a browser
  that stopped reading) is dropped at once: its queue is emptied and it gets an
  `end` telling it why; the poller never waits for it.
- Rows are stored some time after their exchange completed (the recorder works
  in batches), so each read reaches SLACK back before the newest completion seen,
  and ids already pushed are skipped.
- When the worker starts draining, every listener gets an `end` and the poller
  stops, so a SIGTERM drain never waits on tail streams; `stop()` (at
  before_server_stop) does the same and cancels the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dashboard.requests_rows import row_view
from storage import queries as q

logger = logging.getLogger("proxy.dashboard")

TASK_NAME = "dashboard-tail-poller"
INTERVAL = 1.0  # seconds between two reads
SLACK = timedelta(seconds=10)  # how far back each read reaches
MAX_CLIENTS = 32  # listeners per worker
QUEUE_SIZE = 64  # batches a listener may fall behind before it is dropped
BATCH = 200  # rows read at most per poll
RECENT = 50  # rows replayed to a listener that joins (it skips those it shows)
MAX_SEEN = 20_000  # ids remembered for skipping, whatever the rate

Fetch = Callable[[datetime, int], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class Ended:
    """The last item of a listener's queue: why its stream ends."""

    reason: str


@dataclass(eq=False)
class Listener:
    filter: q.RequestFilter
    queue: asyncio.Queue[list[dict[str, Any]] | Ended] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )
    ended: Ended | None = None

    async def next(self, heartbeat: float) -> list[dict[str, Any]] | Ended | None:
        """The next batch of rows, the end, or None when `heartbeat` seconds
        passed first (time to tell idle proxies the stream is alive)."""
        try:
            async with asyncio.timeout(heartbeat):
                return await self.queue.get()
        except TimeoutError:
            return None

    def end(self, reason: str) -> None:
        """Whatever was queued is dropped: the end is what the listener needs."""
        if self.ended is not None:
            return
        self.ended = Ended(reason)
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(self.ended)


@dataclass(frozen=True, slots=True)
class Pushed:
    """A row as the poller read it (for filtering) and as listeners show it."""

    raw: dict[str, Any]
    view: dict[str, Any]


class TailHub:
    def __init__(
        self,
        fetch: Fetch,
        now: Callable[[], datetime],
        draining: Callable[[], bool] = lambda: False,
        *,
        interval: float = INTERVAL,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._fetch = fetch
        self._now = now
        self._draining = draining
        self._interval = interval
        self._max_clients = max_clients
        self._listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        # Ids pushed, with their completion time, for the reads that overlap.
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._recent: list[Pushed] = []
        self._high: datetime | None = None
        # The last read was full: the next starts at the newest row, not SLACK before.
        self._full = False

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def subscribe(self, f: q.RequestFilter) -> Listener | None:
        """A new listener, or None when the worker is draining or stopping, or
        already serves `max_clients` of them."""
        if self._stopped or self._draining() or len(self._listeners) >= self._max_clients:
            return None
        listener = Listener(f)
        replay = [p.view for p in self._recent if q.matches(p.raw, f)]
        if replay:
            listener.queue.put_nowait(replay)
        self._listeners.add(listener)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=TASK_NAME)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    async def stop(self, reason: str = "the server is stopping") -> None:
        self._stopped = True
        self._end_all(reason)
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _end_all(self, reason: str) -> None:
        for listener in list(self._listeners):
            listener.end(reason)
        self._listeners.clear()

    async def _run(self) -> None:
        failing = False
        try:
            while self._listeners:
                if self._draining():
                    self._end_all("the server is restarting")
                    break
                try:
                    await self.poll()
                    failing = False
                except Exception as exc:  # a database outage must not end the tail
                    level = logging.DEBUG if failing else logging.WARNING
                    logger.log(level, "live tail: could not read new requests: %s", exc)
                    failing = True
                if not self._listeners:
                    break
                await asyncio.sleep(self._interval)
        finally:
            # Whoever subscribes next starts afresh (and replays what is recent).
            self._task = None if self._task is asyncio.current_task() else self._task

    async def poll(self) -> int:
        """One read; hands the new rows out. Returns how many were new."""
        if self._high is None:
            self._high = self._now()
        rows = await self._fetch(self._high if self._full else self._high - SLACK, BATCH)
        self._full = len(rows) >= BATCH
        fresh: list[Pushed] = []
        for raw in rows:
            request_id = raw.get("requestId")
            completed = (raw.get("response") or {}).get("completedAt")
            if not isinstance(request_id, str) or not isinstance(completed, datetime):
                continue
            self._high = max(self._high, completed)
            if request_id in self._seen:
                continue
            self._seen[request_id] = completed
            fresh.append(Pushed(raw, row_view(raw).as_json()))
        self._forget(self._high - SLACK - SLACK)
        if fresh:
            self._recent = (self._recent + fresh)[-RECENT:]
            self._fan_out(fresh)
        return len(fresh)

    def _forget(self, before: datetime) -> None:
        """Ids completed before `before` can no longer come back in a read."""
        while self._seen:
            _, completed = next(iter(self._seen.items()))
            if completed >= before and len(self._seen) <= MAX_SEEN:
                break
            self._seen.popitem(last=False)

    def _fan_out(self, fresh: list[Pushed]) -> None:
        for listener in list(self._listeners):
            batch = [p.view for p in fresh if q.matches(p.raw, listener.filter)]
            if not batch:
                continue
            try:
                listener.queue.put_nowait(batch)
            except asyncio.QueueFull:
                # It stopped reading: drop it rather than hold rows (or the poller) for it.
                self._listeners.discard(listener)
                listener.end("the browser fell behind")
