"""The segment files of one journal owner (`<directory>/<owner>/`), for the writer
thread of `recording.journal_writer`: the owner's lock, appends to the current
segment, rotation, cutting a torn write away, and the seal at close (fsync of the
segment and the directory, then the lock released so the recorder sees the owner
gone). Errors are handed to the writer, which counts and logs them: a disk error
never stops the thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recording.journal_files import acquire_lock, list_segments, write_all
from recording.journal_format import LOCK_NAME, segment_name

# What failed and why: ("close", exc), ("fsync", exc).
ErrorSink = Callable[[str, OSError], None]


class OwnerSegments:
    """Not thread-safe: used by the writer thread only (and `start()` before it)."""

    def __init__(self, path: Path, failed: ErrorSink) -> None:
        self.path = path
        self.number = 0  # the current segment's
        self.size = 0  # bytes in the current segment
        self._fd = -1
        self._lock_fd = -1
        self._failed = failed

    def claim(self) -> None:
        """Take the owner's lock and go on after its newest segment."""
        self._lock_fd = acquire_lock(self.path / LOCK_NAME)
        self.number = max(list_segments(self.path), default=0) + 1

    def append(self, buffers: Sequence[Any]) -> tuple[int, OSError | None]:
        """Append to the current segment: (bytes written, the error that stopped it)."""
        try:
            fd = self._open()
        except OSError as exc:
            return 0, exc
        return write_all(fd, list(buffers))

    def truncate(self, size: int) -> OSError | None:
        """Cut the current segment back to `size` (a partly written frame away)."""
        try:
            os.ftruncate(self._fd, size)
        except OSError as exc:
            return exc
        return None

    def rotate(self) -> None:
        self.close_segment()
        self.number += 1
        self.size = 0

    def close_segment(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.close(fd)
            except OSError as exc:
                self._failed("close", exc)

    def seal(self) -> None:
        """fsync and close the current segment, then release the owner's lock."""
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
                dir_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            except OSError as exc:
                self._failed("fsync", exc)
        self.close_segment()
        if self._lock_fd >= 0:
            fd, self._lock_fd = self._lock_fd, -1
            os.close(fd)

    def _open(self) -> int:
        if self._fd < 0:
            path = self.path / segment_name(self.number)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
            self._fd = os.open(path, flags, 0o644)
            self.size = os.fstat(self._fd).st_size
        return self._fd
