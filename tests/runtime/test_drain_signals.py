"""The drain log names the signal the operator sent, although Sanic's main process
relays SIGTERM to its workers as SIGINT."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runtime import drain
from runtime.drain import begin_drain, remember_drain_signal, signal_description
from runtime.state import LiveState
from tests.conftest import ROOT, ProxyProcess, free_port, wait_http
from tests.fake_upstream import FakeUpstream

# Serial (make test's second phase): signals real servers during start-up, within milliseconds.
pytestmark = pytest.mark.serial

DRAINING = "draining, 0 in flight"


class FakeApp:
    def __init__(self, relayed: int | None) -> None:
        self.ctx = SimpleNamespace()
        self.shared_ctx = SimpleNamespace()
        if relayed is not None:
            self.shared_ctx.drain_signal = SimpleNamespace(value=relayed)
        self.stops: list[bool] = []

    def stop(self, terminate: bool = True) -> None:
        self.stops.append(terminate)


@pytest.mark.parametrize(
    ("relayed", "received", "said"),
    [
        (signal.SIGTERM, signal.SIGINT, "SIGTERM received by the main process, relayed as SIGINT"),
        (signal.SIGINT, signal.SIGINT, "SIGINT received"),
        (0, signal.SIGINT, "SIGINT received"),  # a worker restart: the main got nothing
        (None, signal.SIGTERM, "SIGTERM received"),  # no relay (the worker alone)
    ],
)
def test_the_description_names_the_original_signal(
    relayed: int | None, received: signal.Signals, said: str
) -> None:
    assert signal_description(FakeApp(relayed), received) == said  # type: ignore[arg-type]


async def test_the_drain_log_line_names_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="proxy.drain")
    app, live = FakeApp(signal.SIGTERM), LiveState()
    begin_drain(app, live, SimpleNamespace(drain_timeout=5), signal.SIGINT)  # type: ignore[arg-type]
    await asyncio.wait_for(app.ctx.drain_task, 5)
    assert caplog.records[0].getMessage() == (
        "SIGTERM received by the main process, relayed as SIGINT: "
        "draining, 0 in flight, up to 5s (DRAIN_TIMEOUT)"
    )
    assert app.stops == [False]


def test_the_main_process_notes_the_first_signal_then_handles_it_as_before() -> None:
    shared: Any = multiprocessing.Value("i", 0, lock=False)
    handled: list[int] = []
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for sig in saved:
            signal.signal(sig, lambda signum, frame: handled.append(signum))
        remember_drain_signal(shared)
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)  # a second signal: Sanic kills; the note stays
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert handled == [signal.SIGTERM, signal.SIGINT]
    assert shared.value == signal.SIGTERM


class FakeManager:
    """What the handler uses of Sanic's worker manager: its signal handler, its
    monitor pipe, whether it is shutting down, whether every worker acknowledged."""

    def __init__(self) -> None:
        self.monitor, self.monitor_publisher = multiprocessing.Pipe(True)
        self._shutting_down = False
        self.acked = False
        self.handled: list[int] = []
        self.asked_from: set[str] = set()

    def _all_workers_ack(self) -> bool:
        self.asked_from.add(threading.current_thread().name)
        return self.acked

    def shutdown_signal(self, signum: int, frame: object) -> None:
        self.handled.append(signum)


def test_the_manager_stops_from_its_monitor_loop_never_inside_the_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handler only starts a thread: the workers' states are read and the
    stop is posted (`__TERMINATE__` on the monitor pipe) outside the signal
    handler, once every worker acknowledged; Sanic's own handler runs only for a
    signal that arrives after its shutdown began (it kills)."""
    monkeypatch.setattr(drain, "_stopper", None)
    manager = FakeManager()
    shared: Any = multiprocessing.Value("i", 0, lock=False)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for sig in saved:
            signal.signal(sig, manager.shutdown_signal)
        remember_drain_signal(shared)
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)  # a repeat before the shutdown began: dropped
        assert not manager.monitor.poll(0.3)  # held back while a worker is starting
        manager.acked = True
        assert manager.monitor.poll(5) and manager.monitor.recv() == "__TERMINATE__"
        assert not manager.monitor.poll(0.3)  # posted once
        assert manager.handled == []
        assert manager.asked_from == {"drain-signal-stop"}  # never the main thread
        manager._shutting_down = True
        signal.raise_signal(signal.SIGINT)
        assert manager.handled == [signal.SIGINT]
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        assert drain._stopper is not None
        drain._stopper.join(5)
    assert shared.value == signal.SIGTERM


def test_ignored_and_default_dispositions_are_kept() -> None:
    child = textwrap.dedent(
        """
        import multiprocessing, signal
        from runtime.drain import remember_drain_signal
        shared = multiprocessing.Value("i", 0, lock=False)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        remember_drain_signal(shared)
        signal.raise_signal(signal.SIGTERM)
        print(shared.value, flush=True)
        signal.raise_signal(signal.SIGINT)
        print("survived SIGINT", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True)
    assert out.stdout == f"{int(signal.SIGTERM)}\n"
    assert out.returncode == -signal.SIGINT


# --------------------------------------------------------------------------- a real server

# The proxy as app.py serves it, with the main-process relay registered (idempotent,
# so this stays right once the composition root registers it itself).
LAUNCHER = """
import sys
sys.path.insert(0, {root!r})
import app as proxy_app
from runtime.drain import register_signal_relay

if proxy_app.app is not None:  # None in Sanic's worker-state manager
    register_signal_relay(proxy_app.app)

if __name__ == "__main__":
    proxy_app.main()
"""


def _launch(tmp: Path, upstream: FakeUpstream) -> ProxyProcess:
    """The proxy with two workers, both its output streams in its log (Sanic's worker
    lines on stdout, the drain lines on stderr), not waited for."""
    launcher = tmp / "launch_proxy.py"
    launcher.write_text(LAUNCHER.format(root=str(ROOT)))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SANIC_"))}
    env.update(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "PYTHONUNBUFFERED": "1",
            "MONGODB_DATABASE": f"proxy_test_{port}",
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "SANIC_WORKERS": "2",
            "REQUEST_LOG": "false",  # the log is not what this is about
        }
    )
    log_path = tmp / "proxy.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(launcher)],
            cwd=tmp,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ProxyProcess(proc, port, log_path)


def _start(tmp: Path, upstream: FakeUpstream) -> ProxyProcess:
    proxy = _launch(tmp, upstream)
    try:
        wait_http(proxy.port, timeout=60)  # generous: a loaded CI machine starts slowly
    except TimeoutError:
        proxy.stop()
        raise AssertionError(f"proxy did not start:\n{proxy.log()}") from None
    # See start_proxy: a signal before the manager saw the workers' acks stalls it.
    asyncio.run(asyncio.sleep(0.3))
    return proxy


@pytest.mark.parametrize(
    ("sent", "said", "never"),
    [
        (
            signal.SIGTERM,
            f"SIGTERM received by the main process, relayed as SIGINT: {DRAINING}",
            "SIGINT received",
        ),
        (signal.SIGINT, f"SIGINT received: {DRAINING}", "SIGTERM received"),
    ],
)
def test_a_real_server_logs_the_signal_it_was_sent(
    tmp_path: Path, upstream: FakeUpstream, sent: signal.Signals, said: str, never: str
) -> None:
    proxy = _start(tmp_path, upstream)
    try:
        proxy.signal(sent)
        assert proxy.proc.wait(60) == 0
    finally:
        proxy.stop()
    log = proxy.log()
    drain_lines = [line for line in log.splitlines() if "proxy.drain" in line and said in line]
    assert len(drain_lines) == 2, log  # one per worker
    assert never not in log


def test_a_signal_during_start_up_waits_for_the_workers_then_drains(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """A pod deleted while it starts: Sanic's manager, signalled before every worker
    acknowledged, interrupts the starting worker and then waits for its
    acknowledgement forever. The main process holds the signal back instead."""
    proxy = _launch(tmp_path, upstream)
    try:
        deadline = time.monotonic() + 60
        while "Starting worker [" not in proxy.log():  # the first worker is starting
            assert time.monotonic() < deadline, proxy.log()
            time.sleep(0.002)
        assert "Worker ready [" not in proxy.log()
        proxy.signal(signal.SIGTERM)
        assert proxy.proc.wait(60) == 0, proxy.log()
    finally:
        proxy.stop()
    log = proxy.log()
    assert "SIGTERM received while workers are starting: draining once they are up" in log
    assert log.count("Worker ready [") == 2, log  # neither worker was cut mid-start
    drained = [line for line in log.splitlines() if f"relayed as SIGINT: {DRAINING}" in line]
    assert len(drained) == 2, log
    assert "KeyboardInterrupt" not in log
