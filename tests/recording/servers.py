"""Real processes for the failure tests: a private SecantusDB server per test,
the proxy, and a look at its recorder and workers from outside.

The server is started exactly like the session's (tests/conftest.py
`mongo_uri`), with the embedded database's flags, but owned by one test: the
failure tests freeze, stop and restart it, which a shared server (or a real
MongoDB) must never suffer.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from recording.checkpoint import Checkpoint
from recording.journal import JournalReader, Position
from recording.paths import RecorderPaths
from recording.status import read_status
from storage.embedded import BINARY, SERVER_FLAGS, server_env
from tests.conftest import ProxyProcess, free_port, start_proxy, wait_http

START_TIMEOUT = 30.0
# Three Python processes importing the app on a shared CI machine can take
# longer than start_proxy's 20 s.
PROXY_START_TIMEOUT = 60.0


@dataclass
class SecantusServer:
    proc: subprocess.Popen[bytes]
    port: int
    storage: Path
    log_path: Path

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def sigstop(self) -> None:
        """Freeze it: connections stay open and accepted, nothing is answered."""
        self.proc.send_signal(signal.SIGSTOP)

    def sigcont(self) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (after SIGCONT: a frozen process cannot act on it), SIGKILL
        after `timeout`. Idempotent."""
        if not self.running():
            return
        self.sigcont()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: for a server whose data nobody needs any more."""
        if self.running():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def binary() -> Path:
    """The server next to this interpreter; its absence is an error, never a skip."""
    path = Path(sys.executable).parent / BINARY
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: install the dev extra (make .venv/.dev-installed)"
        )
    return path


def start_secantus(tmp: Path, port: int | None = None) -> SecantusServer:
    """A server on `port` (a free one by default) keeping its data in
    `tmp/secantus-db`: starting again with the same `tmp` and port brings the
    same database back."""
    port = port or free_port()
    storage = tmp / "secantus-db"
    storage.mkdir(parents=True, exist_ok=True)
    log_path = tmp / "secantus.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [
                str(binary()),
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
            # Its own group: signals meant for it never reach pytest, and a kill
            # of the group takes only the server.
            start_new_session=True,
        )
    server = SecantusServer(proc, port, storage, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not server.running():
            raise RuntimeError(f"SecantusDB exited with {proc.returncode}:\n{server.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"SecantusDB did not listen on {port} within {START_TIMEOUT:g}s")


# ---- the proxy and its recorder ----------------------------------------------------
def launch(tmp: Path, env: dict[str, str]) -> ProxyProcess:
    """start_proxy, with more patience (PROXY_START_TIMEOUT), and until EVERY
    worker is ready: the port answers as soon as the first one is, and a
    SIGTERM before Sanic's manager saw all of them acknowledge leaves it
    waiting 30 s, then killing the whole process group."""
    deadline = time.monotonic() + PROXY_START_TIMEOUT
    proxy = start_proxy(tmp, env, wait=False)
    workers = int(env.get("SANIC_WORKERS", "1"))
    try:
        wait_http(proxy.port, timeout=PROXY_START_TIMEOUT)
        while proxy.log().count("Worker ready [") < workers:
            if time.monotonic() > deadline:
                raise TimeoutError
            time.sleep(0.05)
    except TimeoutError:
        proxy.stop()
        raise AssertionError(f"proxy did not start:\n{proxy.log()}") from None
    # As start_proxy: the manager polls for the acknowledgements every 0.1 s.
    time.sleep(0.3)
    return proxy


def is_recorder(pid: int) -> bool:
    try:
        return b"recording" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


async def recorder_pid(data_dir: Path, *, other_than: int | None, within: float = 30.0) -> int:
    """The running recorder's pid, once it is not `other_than` (a restart)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status = read_status(RecorderPaths(data_dir).status) or {}
        pid = status.get("pid")
        if isinstance(pid, int) and pid != other_than and is_recorder(pid):
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError(f"no recorder other than {other_than} within {within:g}s")


async def kill_recorder(data_dir: Path, times: int, rng: random.Random) -> int:
    """SIGKILL the recorder `times` times at random moments, each time once it
    has a batch in progress if it gets one within a second (written down in the
    checkpoint, maybe half stored), and after the supervisor restarted it.
    Returns how many kills landed while the checkpoint showed a pending batch."""
    checkpoint = RecorderPaths(data_dir).checkpoint
    mid_batch = 0
    pid = await recorder_pid(data_dir, other_than=None)
    for _ in range(times):
        await asyncio.sleep(rng.uniform(0.2, 1.0))
        deadline = time.monotonic() + 1.0
        while Checkpoint.load(checkpoint).pending is None and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        mid_batch += Checkpoint.load(checkpoint).pending is not None
        assert is_recorder(pid)
        os.kill(pid, signal.SIGKILL)
        pid = await recorder_pid(data_dir, other_than=pid)
    return mid_batch


def sigterm_pending(pid: int) -> bool:
    """A SIGTERM sent to the (stopped) process and not delivered yet."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(
        int(line.split()[1], 16) for line in status.splitlines() if line.startswith("ShdPnd")
    )
    return bool(mask & (1 << (signal.SIGTERM - 1)))


def live_workers(proxy: ProxyProcess) -> list[int]:
    """The proxy's worker processes (Sanic logs their pids) not yet exited."""
    pids = [int(pid) for pid in re.findall(r"Starting worker \[(\d+)\]", proxy.log())]
    assert pids, "no worker pid in the proxy's log"
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def wait_exit(proxy: ProxyProcess, timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    try:
        code = proxy.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"proxy still running {timeout:g}s after SIGTERM") from None
    return code, time.monotonic() - started


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        async with http.get(url) as resp:
            assert resp.status == 200, (url, resp.status)
            return await resp.json()


async def wait_writer(
    proxy: ProxyProcess, ok: Callable[[dict[str, Any]], bool], within: float, what: str
) -> dict[str, Any]:
    """Polls `/livez` until its `writer` satisfies `ok` (looks at least once)."""
    deadline = time.monotonic() + within
    while True:
        writer = (await get_json(f"{proxy.url}/livez"))["writer"] or {}
        if ok(writer):
            return writer
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.2)
    raise AssertionError(f"/livez never showed {what} within {within:g}s: {writer}")


def journal_ids(data_dir: Path) -> set[str]:
    """Request ids the journal still holds beyond what the checkpoint says is stored."""
    paths = RecorderPaths(data_dir)
    done = Checkpoint.load(paths.checkpoint).done
    reader = JournalReader(paths.journal)
    return {
        record.meta["request_id"]
        for owner in reader.owners()
        for record in reader.read(
            owner, done.get(owner, Position(0, 0)), max_records=1 << 20, max_bytes=1 << 40
        )
    }
