"""The recorder's state, published for the workers' `/livez` as a small JSON file.

The recorder is a process of its own; a file replaced atomically about once a
second is the simplest channel a worker can read without waiting on anything.
The journal's size on disk is measured where it is needed (`journal_disk_bytes`):
a reading a killed recorder left behind would go stale.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from recording.journal_files import directory_bytes
from recording.journal_format import valid_owner

# A status older than this means the recorder is not running (or is stuck).
STALE_SECONDS = 10.0


def write_status(path: str | Path, status: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps({**status, "pid": os.getpid(), "at": time.time()}))
    os.replace(temporary, path)


def read_status(path: str | Path) -> dict[str, Any] | None:
    """The recorder's last status with `running` (fresh enough), or None if never written."""
    try:
        status = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict):
        return None
    at = status.get("at")
    status["running"] = isinstance(at, int | float) and time.time() - at < STALE_SECONDS
    return status


def journal_disk_bytes(journal_dir: str | Path) -> int:
    """Bytes of every owner's journal files: the pod's whole journal, the same
    figure the recorder publishes as `journal_bytes` (JournalReader.size)."""
    try:
        with os.scandir(journal_dir) as entries:
            owners = [
                Path(e.path)
                for e in entries
                if valid_owner(e.name) and e.is_dir(follow_symlinks=False)
            ]
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return sum(directory_bytes(owner, segments_only=False) for owner in owners)
