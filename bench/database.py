"""The development database (SecantusDB) as a throwaway server for benchmarks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from storage.embedded import SERVER_FLAGS, server_env


def start_database(storage: str, port: int) -> subprocess.Popen[bytes]:
    """`secantusd-py` on loopback, data under `storage`; ready ~3 s later."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "secantusd-py"),
            "--port",
            str(port),
            "--storage-path",
            storage,
            "--log-level",
            "WARNING",
            # Sized as under `make run`, so the benches measure the same database.
            *SERVER_FLAGS,
        ],
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
