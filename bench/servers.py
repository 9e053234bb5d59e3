"""The processes a benchmark drives: the fake upstream and `python app.py` proxies,
with the request log off or on (then with its embedded development database and
recorder, as under `make run`), and what /proc says about them.

Every server runs in its own session, so stopping one never signals this process;
the proxy's recorder and embedded database start sessions of their own, so a
proxy's processes are found as its process tree, not its process group.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent

# Variables of the caller's shell that would change what is measured: a real
# MongoDB instead of the embedded one, another upstream, more workers.
_INHERITED_OUT = ("MONGODB_URI", "PROXY_EMBEDDED_MONGODB_URI", "SANIC_", "ANTHROPIC_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_ready(url: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as resp:
                    if resp.status in (200, 404):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


async def wait_listening(port: int, within: float) -> float:
    """Seconds until something accepts connections on `port`: the development
    database opens a large store slowly (~80 s for the 1M-request one)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        writer.close()
        await writer.wait_closed()
        return time.monotonic() - started
    raise TimeoutError(f"nothing listened on port {port} within {within:g}s")


def stop_on_sigterm() -> None:
    """SIGTERM (`timeout`, a CI runner) acts as Ctrl-C, so the benchmark's finally
    blocks stop the servers it started in sessions of their own."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


# ---- /proc -----------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (sessions of their own included)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children(current)
    return tree


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def worker_pid(manager_pid: int) -> int:
    """The serving worker: the proxy always runs under Sanic's process manager."""
    for child in children(manager_pid):
        line = cmdline(child)
        if b"multiprocessing.spawn" in line and b"resource_tracker" not in line:
            if b"Server" in Path(f"/proc/{child}/environ").read_bytes():
                return child
    raise RuntimeError("no worker process found")


def database_pid(manager_pid: int) -> int | None:
    """The embedded development database started by the proxy's main process."""
    for child in children(manager_pid):
        if b"secantusd" in cmdline(child):
            return child
    return None


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and every descendant, as a kubelet kills a pod's container:
    the recorder and the embedded database run in sessions of their own, which a
    process-group kill would miss."""
    for member in process_tree(pid):
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---- servers ---------------------------------------------------------------------


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM (the proxy then stops its workers, recorder and database in order);
    whatever of its tree is left after `timeout` is killed."""
    tree = process_tree(proc.pid)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in tree[1:]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class Proxy:
    proc: subprocess.Popen[bytes]
    url: str
    log_on: bool
    data_dir: Path
    log_path: Path
    # Proxied requests sent to it, for "every one is stored" (written == sent).
    sent: int = 0

    @property
    def worker(self) -> int:
        return worker_pid(self.proc.pid)

    async def livez(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(self.url + "/livez") as resp:
            return await resp.json()

    def tree_rss_mb(self) -> dict[str, float]:
        """Resident memory of the whole `make run` tree, per role and in total."""
        main = self.proc.pid
        worker = self.worker
        database = database_pid(main)
        parts: dict[str, float] = {"total": 0.0}
        for pid in process_tree(main):
            if pid == main:
                role = "main"
            elif pid == worker:
                role = "worker"
            elif pid == database:
                role = "database"
            elif b"-m\0recording" in cmdline(pid):
                role = "recorder"
            else:
                role = "other"
            size = rss_mb(pid)
            parts[role] = parts.get(role, 0.0) + size
            parts["total"] += size
        return parts

    def stop(self, timeout: float = 60) -> None:
        _stop(self.proc, timeout)
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class Upstream:
    proc: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        _stop(self.proc, 10)


def spawn_upstream() -> Upstream:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_upstream", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return Upstream(proc, f"http://127.0.0.1:{port}")


def spawn_proxy(
    upstream_url: str, *, log_on: bool, extra_env: dict[str, str] | None = None
) -> Proxy:
    """One worker; with the log on, its own temporary DATA_DIR (journal, recorder
    state, the embedded database) that stop() deletes."""
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_OUT)}
    env.update(
        {
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "ANTHROPIC_FORWARD_URL": upstream_url,
            "SANIC_WORKERS": "1",
            "LOG_LEVEL": "WARNING",
            "REQUEST_LOG": "true" if log_on else "false",
            "DATA_DIR": str(data_dir),
            **(extra_env or {}),
        }
    )
    log_path = data_dir / "proxy.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Proxy(proc, f"http://127.0.0.1:{port}", log_on, data_dir, log_path)


@dataclass
class Servers:
    upstream: Upstream
    proxies: dict[str, Proxy] = field(default_factory=dict)

    def stop(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
        self.upstream.stop()


async def start_servers(**proxies: bool) -> Servers:
    """The fake upstream and one proxy per keyword (name=log_on), all ready."""
    servers = Servers(spawn_upstream())
    try:
        for name, log_on in proxies.items():
            servers.proxies[name] = spawn_proxy(servers.upstream.url, log_on=log_on)
        await wait_ready(servers.upstream.url + "/v1/models")
        for proxy in servers.proxies.values():
            await wait_ready(proxy.url + "/livez", within=90)
        # Sanic's manager notices a worker's start-up acknowledgement by polling
        # every 0.1 s; stopping it before then leaves it waiting ~30 s.
        await asyncio.sleep(0.5)
    except BaseException:
        servers.stop()
        raise
    return servers


async def recorded(proxy: Proxy, within: float = 600) -> dict[str, Any]:
    """Wait until the recorder has stored every request sent to `proxy`; returns
    the recorder's status at that moment (its `at` is when the recorder saw it so,
    within its ~1 s publishing period), with the worker's `lost` and
    `bodies_dropped`.

    Not "journal_bytes == 0": that is the journal's size on disk, and the segment a
    live worker is still appending to is deleted only once it is finished (rotated
    at JOURNAL_SEGMENT_BYTES), stored or not.
    """
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while True:
            writer = (await proxy.livez(http))["writer"]
            recorder = writer.get("recorder") or {}
            # Lost and quarantined records count as handled (and are reported):
            # waiting for them would never end.
            handled = (writer["written"] or 0) + writer["lost"] + (writer["quarantined"] or 0)
            if (
                writer["queue_depth"] == 0
                and handled >= proxy.sent
                and recorder.get("pending_batch") is None
                # Journal bytes not yet stored, where /livez reports them.
                and not writer.get("backlog_bytes")
            ):
                return {
                    **recorder,
                    "lost": writer["lost"],
                    "bodies_dropped": writer["bodies_dropped"],
                }
            if time.monotonic() > deadline:
                raise TimeoutError(f"recorder not caught up: {writer} (sent {proxy.sent})")
            await asyncio.sleep(0.05)
