"""The worker's side of the hand-off journal: submit() on the event loop, I/O on a thread.

submit() costs the event loop O(1) and no syscall: it appends the caller's own
objects (no copy, no serialisation) to a deque and bumps counters. A thread named
`journal-writer` encodes, frames and appends them to `<directory>/<owner>/`.

Waking the thread: while records flow it polls the deque every 5 ms, so submit
never has to signal it; after a second without records it sleeps on an Event and
raises `_idle`, and only then does submit pay for one Event.set() (measured here:
~14 µs with the GIL hand-off, against ~0.1 µs for the flag check; a 5 ms poll alone
would cost ~0.8 % of a core per idle worker).

Drop policy, never blocking: beyond `queue_bytes` queued, records are queued
without bodies (`bodiesDropped: "queue_full"`); beyond twice that or 100,000
records, dropped and counted `lost`. When this writer's segments reach 90 % of
`max_bytes`, records are written without bodies (`"journal_full"`); at 100 %,
dropped. Disk errors never stop the thread: they are counted and logged at most
once a second, and a failed write is truncated away so the segment stays clean.

Durability: no fsync per record. A crashed or killed process loses nothing it
wrote (the page cache survives it); a crash of the machine may lose what was not
yet flushed by the kernel. close() fsyncs.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recording.journal_files import RateLimitedLog, directory_bytes
from recording.journal_format import (
    HEADER_SIZE,
    JOURNAL_CLOSE_TIMEOUT,
    build_frame,
    encode_meta,
    valid_owner,
)
from recording.journal_segments import OwnerSegments

logger = logging.getLogger("proxy.recording.journal")

# What one queued record costs besides its bodies (the item, the tuple, the deque
# slot): so that bodiless records still count towards the twice-queue_bytes limit.
QUEUED_RECORD_COST = 1024
QUEUE_MAX_RECORDS = 100_000
JOURNAL_FULL_RATIO = 0.9

_POLL = 0.005
_IDLE_AFTER = 1.0
_REFRESH = 1.0
_BATCH_RECORDS = 256
_BATCH_BYTES = 4 * 1024 * 1024

# A queued record: item, request body, response chunks, queue cost, bodies-dropped
# reason or None, bytes of the dropped bodies.
_Entry = tuple[Any, bytes, Sequence[bytes], int, str | None, int]
# A framed record: buffers for writev, length, whether its bodies were dropped.
_Frame = tuple[list[Any], int, bool]


def _identity(item: Any) -> dict[str, Any]:
    return item


class JournalWriter:
    """One per worker process; owns directory/<owner>/ and a thread named 'journal-writer'.

    submit() must be called from one thread (the worker's event loop); stats() from any.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        owner: str | None = None,
        segment_bytes: int,
        max_bytes: int,
        queue_bytes: int,
        encode: Callable[[Any], dict[str, Any]] = _identity,
    ) -> None:
        for name, value in (
            ("segment_bytes", segment_bytes),
            ("max_bytes", max_bytes),
            ("queue_bytes", queue_bytes),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        self.owner = owner if owner is not None else secrets.token_hex(8)
        if not valid_owner(self.owner):
            raise ValueError(f"owner {self.owner!r} is not a plain file name")
        self.directory = Path(directory)
        self.path = self.directory / self.owner
        self._segment_bytes = segment_bytes
        self._max_bytes = max_bytes
        self._queue_bytes = queue_bytes
        self._encode = encode
        self._queue: deque[_Entry] = deque()
        # Each counter has one writing thread, so no lock is needed: `_in_*` and
        # `_submit_*` belong to submit(), the rest to the writer thread.
        self._in_bytes = 0
        self._in_records = 0
        self._submit_lost = 0
        self._submit_failures = 0
        self._out_bytes = 0
        self._out_records = 0
        self._records = 0
        self._bytes_written = 0
        self._bodies_dropped = 0
        self._lost = 0
        self._failures = 0
        self._journal_bytes = 0
        self._closing = False
        self._deadline = float("inf")
        self._idle = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._segments = OwnerSegments(self.path, self._segment_failed)
        self._next_refresh = 0.0
        self._log = RateLimitedLog(logger)

    # -- the event loop's side -------------------------------------------------

    def submit(
        self,
        item: Any,
        request_body: bytes,
        response_chunks: Sequence[bytes],
        *,
        response_bytes: int | None = None,
    ) -> None:
        """Queue one finished exchange; never blocks, never raises.

        The objects are kept, not copied: the caller must not mutate them afterwards.
        `response_bytes` (the chunks' total length, when the caller knows it) spares
        the sum over the chunks, making the call O(1) in their number too.
        """
        try:
            if self._closing:
                self._submit_lost += 1
                return
            queued = self._in_bytes - self._out_bytes
            if (
                queued > 2 * self._queue_bytes
                or self._in_records - self._out_records >= QUEUE_MAX_RECORDS
            ):
                self._submit_lost += 1
                return
            if response_bytes is None:
                response_bytes = sum(map(len, response_chunks))
            size = len(request_body) + response_bytes
            if size and queued + size + QUEUED_RECORD_COST > self._queue_bytes:
                entry: _Entry = (item, b"", (), QUEUED_RECORD_COST, "queue_full", size)
            else:
                entry = (item, request_body, response_chunks, size + QUEUED_RECORD_COST, None, 0)
            self._queue.append(entry)
            self._in_bytes += entry[3]
            self._in_records += 1
            if self._idle:
                self._idle = False
                self._wake.set()
        except Exception:
            self._submit_failures += 1
            self._submit_lost += 1

    def stats(self) -> dict[str, int]:
        return {
            "queue_bytes": self._in_bytes - self._out_bytes,
            "queue_records": self._in_records - self._out_records,
            "records": self._records,
            "bytes_written": self._bytes_written,
            "bodies_dropped": self._bodies_dropped,
            "lost": self._lost + self._submit_lost,
            "journal_bytes": self._journal_bytes,
            "failures": self._failures + self._submit_failures,
        }

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None or self._closing:
            raise RuntimeError("a JournalWriter starts once, before close()")
        self._segments.claim()
        self._refresh_size()
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = JOURNAL_CLOSE_TIMEOUT) -> None:
        """Flush the queue, fsync, seal, release the lock, join the thread (blocking).

        What is still queued when `timeout` is near is counted lost, so that the
        fsync and the lock's release still fit in it.
        """
        if self._closing:
            return
        self._deadline = time.monotonic() + timeout - min(1.0, timeout * 0.2)
        self._closing = True
        thread = self._thread
        if thread is None:
            self._discard_queue()
            return
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            self._log(logging.ERROR, "journal writer still busy after close(%.1fs)", timeout)
            return
        # A submit() racing with close() may have queued after the thread's last look.
        self._discard_queue()

    def _discard_queue(self) -> None:
        while self._queue:
            entry = self._queue.popleft()
            self._out_bytes += entry[3]
            self._out_records += 1
            self._lost += 1

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        last_record = time.monotonic()
        try:
            while True:
                if self._queue:
                    try:
                        self._drain()
                    except Exception:
                        self._failures += 1
                        logger.exception("journal writer: unexpected error")
                    last_record = time.monotonic()
                    continue
                if self._closing:
                    break
                now = time.monotonic()
                if now >= self._next_refresh:
                    self._refresh_size()
                if now - last_record < _IDLE_AFTER:
                    time.sleep(_POLL)
                    continue
                # Raise the flag before the last look at the deque: a submit() that
                # appended after that look sees the flag and wakes us.
                self._idle = True
                if not self._queue and not self._closing:
                    self._wake.wait(_REFRESH)
                self._idle = False
                self._wake.clear()
        finally:
            self._seal()

    def _drain(self) -> None:
        frames: list[_Frame] = []
        pending = 0
        while self._queue and len(frames) < _BATCH_RECORDS and pending < _BATCH_BYTES:
            item, request_body, chunks, cost, reason, dropped = self._queue.popleft()
            self._out_bytes += cost
            self._out_records += 1
            if time.monotonic() > self._deadline:
                self._lost += 1
                continue
            try:
                frame = self._frame(item, request_body, chunks, reason, dropped)
            except Exception as exc:
                # Bodies that are not bytes-like: this record only is lost.
                self._failures += 1
                self._log(logging.ERROR, "journal record unwritable: %r", exc)
                frame = None
            if frame is None:
                self._lost += 1
                continue
            length = frame[1]
            if self._segments.size + pending + length > self._segment_bytes and (
                self._segments.size + pending
            ):
                self._flush(frames)
                frames, pending = [], 0
                self._rotate()
            frames.append(frame)
            pending += length
            self._journal_bytes += length
        self._flush(frames)
        if time.monotonic() >= self._next_refresh:
            self._refresh_size()

    def _frame(
        self,
        item: Any,
        request_body: bytes,
        chunks: Sequence[bytes],
        reason: str | None,
        dropped: int,
    ) -> _Frame | None:
        """The record's frame after the journal cap, or None when it must be dropped."""
        meta = self._meta(item, reason, dropped)
        buffers, length = build_frame(meta, request_body, chunks)
        used = self._journal_bytes
        bodies = length - HEADER_SIZE - len(meta)
        if bodies and used + length > self._max_bytes * JOURNAL_FULL_RATIO:
            reason = "journal_full"
            meta = self._meta(item, reason, bodies)
            buffers, length = build_frame(meta, b"", ())
        if used + length > self._max_bytes:
            return None
        return buffers, length, reason is not None

    def _meta(self, item: Any, reason: str | None, dropped: int) -> bytes:
        try:
            meta = self._encode(item)
            if reason is not None:
                meta = {**meta, "bodiesDropped": reason, "bodiesDroppedBytes": dropped}
            return encode_meta(meta)
        except Exception as exc:
            # The record is kept, bodies included: only what encode() would have said is lost.
            self._failures += 1
            self._log(logging.ERROR, "journal encode failed: %r", exc)
            minimal: dict[str, Any] = {"encodeError": f"{type(exc).__name__}: {exc}"[:1000]}
            if reason is not None:
                minimal.update(bodiesDropped=reason, bodiesDroppedBytes=dropped)
            return encode_meta(minimal)

    def _flush(self, frames: list[_Frame]) -> None:
        if not frames:
            return
        total = sum(frame[1] for frame in frames)
        written, error = self._segments.append([b for frame in frames for b in frame[0]])
        kept, complete = 0, 0
        for frame in frames:
            if kept + frame[1] > written:
                break
            kept += frame[1]
            complete += 1
        self._segments.size += kept
        self._records += complete
        self._bodies_dropped += sum(1 for frame in frames[:complete] if frame[2])
        self._bytes_written += kept
        if error is not None:
            self._failures += 1
            self._lost += len(frames) - complete
            self._journal_bytes -= total - kept
            self._log(logging.ERROR, "journal write failed: %s", error)
            if written > kept:
                self._truncate(self._segments.size)

    def _truncate(self, size: int) -> None:
        """Cut a partly written frame away, or else leave it behind in a finished segment."""
        error = self._segments.truncate(size)
        if error is not None:
            self._log(logging.ERROR, "journal truncate failed: %s", error)
            self._segments.size = size
            self._rotate()

    def _rotate(self) -> None:
        self._segments.rotate()
        self._refresh_size()

    def _segment_failed(self, what: str, error: OSError) -> None:
        self._failures += 1
        self._log(logging.ERROR, "journal %s failed: %s", what, error)

    def _seal(self) -> None:
        """fsync and close the current segment, then let the recorder see the owner gone."""
        self._discard_queue()
        self._segments.seal()

    def _refresh_size(self) -> None:
        """Re-read what our segments weigh: the recorder deletes consumed ones."""
        self._next_refresh = time.monotonic() + _REFRESH
        self._journal_bytes = directory_bytes(self.path, segments_only=True)
