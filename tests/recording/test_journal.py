"""The hand-off journal end to end: what workers submit is what the recorder reads,
in order, across segment rotations, in pieces, and again exactly with `until`."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from recording.journal import (
    FORMAT_VERSION,
    JOURNAL_CLOSE_TIMEOUT,
    JournalBusyError,
    JournalReader,
    Position,
    Record,
)
from recording.journal_format import HEADER_SIZE, MAGIC
from tests.recording.journal_helpers import (
    check_tiling,
    random_meta,
    read_all,
    split,
    wait_written,
    writer,
)

SEGMENT = 256 * 1024


def _bodies(rng: random.Random, count: int) -> list[tuple[bytes, bytes]]:
    sizes = [0, 0, 1, 7, 300, 5_000, 40_000, 200_000]
    bodies = [
        (rng.randbytes(rng.choice(sizes)), rng.randbytes(rng.choice(sizes))) for _ in range(count)
    ]
    # A few multi-megabyte ones, far over a segment: each gets a segment of its own.
    bodies[10] = (rng.randbytes(3 * 1024 * 1024), b"")
    bodies[50] = (b"", rng.randbytes(2 * 1024 * 1024 + 17))
    bodies[51] = (rng.randbytes(1024 * 1024), rng.randbytes(4 * 1024 * 1024))
    return bodies


@pytest.fixture(scope="module")
def journal(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, str, list[tuple[dict, bytes, bytes]]]:
    """300 random records, written once for the module's read tests."""
    directory = tmp_path_factory.mktemp("journal")
    rng = random.Random(1234)
    expected = []
    journal = writer(directory, segment_bytes=SEGMENT)
    journal.start()
    for request, response in _bodies(rng, 300):
        meta = random_meta(rng)
        journal.submit(meta, request, split(response, rng))
        expected.append((meta, request, response))
    journal.close()
    stats = journal.stats()
    assert stats["records"] == 300 and stats["lost"] == 0 and stats["failures"] == 0
    return directory, journal.owner, expected


def test_round_trip_across_segments(journal: tuple[Path, str, list]) -> None:
    directory, owner, expected = journal
    reader = JournalReader(directory)
    records = read_all(reader, owner)
    assert [(r.meta, r.request_body, r.response_body) for r in records] == expected
    assert all(r.owner == owner for r in records)
    assert reader.corrupt == 0
    check_tiling(directory, owner, records)
    segments = sorted((directory / owner).glob("*.seg"))
    assert len(segments) >= 10
    assert segments[0].name == "000000000001.seg"
    for path in segments:
        in_segment = [r for r in records if r.start.segment == int(path.stem)]
        # A record never spans segments; only a record alone may exceed segment_bytes.
        assert in_segment and in_segment[-1].end.offset == path.stat().st_size
        assert path.stat().st_size <= SEGMENT or len(in_segment) == 1


def test_read_in_pieces_and_redo_with_until(journal: tuple[Path, str, list]) -> None:
    directory, owner, expected = journal
    reader = JournalReader(directory)
    rng = random.Random(99)
    pieces: list[list[Record]] = []
    after = Position(0, 0)
    while True:
        max_records = rng.randint(1, 25)
        max_bytes = rng.choice([1, 1000, 100_000, 1_000_000])
        piece = reader.read(owner, after, max_records=max_records, max_bytes=max_bytes)
        if not piece:
            break
        assert len(piece) <= max_records
        frame_bytes = sum(r.end.offset - r.start.offset for r in piece)
        assert len(piece) == 1 or frame_bytes <= max_bytes
        pieces.append(piece)
        after = piece[-1].end
    flat = [r for piece in pieces for r in piece]
    assert [(r.meta, r.request_body, r.response_body) for r in flat] == expected
    for piece in pieces:
        redo = reader.read(
            owner, piece[0].start, max_records=1000, max_bytes=1 << 40, until=piece[-1].end
        )
        assert redo == piece
    assert reader.corrupt == 0


def test_until_stops_before_and_budget_always_yields_one(journal: tuple[Path, str, list]) -> None:
    directory, owner, _ = journal
    reader = JournalReader(directory)
    first = reader.read(owner, Position(0, 0), max_records=10, max_bytes=1 << 40)
    assert len(first) == 10
    assert (
        reader.read(owner, first[0].start, max_records=10, max_bytes=1 << 40, until=first[0].start)
        == []
    )
    assert (
        reader.read(owner, first[0].start, max_records=10, max_bytes=1 << 40, until=first[3].start)
        == first[:3]
    )
    # max_bytes below any frame still returns one record; max_records 0 acts as 1.
    assert reader.read(owner, first[2].start, max_records=10, max_bytes=1) == [first[2]]
    assert reader.read(owner, first[2].start, max_records=0, max_bytes=1 << 40) == [first[2]]
    # A position at the very end of a finished segment continues in the next one.
    last_of_first = [r for r in read_all(reader, owner) if r.start.segment == 1][-1]
    nxt = reader.read(owner, last_of_first.end, max_records=1, max_bytes=1)
    assert nxt[0].start == Position(2, 0)
    assert reader.read(owner, Position(1 << 30, 0), max_records=5, max_bytes=1) == []


def test_constants_and_frame_layout(tmp_path: Path) -> None:
    assert FORMAT_VERSION == 1 and JOURNAL_CLOSE_TIMEOUT == 5.0
    journal = writer(tmp_path)
    journal.start()
    journal.submit({"a": 1}, b"REQ", [b"RE", b"SP"])
    journal.close()
    data = (tmp_path / journal.owner / "000000000001.seg").read_bytes()
    assert data[:4] == MAGIC == b"CPJ1"
    assert data[-7:] == b"REQRESP"
    assert len(data) == HEADER_SIZE + int.from_bytes(data[4:8], "little") + 7


def test_live_writer_reads_and_release(tmp_path: Path) -> None:
    journal = writer(tmp_path, segment_bytes=4096)
    journal.start()
    reader = JournalReader(tmp_path)
    try:
        assert reader.owners() == [journal.owner]
        assert not reader.is_gone(journal.owner)
        for i in range(40):
            journal.submit({"i": i}, b"q" * 500, [b"r" * 500])
        wait_written(journal, 40)
        records = read_all(reader, journal.owner)
        assert [r.meta["i"] for r in records] == list(range(40))
        owner_dir = tmp_path / journal.owner
        segments = sorted(int(p.stem) for p in owner_dir.glob("*.seg"))
        assert len(segments) >= 4
        # Up to the middle of segment 3: only segments 1 and 2 go.
        middle = next(r for r in records if r.start.segment == 3 and r.start.offset > 0)
        sizes = {int(p.stem): p.stat().st_size for p in owner_dir.glob("*.seg")}
        assert reader.release(journal.owner, middle.start) == sizes[1] + sizes[2]
        assert sorted(int(p.stem) for p in owner_dir.glob("*.seg")) == segments[2:]
        # Everything read, but the newest segment is the live writer's: kept.
        freed = reader.release(journal.owner, records[-1].end)
        assert freed == sum(sizes[s] for s in segments[2:-1])
        assert [int(p.stem) for p in owner_dir.glob("*.seg")] == [segments[-1]]
        assert reader.release(journal.owner, records[-1].end) == 0
        assert reader.size() == sizes[segments[-1]]
        # The writer notices the space freed and keeps going.
        journal.submit({"i": 40}, b"", [])
        wait_written(journal, 41)
        assert [r.meta["i"] for r in read_all(reader, journal.owner, records[-1].end)] == [40]
    finally:
        journal.close()
    assert reader.is_gone(journal.owner)
    records = read_all(reader, journal.owner)
    assert reader.release(journal.owner, records[-2].end) == 0  # not all consumed: stays
    assert reader.owners() == [journal.owner]
    assert reader.release(journal.owner, records[-1].end) > 0
    assert reader.owners() == [] and not (tmp_path / journal.owner).exists()
    assert reader.release(journal.owner, records[-1].end) == 0  # idempotent
    assert reader.size() == 0


def test_gone_owner_with_unread_records_is_kept(tmp_path: Path) -> None:
    journal = writer(tmp_path, segment_bytes=1000)
    journal.start()
    for i in range(10):
        journal.submit({"i": i}, b"x" * 300, [])
    journal.close()
    reader = JournalReader(tmp_path)
    records = read_all(reader, journal.owner)
    before = reader.size()
    assert reader.release(journal.owner, Position(0, 0)) == 0
    assert reader.size() == before
    assert [r.start.segment for r in records] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # Consumed into segment 3: segments 1 and 2 go, 3 stays.
    freed = reader.release(journal.owner, records[4].end)
    assert freed > 0 and reader.size() == before - freed
    assert read_all(reader, journal.owner) == records[4:]
    # Consumed to segment 3's very end: it is finished, so it goes too.
    assert reader.release(journal.owner, records[5].end) > 0
    assert read_all(reader, journal.owner) == records[6:]
    assert reader.owners() == [journal.owner]


def test_owner_lock(tmp_path: Path) -> None:
    first = writer(tmp_path)
    second = writer(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{16}", first.owner) and first.owner != second.owner
    first.start()
    second.start()
    reader = JournalReader(tmp_path)
    assert reader.owners() == sorted([first.owner, second.owner])
    clash = writer(tmp_path, owner=first.owner)
    with pytest.raises(JournalBusyError):
        clash.start()
    first.close()
    assert reader.is_gone(first.owner) and not reader.is_gone(second.owner)
    # A gone owner's name can be taken again: it continues after the old segments.
    first.submit({}, b"", [])  # closed: counted, never raised
    again = writer(tmp_path, owner=first.owner)
    again.start()
    again.submit({"n": 2}, b"", [])
    again.close()
    second.close()
    assert [r.meta for r in read_all(reader, first.owner)] == [{"n": 2}]
    with pytest.raises(ValueError):
        writer(tmp_path, owner="../escape")
    with pytest.raises(ValueError):
        reader.read("../x", Position(0, 0), max_records=1, max_bytes=1)


def test_an_owner_being_created_is_not_removed(tmp_path: Path) -> None:
    # A writer makes its directory, then its lock file: in between, release() must
    # not take the directory away from under it.
    (tmp_path / "newborn").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "stray.txt").write_text("x")
    reader = JournalReader(tmp_path)
    assert reader.owners() == ["newborn"]
    assert reader.read("newborn", Position(0, 0), max_records=1, max_bytes=1) == []
    assert reader.release("newborn", Position(0, 0)) == 0
    assert (tmp_path / "newborn").is_dir()
    assert JournalReader(tmp_path / "missing").owners() == []
