"""The worker's side: submit() costs the loop O(1) and never raises, the drop
policy (queue, then journal cap) is applied and counted, close() flushes and
fsyncs, and disk errors are counted instead of stopping the thread."""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from recording import journal_segments, journal_writer
from recording.journal import JournalReader, JournalWriter
from recording.journal_writer import QUEUE_MAX_RECORDS, QUEUED_RECORD_COST
from tests.recording.journal_helpers import read_all, wait_for, wait_written, writer

# Serial (make test's second phase): close() must give up on time (within 1.5 s).
pytestmark = pytest.mark.serial

MIB = 1024 * 1024


class Untouchable(Sequence[bytes]):
    """Chunks that fail the test if submit() looks at them."""

    def __getitem__(self, index: Any) -> Any:
        raise AssertionError("submit() iterated the chunks")

    def __len__(self) -> int:
        raise AssertionError("submit() measured the chunks")

    def __iter__(self) -> Iterator[bytes]:
        raise AssertionError("submit() iterated the chunks")


def _calls(journal: JournalWriter, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    """Every Python and C call submit() makes, in order."""
    events: list[tuple[str, str]] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        name = getattr(arg, "__name__", "") if event.startswith("c_") else frame.f_code.co_name
        events.append((event, name))

    sys.setprofile(profile)
    try:
        journal.submit(*args, **kwargs)
    finally:
        sys.setprofile(None)
    return [event for event in events if event[1] != "setprofile"]


def test_submit_keeps_the_callers_objects(tmp_path: Path) -> None:
    journal = writer(tmp_path)
    item, request, chunks = {"id": 1}, os.urandom(1000), [os.urandom(10), os.urandom(20)]
    journal.submit(item, request, chunks)
    entry = journal._queue[-1]
    assert entry[0] is item and entry[1] is request and entry[2] is chunks
    assert journal.stats()["queue_bytes"] == 1030 + QUEUED_RECORD_COST


def test_submit_work_does_not_depend_on_body_size(tmp_path: Path) -> None:
    journal = writer(tmp_path)
    small = _calls(journal, {}, b"x", [b"y", b"z"])
    big = _calls(journal, {}, bytes(64 * MIB), [bytes(32 * MIB), bytes(32 * MIB)])
    assert small == big
    # No syscall-making or copying call: only len/sum/map and the deque's append.
    assert {name for event, name in big if event == "c_call"} <= {"len", "sum", "append"}
    # With the length given, the chunks are not even looked at: O(1) in their number.
    journal.submit({}, b"", Untouchable(), response_bytes=5)
    assert journal.stats()["failures"] == 0 and journal.stats()["queue_records"] == 3


def test_submit_allocates_nothing_proportional_to_bodies(tmp_path: Path) -> None:
    journal = writer(tmp_path)
    body, chunks = bytes(48 * MIB), [bytes(16 * MIB)] * 4
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(10):
            journal.submit({}, body, chunks)
        grown = tracemalloc.take_snapshot().compare_to(before, "filename")
    finally:
        tracemalloc.stop()
    assert sum(stat.size_diff for stat in grown) < 64 * 1024


def test_submit_never_raises(tmp_path: Path) -> None:
    journal = writer(tmp_path)
    journal.submit({}, None, [b""])  # type: ignore[arg-type]
    journal.submit({}, b"", [object()])  # type: ignore[list-item]
    stats = journal.stats()
    assert stats["failures"] == 2 and stats["lost"] == 2 and stats["queue_records"] == 0


def test_queue_backpressure_drops_bodies_then_records(tmp_path: Path) -> None:
    queue_bytes = 20_000
    journal = writer(tmp_path, queue_bytes=queue_bytes)
    # Not started yet, so everything stays queued and the policy is exact.
    expected: list[str] = []
    queued = 0
    for i in range(60):
        size = 3000
        if queued > 2 * queue_bytes:
            expected.append("lost")
        elif queued + size + QUEUED_RECORD_COST > queue_bytes:
            expected.append("queue_full")
            queued += QUEUED_RECORD_COST
        else:
            expected.append("kept")
            queued += size + QUEUED_RECORD_COST
        journal.submit({"i": i}, b"q" * 1000, [b"r" * 1000, b"s" * 1000])
    assert expected.count("kept") == 4 and "lost" in expected and "queue_full" in expected
    stats = journal.stats()
    assert stats["queue_bytes"] == queued
    assert stats["queue_records"] == 60 - expected.count("lost")
    assert stats["lost"] == expected.count("lost")
    journal.start()
    journal.close()
    records = read_all(JournalReader(tmp_path), journal.owner)
    kept = [i for i, what in enumerate(expected) if what != "lost"]
    assert [r.meta["i"] for r in records] == kept
    for record in records:
        if expected[record.meta["i"]] == "kept":
            assert record.request_body == b"q" * 1000
            assert record.response_body == b"r" * 1000 + b"s" * 1000
            assert "bodiesDropped" not in record.meta
        else:
            assert record.request_body == record.response_body == b""
            assert record.meta["bodiesDropped"] == "queue_full"
            assert record.meta["bodiesDroppedBytes"] == 3000
    stats = journal.stats()
    assert stats["bodies_dropped"] == expected.count("queue_full")
    assert stats["records"] == len(kept) and stats["queue_bytes"] == stats["queue_records"] == 0


def test_queue_record_cap(tmp_path: Path) -> None:
    journal = writer(tmp_path)
    for _ in range(QUEUE_MAX_RECORDS + 5):
        journal.submit(None, b"", ())
    stats = journal.stats()
    assert stats["queue_records"] == QUEUE_MAX_RECORDS and stats["lost"] == 5
    journal.close()  # never started: what was queued is lost, and counted
    assert journal.stats()["lost"] == QUEUE_MAX_RECORDS + 5
    assert journal.stats()["queue_records"] == 0


def test_journal_cap_drops_bodies_then_records(tmp_path: Path) -> None:
    max_bytes = 100_000
    journal = writer(tmp_path, max_bytes=max_bytes, segment_bytes=10_000)
    journal.start()
    for i in range(400):
        journal.submit({"i": i}, b"q" * 2000, [b"r" * 2000])
    journal.close()
    records = read_all(JournalReader(tmp_path), journal.owner)
    with_bodies = [r for r in records if "bodiesDropped" not in r.meta]
    without = [r for r in records if "bodiesDropped" in r.meta]
    # In order: bodies while under 90 %, then metadata only, then nothing.
    assert records == with_bodies + without and with_bodies and without
    assert all(r.meta["bodiesDropped"] == "journal_full" for r in without)
    assert all(r.request_body == r.response_body == b"" for r in without)
    assert without[0].meta["bodiesDroppedBytes"] == 4000
    on_disk = sum(p.stat().st_size for p in (tmp_path / journal.owner).glob("*.seg"))
    assert 0.9 * max_bytes - 5000 < sum(r.end.offset - r.start.offset for r in with_bodies)
    assert max_bytes - 100 < on_disk <= max_bytes
    stats = journal.stats()
    assert stats["records"] == len(records) and stats["bodies_dropped"] == len(without)
    assert stats["lost"] == 400 - len(records) > 0
    assert stats["journal_bytes"] == stats["bytes_written"] == on_disk
    assert stats["failures"] == 0


def test_cap_frees_up_when_the_recorder_releases(tmp_path: Path) -> None:
    journal = writer(tmp_path, max_bytes=50_000, segment_bytes=5_000)
    journal.start()
    reader = JournalReader(tmp_path)
    try:
        for i in range(100):
            journal.submit({"i": i}, b"q" * 2000, [])
        wait_written(journal, 100)
        assert journal.stats()["lost"] > 0
        reader.release(journal.owner, read_all(reader, journal.owner)[-1].end)
        # The thread re-reads its segments' size at least once a second.
        wait_for(lambda: journal.stats()["journal_bytes"] < 5_000, timeout=5)
        journal.submit({"i": "again"}, b"q" * 2000, [])
        wait_written(journal, 101)
    finally:
        journal.close()
    last = read_all(reader, journal.owner)[-1]
    assert last.meta == {"i": "again"} and last.request_body == b"q" * 2000


def test_encode_failure_keeps_the_record(tmp_path: Path) -> None:
    def encode(item: Any) -> dict[str, Any]:
        if item == "boom":
            raise RuntimeError("cannot encode")
        if item == "odd":
            return {"when": object()}  # not marshallable
        return {"item": item}

    journal = writer(tmp_path, encode=encode)
    journal.start()
    journal.submit("ok", b"a", [b"b"])
    journal.submit("boom", b"req", [b"re", b"sp"])
    journal.submit("odd", b"", [b"x"])
    journal.close()
    records = read_all(JournalReader(tmp_path), journal.owner)
    assert records[0].meta == {"item": "ok"}
    assert records[1].meta == {"encodeError": "RuntimeError: cannot encode"}
    assert (records[1].request_body, records[1].response_body) == (b"req", b"resp")
    assert records[2].meta["encodeError"].startswith("ValueError")
    assert records[2].response_body == b"x"
    assert journal.stats()["failures"] == 2 and journal.stats()["records"] == 3


def test_close_flushes_fsyncs_and_releases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    journal = writer(tmp_path, segment_bytes=1 << 30)
    journal.start()
    for i in range(2000):
        journal.submit({"i": i}, os.urandom(100), [os.urandom(100)])
    journal.close()
    reader = JournalReader(tmp_path)
    assert [r.meta["i"] for r in read_all(reader, journal.owner)] == list(range(2000))
    segment = tmp_path / journal.owner / "000000000001.seg"
    assert str(segment) in synced and str(segment.parent) in synced
    assert reader.is_gone(journal.owner)
    assert journal._thread is not None and not journal._thread.is_alive()
    journal.submit({"late": True}, b"x", [b"y"])
    journal.close()  # twice is fine
    stats = journal.stats()
    assert stats["lost"] == 1 and stats["records"] == 2000 and stats["queue_records"] == 0


def test_close_gives_up_on_time(tmp_path: Path) -> None:
    def slow(item: Any) -> dict[str, Any]:
        time.sleep(0.02)
        return {"i": item}

    journal = writer(tmp_path, encode=slow)
    journal.start()
    for i in range(500):
        journal.submit(i, b"", [])
    started = time.monotonic()
    journal.close(timeout=1.0)
    assert time.monotonic() - started < 1.5
    stats = journal.stats()
    assert stats["records"] + stats["lost"] == 500 and stats["lost"] > 0
    assert JournalReader(tmp_path).is_gone(journal.owner)
    assert len(read_all(JournalReader(tmp_path), journal.owner)) == stats["records"]


def test_disk_errors_are_counted_and_cut_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = journal_segments.write_all
    failing = {"on": False}

    def write_all(fd: int, buffers: list[Any]) -> tuple[int, OSError | None]:
        if not failing["on"]:
            return real(fd, buffers)
        # Half a frame reaches the disk, then the disk is full.
        first = bytes(buffers[0]) + bytes(buffers[1])
        os.write(fd, first[: len(first) // 2])
        return len(first) // 2, OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_segments, "write_all", write_all)
    journal = writer(tmp_path)
    journal.start()
    caplog.set_level(logging.ERROR, logger="proxy.recording.journal")
    for i in range(30):
        failing["on"] = 10 <= i < 20
        journal.submit({"i": i}, b"q" * 100, [b"r" * 100])
        wait_written(journal, i + 1)
    journal.close()
    stats = journal.stats()
    assert stats["lost"] == 10 and stats["failures"] == 10 and stats["records"] == 20
    assert journal._thread is not None and not journal._thread.is_alive()
    reader = JournalReader(tmp_path)
    records = read_all(reader, journal.owner)
    assert [r.meta["i"] for r in records] == [*range(10), *range(20, 30)]
    assert reader.corrupt == 0  # every half-written frame was truncated away
    assert (
        stats["journal_bytes"]
        == stats["bytes_written"]
        == sum(p.stat().st_size for p in (tmp_path / journal.owner).glob("*.seg"))
    )
    # Ten failures within well under a second: logged once or twice, not ten times.
    assert 1 <= len([r for r in caplog.records if "write failed" in r.message]) <= 2


def test_idle_thread_is_woken_by_submit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_writer, "_IDLE_AFTER", 0.05)
    monkeypatch.setattr(journal_writer, "_REFRESH", 60.0)
    journal = writer(tmp_path)
    journal.start()
    try:
        wait_for(lambda: journal._idle, timeout=5)
        journal.submit({"n": 1}, b"", [])
        # Without the wake-up the thread would sleep for a minute.
        wait_written(journal, 1, timeout=2)
    finally:
        journal.close()


def test_busy_thread_is_not_signalled(tmp_path: Path) -> None:
    journal = writer(tmp_path)
    sets: list[int] = []
    wake = journal._wake

    class CountingEvent(threading.Event):
        def set(self) -> None:
            sets.append(1)
            wake.set()

    journal._wake = CountingEvent()
    journal._wake.wait = wake.wait  # type: ignore[method-assign]
    journal._wake.clear = wake.clear  # type: ignore[method-assign]
    journal.start()
    try:
        for i in range(300):
            journal.submit({"i": i}, b"", [])
            time.sleep(0.001)
        wait_written(journal, 300)
        assert sets == []  # polled, never signalled: no syscall per record
    finally:
        journal.close()
