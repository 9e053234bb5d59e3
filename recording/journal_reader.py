"""The recorder's side of the hand-off journal: read records, release consumed segments.

The reader only ever reads (release() aside) and streams frame by frame with
pread, never loading a whole segment. Writers live in other processes and append
while it reads; what it can see of a frame being written is a prefix, so:

- an incomplete frame at the end of a live owner's newest segment is "not yet
  written": read() stops there, and a later call finds it complete;
- a segment is finished once a later segment exists or its owner is gone
  (nobody holds `owner.lock`); the reader decides that first and looks at the
  file's size again afterwards, so a frame completed meanwhile is not mistaken
  for a torn one;
- a torn frame in a finished segment, a bad magic, a CRC mismatch or a meta that
  does not decode is corrupt: counted once, logged, and skipped by scanning
  forward for the next magic whose frame validates (or the next segment).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from recording.journal_files import (
    RateLimitedLog,
    directory_bytes,
    hold_if_free,
    list_segments,
    lock_is_free,
    pread_exact,
    unlink_size,
)
from recording.journal_format import (
    HEADER_SIZE,
    LOCK_NAME,
    MAGIC,
    Position,
    Record,
    decode_meta,
    parse_header,
    payload_crc,
    segment_name,
    valid_owner,
)

logger = logging.getLogger("proxy.recording.journal")

_SCAN_CHUNK = 256 * 1024
# What one frame at an offset turned out to be.
_INCOMPLETE = "incomplete"  # runs past the end of the file (so far)
_INVALID = "invalid"  # bad magic, bad CRC
# (A frame whose CRC matches but whose meta does not decode comes back as its end
# offset: it is skipped whole.)
_OVER = "over_budget"  # valid header, but it would exceed max_bytes
# Outcomes of reading one segment.
_STOP = "stop"
_NEXT = "next"


class JournalReader:
    """The recorder's view of every owner under directory (read-only except release())."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.corrupt = 0  # records skipped as corrupt so far
        self._counted: set[tuple[str, int, int]] = set()
        self._log = RateLimitedLog(logger)

    def owners(self) -> list[str]:
        try:
            with os.scandir(self.directory) as entries:
                return sorted(
                    e.name
                    for e in entries
                    if valid_owner(e.name) and e.is_dir(follow_symlinks=False)
                )
        except (FileNotFoundError, NotADirectoryError):
            return []

    def is_gone(self, owner: str) -> bool:
        """No live process holds the owner's lock."""
        return lock_is_free(self._owner_dir(owner) / LOCK_NAME)

    def read(
        self,
        owner: str,
        after: Position,
        *,
        max_records: int,
        max_bytes: int,
        until: Position | None = None,
    ) -> list[Record]:
        """Complete, valid records from `after` on, in order, up to the limits.

        At least one record when one is available, even past max_bytes; none at or
        after `until` (exclusive), so a previous range can be read again exactly.
        """
        return _Scan(self, owner, until).read(after, max(1, max_records), max_bytes)

    def release(self, owner: str, upto: Position) -> int:
        """Delete finished segments consumed before `upto`; the whole owner once it is
        gone and nothing is left after `upto`. Bytes freed."""
        path = self._owner_dir(owner)
        segments = list_segments(path)
        gone = self.is_gone(owner)
        newest = segments[-1] if segments else 0
        freed = 0
        for segment in segments:
            if segment > upto.segment or not (gone or segment < newest):
                break
            seg_path = path / segment_name(segment)
            if segment == upto.segment:
                try:
                    if upto.offset < seg_path.stat().st_size:
                        break
                except FileNotFoundError:
                    continue
            freed += unlink_size(seg_path)
            self._forget(owner, segment)
        if gone:
            freed += self._remove_owner(owner, upto)
        return freed

    def size(self) -> int:
        """Bytes on disk, all owners."""
        return sum(
            directory_bytes(self.directory / owner, segments_only=False) for owner in self.owners()
        )

    def backlog(self, done: dict[str, Position]) -> int:
        """Bytes written after the given positions (per owner): what is not yet
        stored. Unlike `size`, it falls to 0 once the reader has caught up."""
        total = 0
        for owner in self.owners():
            after = done.get(owner, Position(0, 0))
            directory = self.directory / owner
            for segment in list_segments(directory):
                if segment < after.segment:
                    continue
                try:
                    size = os.stat(directory / segment_name(segment)).st_size
                except FileNotFoundError:
                    continue
                total += max(0, size - (after.offset if segment == after.segment else 0))
        return total

    def _owner_dir(self, owner: str) -> Path:
        if not valid_owner(owner):
            raise ValueError(f"{owner!r} is not a journal owner")
        return self.directory / owner

    def _remove_owner(self, owner: str, upto: Position) -> int:
        """Remove a gone owner's files and directory when nothing is left after `upto`."""
        path = self._owner_dir(owner)
        lock_path = path / LOCK_NAME
        # Held while deciding and deleting, so a new writer cannot take this owner
        # name in between (its acquire_lock() waits, then locks a fresh file).
        lock_fd = hold_if_free(lock_path)
        if lock_fd is None:
            return 0
        try:
            if _Scan(self, owner, None, gone=True).read(upto, 1, 1):
                return 0
            freed = sum(unlink_size(path / segment_name(s)) for s in list_segments(path))
            freed += unlink_size(lock_path)
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._log(logging.WARNING, "journal owner %s not removed: %s", owner, exc)
            self._counted = {key for key in self._counted if key[0] != owner}
            return freed
        finally:
            os.close(lock_fd)

    def _forget(self, owner: str, segment: int) -> None:
        self._counted = {key for key in self._counted if key[:2] != (owner, segment)}

    def _count_corrupt(self, owner: str, segment: int, offset: int, why: str) -> None:
        # Re-reads of the same range (redo, release's check) must not count it again.
        key = (owner, segment, offset)
        if key in self._counted:
            return
        self._counted.add(key)
        self.corrupt += 1
        self._log(
            logging.ERROR,
            "journal %s segment %d offset %d: %s record skipped",
            owner,
            segment,
            offset,
            why,
        )


class _Scan:
    """One read() call: the owner's segment listing and liveness, looked up lazily."""

    def __init__(
        self, reader: JournalReader, owner: str, until: Position | None, *, gone: bool = False
    ) -> None:
        self.reader = reader
        self.owner = owner
        self.path = reader._owner_dir(owner)
        self.until = until
        self.segments = list_segments(self.path)
        self._gone: bool | None = True if gone else None
        self.records: list[Record] = []
        self.total = 0

    def read(self, after: Position, max_records: int, max_bytes: int) -> list[Record]:
        segment = next((s for s in self.segments if s >= after.segment), None)
        offset = after.offset if segment == after.segment else 0
        while segment is not None:
            if self._reached(segment, offset):
                break
            if self._read_segment(segment, offset, max_records, max_bytes) == _STOP:
                break
            segment = self._next(segment)
            offset = 0
        return self.records

    def _reached(self, segment: int, offset: int) -> bool:
        return self.until is not None and Position(segment, offset) >= self.until

    def _next(self, segment: int) -> int | None:
        later = [s for s in self.segments if s > segment]
        if not later:
            self.segments = list_segments(self.path)
            later = [s for s in self.segments if s > segment]
        return later[0] if later else None

    def _finished(self, segment: int) -> bool:
        if self.segments and self.segments[-1] > segment:
            return True
        self.segments = list_segments(self.path)
        if self.segments and self.segments[-1] > segment:
            return True
        if self._gone is None:
            self._gone = self.reader.is_gone(self.owner)
        return self._gone

    def _read_segment(self, segment: int, offset: int, max_records: int, max_bytes: int) -> str:
        try:
            fd = os.open(self.path / segment_name(segment), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return _NEXT  # released meanwhile: consumed
        try:
            size = os.fstat(fd).st_size
            while True:
                if self._reached(segment, offset) or len(self.records) >= max_records:
                    return _STOP
                if offset >= size:
                    size = os.fstat(fd).st_size
                    if offset < size:
                        continue
                    if not self._finished(segment):
                        return _STOP
                    # Finished now: whatever was written before that is there by now.
                    size = os.fstat(fd).st_size
                    if offset < size:
                        continue
                    return _NEXT
                budget = None if not self.records else max_bytes - self.total
                outcome = self._frame(fd, segment, offset, size, budget)
                if isinstance(outcome, Record):
                    self.records.append(outcome)
                    self.total += outcome.end.offset - offset
                    offset = outcome.end.offset
                    continue
                if isinstance(outcome, int):
                    self.reader._count_corrupt(self.owner, segment, offset, "undecodable")
                    offset = outcome
                    continue
                if outcome == _OVER:
                    return _STOP
                if outcome == _INCOMPLETE:
                    if not self._finished(segment):
                        return _STOP
                    grown = os.fstat(fd).st_size
                    if grown > size:
                        size = grown
                        continue
                    why = "torn"
                else:
                    why = "invalid"
                self.reader._count_corrupt(self.owner, segment, offset, why)
                resumed = self._resync(fd, segment, offset + 1, size)
                if resumed is None:
                    return _STOP
                offset, size = resumed
        finally:
            os.close(fd)

    def _resync(self, fd: int, segment: int, start: int, size: int) -> tuple[int, int] | None:
        """(offset, size) of the next frame that validates, or of the end of a finished
        segment; None when the rest of a live segment may still be being written."""
        position = start
        while True:
            found = _find_magic(fd, position, size)
            if found is None:
                # In a live segment, the next frame may be half-written right at the
                # end: stop, and let a later call scan again from the corrupt spot.
                if not self._finished(segment):
                    return None
                grown = os.fstat(fd).st_size
                if grown > size:
                    position = max(position, size - len(MAGIC) + 1)
                    size = grown
                    continue
                return size, size
            outcome = self._frame(fd, segment, found, size, None)
            if isinstance(outcome, Record):
                return found, size
            if isinstance(outcome, int):
                self.reader._count_corrupt(self.owner, segment, found, "undecodable")
                return outcome, size
            if outcome == _INCOMPLETE:
                if not self._finished(segment):
                    return None
                grown = os.fstat(fd).st_size
                if grown > size:
                    size = grown
                    continue
            position = found + 1

    def _frame(
        self, fd: int, segment: int, offset: int, size: int, budget: int | None
    ) -> Record | str | int:
        head = os.pread(fd, HEADER_SIZE, offset)
        if len(head) < HEADER_SIZE:
            known = min(len(head), len(MAGIC))
            return _INCOMPLETE if head[:known] == MAGIC[:known] else _INVALID
        header = parse_header(head)
        if header is None:
            return _INVALID
        end = offset + header.frame_len
        if end > size:
            return _INCOMPLETE
        if budget is not None and header.frame_len > budget:
            return _OVER
        at = offset + HEADER_SIZE
        meta = pread_exact(fd, header.meta_len, at)
        request = pread_exact(fd, header.request_len, at + header.meta_len)
        response = pread_exact(fd, header.response_len, at + header.meta_len + header.request_len)
        if meta is None or request is None or response is None:
            return _INCOMPLETE  # the writer truncated a failed write away meanwhile
        if payload_crc(header, meta, request, response) != header.crc:
            return _INVALID
        try:
            decoded = decode_meta(meta)
        except Exception:
            return end
        start, stop = Position(segment, offset), Position(segment, end)
        return Record(self.owner, start, stop, decoded, request, response)


def _find_magic(fd: int, start: int, size: int) -> int | None:
    """Offset of the next MAGIC at or after `start` and before `size`."""
    position = start
    while position < size:
        chunk = os.pread(fd, min(_SCAN_CHUNK, size - position), position)
        if not chunk:
            return None
        found = chunk.find(MAGIC)
        if found >= 0:
            return position + found
        if position + len(chunk) >= size:
            return None
        # Step back so a magic split across two chunks is still found.
        position += max(1, len(chunk) - len(MAGIC) + 1)
    return None
