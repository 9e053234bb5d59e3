"""Where recording keeps its files under DATA_DIR (one place, for every process)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RecorderPaths:
    data_dir: str | Path

    @property
    def journal(self) -> Path:
        return Path(self.data_dir) / "journal"

    @property
    def quarantine(self) -> Path:
        return Path(self.data_dir) / "quarantine"

    @property
    def checkpoint(self) -> Path:
        return Path(self.data_dir) / "recorder" / "checkpoint.json"

    @property
    def status(self) -> Path:
        return Path(self.data_dir) / "recorder" / "status.json"

    @property
    def lock(self) -> Path:
        return Path(self.data_dir) / "recorder" / "recorder.lock"
