"""Append-only local journal: where request records wait while MongoDB can't take them.

One file at a time per writer (`journal-<owner>-<n>.jsonl`), one record per line:
`<crc32 hex> <extended JSON>\n`. A torn last line (a crash mid-write) fails its
checksum and is skipped. Each append is flushed and fsynced, so a record the
writer has journaled survives a crash of the process or the machine.

A file is deleted only after every record in it is confirmed in MongoDB; replay
is idempotent because documents carry a unique `_id` (the request id).
Replay takes this writer's sealed files and files whose owner is gone (previous
runs, crashed workers), never a live sibling's. An owner is "gone" when nobody
holds its lock file (`owner-<owner>.lock`, flock'ed for the writer's lifetime):
unlike a PID, that stays correct when a restarted container reuses PIDs.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bson import json_util

logger = logging.getLogger("proxy.journal")

_NAME = re.compile(r"^journal-([0-9a-f]+)-(\d+)\.jsonl$")
_JSON_OPTIONS = json_util.CANONICAL_JSON_OPTIONS


def encode_line(document: dict[str, Any]) -> bytes:
    payload = json_util.dumps(document, json_options=_JSON_OPTIONS).encode("utf-8")
    return b"%08x %b\n" % (zlib.crc32(payload), payload)


def decode_line(line: bytes) -> dict[str, Any] | None:
    if not line.endswith(b"\n") or len(line) < 10 or line[8:9] != b" ":
        return None
    payload = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(payload):
            return None
        return json_util.loads(payload, json_options=_JSON_OPTIONS)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class JournalFile:
    path: Path
    owner: str
    seq: int


class Journal:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.owner = secrets.token_hex(6)
        self._lock = (self.directory / f"owner-{self.owner}.lock").open("wb")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._seq = 1
        self._file: Any = None
        # append/seal/close run in worker threads (the writer's and its spill's).
        self._mutex = threading.Lock()

    def _path(self) -> Path:
        return self.directory / f"journal-{self.owner}-{self._seq}.jsonl"

    def append(self, documents: list[dict[str, Any]]) -> None:
        """Durably append documents (blocking: called off the request path)."""
        if not documents:
            return
        data = b"".join(encode_line(d) for d in documents)
        with self._mutex:
            if self._file is None:
                self._file = self._path().open("ab")
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())

    def seal(self) -> None:
        """Close the current file so it can be replayed; new records go to a new one."""
        with self._mutex:
            if self._file is not None:
                self._file.close()
                self._file = None
                self._seq += 1

    def files(self) -> list[JournalFile]:
        found = []
        for path in self.directory.iterdir():
            match = _NAME.match(path.name)
            if match:
                found.append(JournalFile(path, match.group(1), int(match.group(2))))
        return sorted(found, key=lambda f: (f.path.stat().st_mtime, f.owner, f.seq))

    def replayable(self) -> list[JournalFile]:
        current = self._path() if self._file is not None else None
        gone: dict[str, bool] = {}
        out = []
        for f in self.files():
            if f.path == current:
                continue
            if f.owner != self.owner and f.owner not in gone:
                gone[f.owner] = _owner_gone(self.directory, f.owner)
            if f.owner == self.owner or gone[f.owner]:
                out.append(f)
        return out

    @staticmethod
    def read(file: JournalFile) -> Iterator[dict[str, Any]]:
        with file.path.open("rb") as handle:
            for number, line in enumerate(handle, 1):
                document = decode_line(line)
                if document is None:
                    logger.warning("skipping torn or corrupt line %d of %s", number, file.path)
                    continue
                yield document

    def size(self) -> tuple[int, int]:
        """(bytes, files) waiting in the journal."""
        files = self.files()
        return sum(f.path.stat().st_size for f in files if f.path.exists()), len(files)

    def forget_gone_owners(self) -> None:
        """Remove the lock files of exited writers whose records are all replayed."""
        owners_with_files = {f.owner for f in self.files()}
        for lock in self.directory.glob("owner-*.lock"):
            owner = lock.name[len("owner-") : -len(".lock")]
            if owner != self.owner and owner not in owners_with_files:
                if _owner_gone(self.directory, owner):
                    lock.unlink(missing_ok=True)

    def close(self) -> None:
        with self._mutex:
            if self._file is not None:
                self._file.close()
                self._file = None
        if not any(f.owner == self.owner for f in self.files()):
            (self.directory / f"owner-{self.owner}.lock").unlink(missing_ok=True)
        self._lock.close()  # releases the flock


def _owner_gone(directory: Path, owner: str) -> bool:
    """Nobody holds the owner's lock: its writer exited or crashed."""
    path = directory / f"owner-{owner}.lock"
    try:
        handle = path.open("ab")
    except OSError:
        return True
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return True
