"""File-level helpers shared by the journal's writer and reader: locks, listings, I/O."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import Any

from recording.journal_format import segment_number

_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024


class JournalBusyError(RuntimeError):
    """Another live process holds the owner's lock."""


class RateLimitedLog:
    """At most one message a second: a full or failing disk must not flood the log."""

    def __init__(self, logger: logging.Logger, every: float = 1.0) -> None:
        self._logger = logger
        self._every = every
        self._last = float("-inf")

    def __call__(self, level: int, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            self._logger.log(level, message, *args)


def write_all(fd: int, buffers: list[Any]) -> tuple[int, OSError | None]:
    """os.writev until every buffer is written; the bytes written and the error, if any."""
    written = 0
    pending = buffers
    while pending:
        try:
            n = os.writev(fd, pending[:_IOV_MAX])
        except OSError as exc:
            return written, exc
        if n == 0:
            return written, OSError(errno.EIO, "writev wrote nothing")
        written += n
        done = 0
        while done < len(pending) and n >= len(pending[done]):
            n -= len(pending[done])
            done += 1
        pending = pending[done:]
        if n:
            pending[0] = memoryview(pending[0])[n:]
    return written, None


def pread_exact(fd: int, length: int, offset: int) -> bytes | None:
    """`length` bytes at `offset`, or None when the file ends first."""
    if length == 0:
        return b""
    data = os.pread(fd, length, offset)
    if len(data) == length:
        return data
    # Short reads happen past 2 GiB (Linux caps one read) and at EOF.
    parts = [data]
    got = len(data)
    while got < length:
        more = os.pread(fd, length - got, offset + got)
        if not more:
            return None
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def acquire_lock(lock_path: Path, wait: float = 2.0) -> int:
    """flock the owner's lock file for good; its fd (closing it releases the lock)."""
    deadline = time.monotonic() + wait
    while True:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            continue  # the reader removed a gone owner's directory meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            # A reader's is_gone() holds it for a moment; a live writer holds it for good.
            if time.monotonic() > deadline:
                raise JournalBusyError(f"{lock_path} is held by a live process") from None
            time.sleep(0.01)
            continue
        if _same_file(fd, lock_path):
            return fd
        # A reader unlinked this lock file with the directory: lock the new one.
        os.close(fd)


def lock_is_free(lock_path: Path) -> bool:
    """True when no process holds the lock (or there is no lock file at all)."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def hold_if_free(lock_path: Path) -> int | None:
    """The lock held exclusively (an fd), or None when it is busy or has no file.

    No file means the owner is being created (the writer makes its directory, then
    its lock file): its directory must not be removed then.
    """
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        held = os.fstat(fd)
        current = os.stat(path)
    except FileNotFoundError:
        return False
    return (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)


def list_segments(owner_dir: Path) -> list[int]:
    """The owner's segment numbers, ascending; [] when the directory is gone."""
    try:
        names = os.listdir(owner_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n for n in map(segment_number, names) if n is not None)


def directory_bytes(owner_dir: Path, *, segments_only: bool) -> int:
    """Bytes of the files in one owner's directory (files may vanish meanwhile)."""
    total = 0
    try:
        with os.scandir(owner_dir) as entries:
            for entry in entries:
                if segments_only and segment_number(entry.name) is None:
                    continue
                try:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    pass
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return total


def unlink_size(path: Path) -> int:
    """Delete a file; its size, 0 when it was already gone."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size
