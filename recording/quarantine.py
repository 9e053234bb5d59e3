"""Records MongoDB refused: kept on disk, counted, never blocking the records after them.

One JSON line per record (MongoDB extended JSON, so a person or a script can
still read and re-import it), in `DATA_DIR/quarantine/`, up to
QUARANTINE_MAX_BYTES; past the cap a refused record is only counted.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson import json_util

logger = logging.getLogger("proxy.recorder")


class Quarantine:
    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.kept = 0
        self.dropped = 0

    def size(self) -> int:
        try:
            return sum(p.stat().st_size for p in self.directory.glob("*.jsonl"))
        except OSError:
            return 0

    def put(self, document: dict[str, Any], reason: str) -> None:
        line = _line(document, reason)
        if self.size() + len(line) > self.max_bytes:
            self.dropped += 1
            logger.error(
                "record %s refused (%s) and the quarantine is full: dropped",
                document.get("_id"),
                reason,
            )
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"quarantine-{datetime.now(UTC):%Y%m%d}.jsonl"
            with (self.directory / name).open("ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            self.dropped += 1
            logger.error("could not quarantine record %s: %s", document.get("_id"), exc)
            return
        self.kept += 1
        logger.error("record %s refused by MongoDB (%s): quarantined", document.get("_id"), reason)


def _line(document: dict[str, Any], reason: str) -> bytes:
    entry = {"reason": reason[:1000], "at": datetime.now(UTC), "document": document}
    try:
        text = json_util.dumps(entry, json_options=json_util.CANONICAL_JSON_OPTIONS)
    except Exception as exc:  # not even JSON: keep what identifies it
        text = json_util.dumps(
            {"reason": reason[:1000], "id": str(document.get("_id")), "encodeError": str(exc)}
        )
    return text.encode("utf-8", "replace") + b"\n"
