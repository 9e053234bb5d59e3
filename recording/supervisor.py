"""The proxy's main process keeps one recorder process running.

Started after the embedded database (if any) and before the workers; restarted
with a growing pause (up to RESTART_MAX seconds) whenever it exits while the
proxy runs: a recorder that crashed resumes from its checkpoint, and records
wait in the journal meanwhile. Stopped last, once every worker has exited, so
it stores the records they handed off until the very end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

logger = logging.getLogger("proxy")

RESTART_MIN = 0.5
RESTART_MAX = 10.0
# A recorder that ran this long before exiting had not been crash-looping.
STABLE_SECONDS = 30.0
_ROOT = Path(__file__).resolve().parent.parent
# The recorder's nice value: a lower CPU priority than the workers' (0).
RECORDER_NICENESS = 10


class RecorderSupervisor:
    def __init__(self, env: dict[str, str] | None = None, cwd: str | Path | None = None) -> None:
        self._env = env
        self._cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="recorder-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            env = dict(self._env if self._env is not None else os.environ)
            # Importable from any working directory (tests start the proxy elsewhere).
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p
            )
            self._process = subprocess.Popen(
                [sys.executable, "-m", "recording"],
                env=env,
                cwd=self._cwd,
                stdin=subprocess.DEVNULL,
                # Its own group: a terminal's Ctrl-C goes to the proxy, which stops
                # the recorder only after the workers have handed everything off.
                start_new_session=True,
            )
            self._started_at = time.monotonic()
            # Forwarding comes first: on a busy pod the workers win the CPU and the
            # recorder catches up when they idle (the journal holds the backlog).
            # Lowered right after the start (a preexec hook is unsafe with threads).
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self._process.pid, RECORDER_NICENESS)

    def _watch(self) -> None:
        pause = RESTART_MIN
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                return
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - self._started_at > STABLE_SECONDS:
                pause = RESTART_MIN
            logger.error("recorder exited with %s; restarting in %.1fs", code, pause)
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, RESTART_MAX)
            self.restarts += 1
            self._spawn()

    def stop(self, timeout: float) -> int | None:
        """SIGTERM, then wait up to `timeout` (the recorder's own flush deadline
        plus a margin) before SIGKILL. Returns the exit code."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is None or process.poll() is not None:
            return process.returncode if process is not None else None
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.error("recorder did not stop within %.0fs; killing it", timeout)
            process.kill()
            return process.wait()
