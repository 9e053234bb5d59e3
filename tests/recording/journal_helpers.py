"""Helpers for the journal tests: writers in tmp_path, reading everything, waiting."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recording.journal import JournalReader, JournalWriter, Position, Record
from recording.journal_format import HEADER_SIZE, parse_header, segment_name

BIG = 1 << 40
START = Position(0, 0)


def writer(directory: Path, **overrides: Any) -> JournalWriter:
    options: dict[str, Any] = {
        "segment_bytes": 64 * 1024,
        "max_bytes": BIG,
        "queue_bytes": BIG,
    }
    options.update(overrides)
    return JournalWriter(directory, **options)


def read_all(
    reader: JournalReader,
    owner: str,
    after: Position = START,
    *,
    max_records: int = 1000,
    max_bytes: int = BIG,
) -> list[Record]:
    records: list[Record] = []
    while True:
        batch = reader.read(owner, after, max_records=max_records, max_bytes=max_bytes)
        if not batch:
            return records
        records.extend(batch)
        after = batch[-1].end


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def wait_written(journal: JournalWriter, records: int, timeout: float = 10.0) -> None:
    """Until the thread has handled `records` records in all (written or lost)."""

    def handled() -> bool:
        stats = journal.stats()
        return stats["queue_records"] == 0 and stats["records"] + stats["lost"] >= records

    wait_for(handled, timeout)


def random_meta(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """A meta of every type the format promises to carry (NaN aside: it never equals)."""
    meta: dict[str, Any] = {}
    for i in range(rng.randint(0, 6)):
        kind = rng.randrange(9 if depth < 2 else 6)
        value: Any
        if kind == 0:
            value = "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(0, 40)))
        elif kind == 1:
            value = rng.randint(-(1 << 70), 1 << 70)
        elif kind == 2:
            value = rng.uniform(-1e9, 1e9)
        elif kind == 3:
            value = rng.choice([True, False, None])
        elif kind == 4:
            value = rng.randbytes(rng.randint(0, 50))
        elif kind == 5:
            value = ""
        elif kind == 6:
            value = [random_meta(rng, depth + 1), 1, "x"]
        elif kind == 7:
            value = random_meta(rng, depth + 1)
        else:
            value = (1, "two", None, b"four")
        meta[f"k{i}"] = value
    return meta


def split(body: bytes, rng: random.Random) -> list[bytes]:
    """The body in 0..60 chunks, empty chunks included."""
    if not body:
        return [b""] * rng.randint(0, 2)
    cuts = sorted(rng.randint(0, len(body)) for _ in range(rng.randint(0, 60)))
    edges = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


def check_tiling(directory: Path, owner: str, records: list[Record]) -> None:
    """Records tile each segment from offset 0 without a gap; what is left at a
    segment's end is a torn frame, never a complete one."""
    by_segment: dict[int, list[Record]] = {}
    for record in records:
        by_segment.setdefault(record.start.segment, []).append(record)
    for path in sorted((directory / owner).glob("*.seg")):
        segment = int(path.stem)
        data = path.read_bytes()
        offset = 0
        for record in by_segment.get(segment, []):
            assert record.start == Position(segment, offset)
            offset = record.end.offset
        tail = data[offset:]
        if tail:
            assert path.name == segment_name(segment)
            assert len(tail) < HEADER_SIZE or parse_header(tail[:HEADER_SIZE]) is not None
            if len(tail) >= HEADER_SIZE:
                header = parse_header(tail[:HEADER_SIZE])
                assert header is not None and header.frame_len > len(tail)
