"""Shared fixtures: a fake upstream on a real socket and the proxy as a real process."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sanic import Sanic

from storage.embedded import SERVER_FLAGS, server_env
from tests.fake_upstream import FakeUpstream

Sanic.test_mode = True  # tests create many apps with the same name

ROOT = Path(__file__).resolve().parent.parent


# A server a test starts is given a port by free_port() and binds it a moment later, in
# another process. Under pytest-xdist two workers must never be handed the same port in
# that gap (nor one another worker counts on staying closed), so each worker draws from
# its own slice of a range below the kernel's ephemeral ports (32768+ on Linux, where
# bind(0) and outgoing connections take theirs) and below MongoDB's 27017, in shuffled
# order: a port comes round again only after the rest of its slice.
PORT_RANGE = (20000, 27000)
_ports: list[int] = []
_ports_lock = threading.Lock()


def _port_slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw2"; unset without xdist
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1), index + 1)
    low, high = PORT_RANGE
    size = (high - low) // count
    return range(low + index * size, low + (index + 1) * size)


def free_port() -> int:
    """A port nothing listens on now, not handed out lately by this process, and never
    handed out by another xdist worker of this run."""
    with _ports_lock:
        candidates = _port_slice()
        for _ in range(2 * len(candidates)):
            if not _ports:
                _ports.extend(random.sample(candidates, len(candidates)))
            port = _ports.pop()
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue  # in use (or lingering): the next one
            return port
    raise RuntimeError(f"no free port in {candidates}")


def wait_http(
    port: int,
    path: str = "/livez",
    timeout: float = 20.0,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Until GET `path` on `port` answers 200; with `proc`, give up as soon as it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise TimeoutError(f"the server exited ({proc.returncode}) before answering")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                if sock.recv(16).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"nothing answered on port {port} within {timeout}s")


@dataclass
class ProxyProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                # The whole group: workers and helper processes must not outlive a test.
                os.killpg(self.proc.pid, signal.SIGKILL)
                return self.proc.wait()
        return self.proc.returncode


def start_proxy(tmp: Path, env: dict[str, str] | None = None, *, wait: bool = True) -> ProxyProcess:
    """`python app.py` as a user would start it, configured by environment only.
    Started again on another port if its port was taken before it could bind it."""
    for attempt in range(1, 4):
        port = free_port()
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SANIC_"))
        }
        full_env.update(
            {
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "PYTHONUNBUFFERED": "1",
                # Its own database, also when MONGODB_URI points at a shared real MongoDB.
                "MONGODB_DATABASE": f"proxy_test_{port}",
            }
        )
        full_env.update(env or {})
        log_path = tmp / f"proxy-{port}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "app.py")],
                cwd=tmp,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: Sanic's manager kills its whole group when a
                # second signal interrupts a shutdown, which must not take pytest along.
                start_new_session=True,
            )
        handle = ProxyProcess(proc, port, log_path)
        if not wait:
            return handle
        try:
            # Generous: a start-up beside parallel test workers can be slow.
            wait_http(port, timeout=60, proc=proc)
        except TimeoutError:
            handle.stop()
            if attempt < 3 and "Address already in use" in handle.log():
                continue
            raise AssertionError(f"proxy did not start:\n{handle.log()}") from None
        # Sanic's manager notices a worker's start-up acknowledgement by polling every
        # 0.1 s; a signal that lands before it did leaves the manager waiting ~30 s.
        time.sleep(0.3)
        return handle
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MongoDB-protocol server over TCP: $MONGODB_URI when set (a real MongoDB),
    else a SecantusDB server started for the session as its own process."""
    external = os.environ.get("MONGODB_URI")
    if external:
        yield external
        return
    storage = tmp_path_factory.mktemp("secantus")
    for attempt in range(1, 4):  # again on another port if its port was taken meanwhile
        port = free_port()
        log_path = storage / f"server-{port}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "secantusd-py"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--storage-path",
                    str(storage / "db"),
                    "--log-level",
                    "WARNING",
                    # The embedded database's memory caps: the session's server lives as
                    # long as the whole run and would otherwise keep everything it wrote.
                    *SERVER_FLAGS,
                ],
                env=server_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            proc.kill()
            proc.wait()
            if attempt < 3 and "in use" in log_path.read_text(errors="replace"):
                continue
            raise RuntimeError(f"SecantusDB did not start:\n{log_path.read_text()}")
        break
    yield f"mongodb://127.0.0.1:{port}"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def database_name(request: pytest.FixtureRequest) -> str:
    """A database per test, so tests never see each other's data (also on a real MongoDB)."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
    return f"test_{digest}_{os.getpid()}"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for the test; modules that compare raw bytes define their
    own with `auto_decompress=False`."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
def upstream() -> FakeUpstream:
    fake = FakeUpstream()
    fake.start_in_thread()
    return fake


@pytest.fixture(scope="session")
def proxy(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    """One proxy process for the session, pointed at the fake upstream."""
    handle = start_proxy(
        tmp_path_factory.mktemp("proxy"),
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "UPSTREAM_READ_IDLE_TIMEOUT": "3",
            "ANTHROPIC_RESPONSE_HEADER_TIMEOUT": "2",
        },
    )
    yield handle
    handle.stop()


@pytest.fixture
def fresh_upstream(upstream: FakeUpstream) -> FakeUpstream:
    upstream.reset()
    return upstream


async def wait_recorded(
    http: aiohttp.ClientSession, proxy: ProxyProcess, count: int, within: float = 30.0
) -> None:
    """Until the recorder has stored `count` records and counted them into the
    rollups and summaries (its status, shown by `/livez`, says so after a batch
    is wholly stored; the documents alone appear a moment earlier)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with http.get(f"{proxy.url}/livez") as resp:
            writer = (await resp.json()).get("writer") or {}
        recorder = writer.get("recorder") or {}
        if (writer.get("written") or 0) >= count and recorder.get("pending_batch") is None:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the recorder did not store {count} records within {within}s")
