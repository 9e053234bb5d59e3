"""The Deployment's preStop hook, its inline Python run for real against a fake
/livez."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.k8s.manifests import prestop_command, rendered_docs

# Serial (make test's second phase): times the preStop hook's polling (within 0.8-5 s, 1.4-4 s).
pytestmark = pytest.mark.serial


class _Livez:
    """A fake /livez answering a scripted sequence of in_flight values."""

    def __init__(self, values: list[int]) -> None:
        self.values = values
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.paths.append(self.path)
                value = owner.values.pop(0) if len(owner.values) > 1 else owner.values[0]
                body = json.dumps({"status": "ok", "in_flight": value}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def __enter__(self) -> _Livez:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_prestop(port: int, max_wait: float) -> tuple[int, float]:
    _, _, script, _, _ = prestop_command(rendered_docs("base"))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", script, "0", str(max_wait)],
        env={**os.environ, "PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert not proc.stderr, proc.stderr
    return proc.returncode, time.monotonic() - started


def test_prestop_returns_once_nothing_is_in_flight() -> None:
    with _Livez([1, 0]) as livez:
        rc, elapsed = run_prestop(livez.port, max_wait=20)
    assert rc == 0
    assert livez.paths == ["/livez"] * 2, "polls /livez until in_flight is 0, then stops"
    assert 0.8 < elapsed < 5, "polls about once a second"


def test_prestop_wait_is_bounded() -> None:
    with _Livez([1]) as livez:
        rc, elapsed = run_prestop(livez.port, max_wait=1.5)
    assert rc == 0
    assert 1.4 < elapsed < 4, f"gave up after {elapsed:.1f}s, bound 1.5s"
    assert len(livez.paths) >= 2


def test_prestop_returns_at_once_when_nothing_listens() -> None:
    with socket.socket() as sock:  # a port that is certainly closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rc, elapsed = run_prestop(port, max_wait=20)
    assert rc == 0 and elapsed < 3
