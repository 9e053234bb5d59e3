"""The live tail's fan-out (dashboard.tail): one poller, bounded listeners, a
slow one dropped, the poller gone with the last listener and at the drain.
No database and no clock: `fetch` is a fake fed by the test, `interval` is 0."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dashboard import tail
from dashboard.tail import Ended, TailHub
from storage import queries as q

NOW = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
HEARTBEAT = 30.0  # a bound on waits that should end at once, never reached


class FakeLog:
    """What `completed_since` would answer: rows completed at or after `since`."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.reads: list[datetime] = []
        self.read = asyncio.Event()
        self.fail = False

    def add(self, n: int = 1, **fields: Any) -> list[dict[str, Any]]:
        added = []
        for _ in range(n):
            i = len(self.rows)
            row = {
                "requestId": f"{i:032x}",
                "timestamp": NOW + timedelta(seconds=i),
                "model": "claude-opus-5-5",
                "statusCode": 200,
                "outcome": "completed",
                "isStreaming": True,
                "response": {"completedAt": NOW + timedelta(seconds=i, milliseconds=500)},
                **fields,
            }
            self.rows.append(row)
            added.append(row)
        return added

    async def fetch(self, since: datetime, limit: int) -> list[dict[str, Any]]:
        self.reads.append(since)
        self.read.set()
        await asyncio.sleep(0)
        if self.fail:
            raise RuntimeError("database down")
        found = [r for r in self.rows if r["response"]["completedAt"] >= since]
        return sorted(found, key=lambda r: r["response"]["completedAt"])[:limit]


def hub_for(log: FakeLog, draining: list[bool] | None = None, **kwargs: Any) -> TailHub:
    flag = draining if draining is not None else [False]
    return TailHub(log.fetch, lambda: NOW, lambda: flag[0], interval=0, **kwargs)


async def ids(listener: tail.Listener) -> list[str]:
    batch = await listener.next(HEARTBEAT)
    assert isinstance(batch, list), batch
    return [row["id"] for row in batch]


async def finished(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        await asyncio.wait_for(asyncio.shield(task), HEARTBEAT)


async def test_rows_reach_every_listener_once_and_through_its_filter() -> None:
    log = FakeLog()
    hub = hub_for(log)
    everything = hub.subscribe(q.RequestFilter())
    errors = hub.subscribe(q.RequestFilter(status="5xx"))
    assert everything is not None and errors is not None
    first = log.add(2)
    failed = log.add(1, statusCode=529)
    assert await ids(everything) == [r["requestId"] for r in first + failed]
    assert await ids(errors) == [failed[0]["requestId"]]
    later = log.add(1)
    # The next reads overlap the last (SLACK back): nothing is pushed twice.
    assert await ids(everything) == [later[0]["requestId"]]
    assert all(since <= NOW + timedelta(seconds=4) for since in log.reads)
    assert errors.queue.empty()
    await hub.stop()


async def test_pushed_rows_are_list_rows() -> None:
    log = FakeLog()
    hub = hub_for(log)
    listener = hub.subscribe(q.RequestFilter())
    assert listener is not None
    log.add(1, tokens=1234)
    batch = await listener.next(HEARTBEAT)
    assert isinstance(batch, list)
    assert batch[0]["tokens"] == "1,234" and batch[0]["href"].startswith("/dashboard/requests/")
    await hub.stop()


async def test_one_poller_serves_all_listeners_and_stops_with_the_last() -> None:
    log = FakeLog()
    hub = hub_for(log)
    a = hub.subscribe(q.RequestFilter())
    b = hub.subscribe(q.RequestFilter())
    assert a is not None and b is not None
    task = hub.task
    assert task is not None and task.get_name() == tail.TASK_NAME
    await log.read.wait()
    hub.unsubscribe(a)
    assert hub.task is task and not task.done()
    hub.unsubscribe(b)
    await finished(task)
    assert task.done() and hub.task is None
    # A new listener starts a new poller, which replays what was recent.
    log.add(1)
    c = hub.subscribe(q.RequestFilter())
    assert c is not None and hub.task is not None and hub.task is not task
    assert await ids(c) == [log.rows[0]["requestId"]]
    await hub.stop()


async def test_a_slow_listener_is_dropped_without_holding_up_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tail, "QUEUE_SIZE", 2)
    log = FakeLog()
    hub = hub_for(log)
    slow = hub.subscribe(q.RequestFilter())
    fast = hub.subscribe(q.RequestFilter())
    assert slow is not None and fast is not None
    received: list[str] = []
    for _ in range(4):  # the slow one never reads: its queue of 2 overflows
        log.add(1)
        received += await ids(fast)
    assert received == [r["requestId"] for r in log.rows]
    ended = await slow.next(HEARTBEAT)
    assert isinstance(ended, Ended) and "behind" in ended.reason
    assert hub.listeners == 1
    await hub.stop()


async def test_the_listener_bound() -> None:
    hub = hub_for(FakeLog(), max_clients=2)
    assert hub.subscribe(q.RequestFilter()) is not None
    assert hub.subscribe(q.RequestFilter()) is not None
    assert hub.subscribe(q.RequestFilter()) is None
    await hub.stop()


async def test_draining_ends_every_stream_and_the_poller() -> None:
    log = FakeLog()
    draining = [False]
    hub = hub_for(log, draining)
    a = hub.subscribe(q.RequestFilter())
    b = hub.subscribe(q.RequestFilter(model="x"))
    assert a is not None and b is not None
    task = hub.task
    await log.read.wait()
    draining[0] = True
    for listener in (a, b):
        ended = await listener.next(HEARTBEAT)
        assert isinstance(ended, Ended) and "restarting" in ended.reason
    await finished(task)
    assert hub.listeners == 0
    assert hub.subscribe(q.RequestFilter()) is None  # no new stream while draining


async def test_stop_cancels_the_poller_and_ends_the_streams() -> None:
    log = FakeLog()
    hub = hub_for(log)
    listener = hub.subscribe(q.RequestFilter())
    assert listener is not None
    task = hub.task
    await log.read.wait()
    await hub.stop()
    assert task is not None and task.done()
    ended = await listener.next(HEARTBEAT)
    assert isinstance(ended, Ended) and "stopping" in ended.reason
    assert hub.subscribe(q.RequestFilter()) is None


async def test_a_database_outage_does_not_end_the_tail() -> None:
    log = FakeLog()
    log.fail = True
    hub = hub_for(log)
    listener = hub.subscribe(q.RequestFilter())
    assert listener is not None
    while len(log.reads) < 3:
        log.read.clear()
        await log.read.wait()
    log.fail = False
    log.add(1)
    assert await ids(listener) == [log.rows[0]["requestId"]]
    await hub.stop()


async def test_a_full_read_continues_from_its_newest_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail, "BATCH", 3)
    log = FakeLog()
    log.add(7)
    hub = hub_for(log)
    hub._high = NOW  # as if the poller had started before these rows
    for _ in range(4):
        await hub.poll()
    # Three reads of three: every row, in order, though a read reaches back SLACK.
    assert list(hub._seen) == [r["requestId"] for r in log.rows]


async def test_a_heartbeat_is_due_when_nothing_arrives() -> None:
    listener = tail.Listener(q.RequestFilter())
    assert await listener.next(0) is None
