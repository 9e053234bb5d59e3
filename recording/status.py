"""The recorder's state, published for the workers' `/livez` as a small JSON file.

The recorder is a process of its own; a file replaced atomically about once a
second is the simplest channel a worker can read without waiting on anything.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

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
