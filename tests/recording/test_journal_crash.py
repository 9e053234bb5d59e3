"""Crashes and corruption: a writer killed mid-write, torn tails, flipped bytes,
and a reader working while the writer appends."""

from __future__ import annotations

import hashlib
import marshal
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from recording.journal import JournalReader, Position, Record
from recording.journal_files import acquire_lock
from recording.journal_format import HEADER_SIZE, build_frame, encode_meta
from tests.recording.journal_helpers import (
    check_tiling,
    read_all,
    wait_for,
    wait_written,
    writer,
)

ROOT = Path(__file__).resolve().parents[2]


def _child(directory: Path, owner: str, run: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.recording.journal_child", str(directory), owner, run],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def _check(record: Record) -> None:
    digest = hashlib.sha256(record.request_body + b"|" + record.response_body).hexdigest()
    assert record.meta["sha"] == digest


def test_sigkilled_writer(tmp_path: Path) -> None:
    rng = random.Random()
    reader = JournalReader(tmp_path)
    # The same owner twice (a restarted worker reusing its name), then another.
    runs = [("crash-a", "run1"), ("crash-a", "run2"), ("crash-b", "run3")]
    seen: dict[str, list[Record]] = {"crash-a": [], "crash-b": []}
    for owner, run in runs:
        proc = _child(tmp_path, owner, run)
        before = reader.corrupt
        try:
            deadline = time.monotonic() + rng.uniform(0.3, 1.2)
            # Read while it writes: a live owner's tail is "not yet written", never corrupt.
            while time.monotonic() < deadline:
                after = seen[owner][-1].end if seen[owner] else Position(0, 0)
                seen[owner] += reader.read(owner, after, max_records=50, max_bytes=8 << 20)
            assert reader.corrupt == before
            assert not reader.is_gone(owner)
            # Let the record being written be torn, most of the time.
            time.sleep(rng.uniform(0, 0.01))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        wait_for(lambda owner=owner: reader.is_gone(owner))
        after = seen[owner][-1].end if seen[owner] else Position(0, 0)
        seen[owner] += read_all(reader, owner, after, max_records=7)
    torn = reader.corrupt
    assert torn <= len(runs)  # at most one torn frame per kill
    for owner, records in seen.items():
        for record in records:
            _check(record)
        # Every run's records are there once, in order, from its first one on.
        for run in {run for o, run in runs if o == owner}:
            assert [r.meta["seq"] for r in records if r.meta["run"] == run] == list(
                range(sum(1 for r in records if r.meta["run"] == run))
            )
        # ... and nothing complete was left behind: a segment's rest is a torn frame.
        check_tiling(tmp_path, owner, records)
        assert read_all(reader, owner) == records
        assert reader.release(owner, records[-1].end) > 0
        assert not (tmp_path / owner).exists()
    assert reader.corrupt == torn  # re-reading did not count anything twice
    assert reader.size() == 0


def _frames(tmp_path: Path, count: int) -> tuple[str, list[Record]]:
    journal = writer(tmp_path, segment_bytes=1 << 20)
    journal.start()
    for i in range(count):
        journal.submit({"i": i}, bytes([i]) * 200, [b"resp-%d" % i])
    journal.close()
    return journal.owner, read_all(JournalReader(tmp_path), journal.owner)


def _flip(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_flipped_bytes_skip_one_record(tmp_path: Path) -> None:
    owner, records = _frames(tmp_path, 20)
    segment = tmp_path / owner / "000000000001.seg"
    _flip(segment, records[3].start.offset + HEADER_SIZE + 50)  # a body byte: CRC fails
    _flip(segment, records[8].start.offset)  # the magic
    _flip(segment, records[12].start.offset + 5)  # the meta length
    _flip(segment, records[19].end.offset - 1)  # the last byte of the last record
    reader = JournalReader(tmp_path)
    got = read_all(reader, owner)
    assert [r.meta["i"] for r in got] == [i for i in range(20) if i not in (3, 8, 12, 19)]
    assert got == [r for r in records if r.meta["i"] not in (3, 8, 12, 19)]
    assert reader.corrupt == 4
    assert read_all(reader, owner, max_records=1) == got and reader.corrupt == 4


def test_undecodable_meta_is_corrupt(tmp_path: Path) -> None:
    owner_dir = tmp_path / "crafted"
    owner_dir.mkdir()
    good = build_frame(encode_meta({"ok": 1}), b"a", [b"b"])[0]
    bad_meta = build_frame(b"\xff\x00garbage", b"c", [b"d"])[0]  # CRC valid, marshal not
    not_dict = build_frame(marshal.dumps([1]), b"", [])[0]
    (owner_dir / "000000000001.seg").write_bytes(
        b"".join(bytes(b) for frame in (good, bad_meta, not_dict, good) for b in frame)
    )
    reader = JournalReader(tmp_path)
    assert [r.meta for r in read_all(reader, "crafted")] == [{"ok": 1}, {"ok": 1}]
    assert reader.corrupt == 2


def test_torn_tail_waits_while_live_and_is_skipped_once_gone(tmp_path: Path) -> None:
    owner_dir = tmp_path / "w1"
    lock = acquire_lock(owner_dir / "owner.lock")
    reader = JournalReader(tmp_path)
    frames = [
        b"".join(build_frame(encode_meta({"i": i}), b"q" * 1000, [b"r" * 3000])[0])
        for i in range(4)
    ]
    segment = owner_dir / "000000000001.seg"
    with segment.open("ab") as f:
        f.write(frames[0] + frames[1] + frames[2][:10])  # a header cut short
        f.flush()
        got = read_all(reader, "w1")
        assert [r.meta["i"] for r in got] == [0, 1] and reader.corrupt == 0
        f.write(frames[2][10:2000])  # the rest of the header, not the body
        f.flush()
        assert reader.read("w1", got[-1].end, max_records=9, max_bytes=1 << 30) == []
        f.write(frames[2][2000:] + frames[3][:-1])
        f.flush()
        got += read_all(reader, "w1", got[-1].end)
        assert [r.meta["i"] for r in got] == [0, 1, 2] and reader.corrupt == 0
        assert reader.release("w1", got[-1].end) == 0  # the live writer's segment
    os.close(lock)  # the writer dies with the last frame torn
    assert reader.is_gone("w1")
    assert read_all(reader, "w1", got[-1].end) == [] and reader.corrupt == 1
    size = segment.stat().st_size
    assert reader.release("w1", got[-1].end) == size
    assert not owner_dir.exists() and reader.corrupt == 1


def test_torn_tail_of_a_finished_segment_is_skipped(tmp_path: Path) -> None:
    owner_dir = tmp_path / "w2"
    lock = acquire_lock(owner_dir / "owner.lock")
    try:
        frame = b"".join(build_frame(encode_meta({"i": 0}), b"q", [b"r"])[0])
        (owner_dir / "000000000001.seg").write_bytes(frame + frame[:20])
        reader = JournalReader(tmp_path)
        assert len(read_all(reader, "w2")) == 1 and reader.corrupt == 0
        # A later segment exists: the first is finished, its torn tail is corrupt.
        (owner_dir / "000000000002.seg").write_bytes(frame)
        got = read_all(reader, "w2")
        assert [r.start for r in got] == [Position(1, 0), Position(2, 0)]
        assert reader.corrupt == 1
    finally:
        os.close(lock)


def test_reader_and_releaser_while_the_writer_appends(tmp_path: Path) -> None:
    journal = writer(tmp_path, segment_bytes=20_000)
    journal.start()
    reader = JournalReader(tmp_path)
    total = 3000
    done = threading.Event()

    def produce() -> None:
        rng = random.Random(5)
        for i in range(total):
            journal.submit({"i": i}, rng.randbytes(rng.randint(0, 3000)), [b"x" * (i % 7)])
            if i % 50 == 0:
                time.sleep(0.001)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    got: list[int] = []
    after = Position(0, 0)
    while len(got) < total:
        batch = reader.read(journal.owner, after, max_records=64, max_bytes=100_000)
        got += [r.meta["i"] for r in batch]
        if batch:
            after = batch[-1].end
            reader.release(journal.owner, after)
    producer.join()
    assert done.is_set() and got == list(range(total)) and reader.corrupt == 0
    wait_written(journal, total)
    journal.close()
    assert reader.read(journal.owner, after, max_records=1, max_bytes=1) == []
    reader.release(journal.owner, after)
    assert reader.owners() == [] and reader.size() == 0
