"""The recorder's checkpoint: how far each worker's journal is stored, and the
batch in progress, so a restarted recorder redoes exactly that batch.

A batch is written down (its number, owner and journal range) before anything
of it reaches MongoDB, and cleared once all of it did. A recorder that dies in
between finds it here and stores the same records again under the same batch
number: inserts of records already there are duplicates, and the derived
collections skip a batch number they already counted (stats.derived_writer).
The file is replaced atomically (write, fsync, rename).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recording.journal import Position


@dataclass(frozen=True, slots=True)
class Pending:
    seq: int
    owner: str
    start: Position
    end: Position


@dataclass(slots=True)
class Checkpoint:
    path: Path
    # A stable id for this pod's recorder (its journal directory's), used to tag
    # its batches in the derived collections: hex, never '.' or '$'.
    recorder: str = field(default_factory=lambda: secrets.token_hex(8))
    seq: int = 0  # the last batch fully stored
    done: dict[str, Position] = field(default_factory=dict)
    pending: Pending | None = None
    starts: int = 0  # how many times a recorder started on this journal

    @classmethod
    def load(cls, path: str | Path) -> Checkpoint:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        pending = raw.get("pending")
        return cls(
            path,
            recorder=raw["recorder"],
            seq=raw["seq"],
            done={owner: Position(*pos) for owner, pos in raw.get("done", {}).items()},
            pending=(
                Pending(
                    pending["seq"],
                    pending["owner"],
                    Position(*pending["start"]),
                    Position(*pending["end"]),
                )
                if pending
                else None
            ),
            starts=raw.get("starts", 0),
        )

    def save(self) -> None:
        data: dict[str, Any] = {
            "recorder": self.recorder,
            "seq": self.seq,
            "done": {owner: [p.segment, p.offset] for owner, p in self.done.items()},
            "pending": (
                {
                    "seq": self.pending.seq,
                    "owner": self.pending.owner,
                    "start": [self.pending.start.segment, self.pending.start.offset],
                    "end": [self.pending.end.segment, self.pending.end.offset],
                }
                if self.pending
                else None
            ),
            "starts": self.starts,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def begin(self, owner: str, start: Position, end: Position) -> Pending:
        self.pending = Pending(self.seq + 1, owner, start, end)
        self.save()
        return self.pending

    def commit(self) -> None:
        assert self.pending is not None
        self.seq = self.pending.seq
        self.done[self.pending.owner] = self.pending.end
        self.pending = None
        self.save()

    def forget(self, owners: set[str]) -> None:
        """Drop owners whose journals are gone (fully stored and removed)."""
        for owner in list(self.done):
            if owner not in owners:
                del self.done[owner]
