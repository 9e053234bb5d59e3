"""The live tail over HTTP, against real proxies: Server-Sent Events behind the
dashboard password, the list's filters, and the drain on SIGTERM ending every
tail stream instead of waiting on it."""

from __future__ import annotations

import base64
import http.client
import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ProxyProcess, start_proxy
from tests.dashboard.conftest import PASSWORD, DashboardEnv
from tests.fake_upstream import FakeUpstream

BOUND_S = 60.0  # a bound on every read, never a duration asserted


class Events:
    """A tail stream read event by event (a blocking socket with a timeout)."""

    def __init__(self, port: int, path: str, password: str | None = PASSWORD) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=BOUND_S)
        headers = {"accept": "text/event-stream"}
        if password is not None:
            token = base64.b64encode(f"viewer:{password}".encode()).decode()
            headers["authorization"] = f"Basic {token}"
        self.connection.request("GET", path, headers=headers)
        self.response = self.connection.getresponse()

    def next(self) -> tuple[str | None, str, list[str]]:
        """(event name, data, comments) of the next event or comment block;
        ("eof", "", []) at the end."""
        name: str | None = None
        data: list[str] = []
        comments: list[str] = []
        while True:
            line = self.response.readline()
            if not line:
                return "eof", "", comments
            text = line.decode().rstrip("\r\n")
            if text == "":
                if name or data or comments:
                    return name, "\n".join(data), comments
                continue
            field, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if field == "":
                comments.append(value)
            elif field == "event":
                name = value
            elif field == "data":
                data.append(value)

    def until(self, wanted: str) -> tuple[str, list[str]]:
        # Heartbeats arrive every 15 s: a stream that never delivers still ends the wait.
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            name, data, comments = self.next()
            if name == wanted:
                return data, comments
            assert name != "eof", f"the stream ended before an {wanted!r} event"
        raise AssertionError(f"no {wanted!r} event within {BOUND_S}s")

    def close(self) -> None:
        self.connection.close()


def test_the_tail_is_a_protected_event_stream(dashboard_env: DashboardEnv) -> None:
    session = str(uuid.uuid4())
    stream = Events(dashboard_env.proxy.port, f"/dashboard/requests/tail?session={session}")
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("content-type", "").startswith("text/event-stream")
        assert stream.response.getheader("cache-control") == "no-cache"
        assert "script-src 'self'" in stream.response.getheader("content-security-policy", "")
        first = stream.response.readline() + stream.response.readline()
        assert first.startswith(b"retry: ")
        sent = dashboard_env.send_traffic(0, session=session, stream=1, overloaded=1)
        dashboard_env.send_traffic(0, stream=1)  # another session: filtered out
        seen: set[str] = set()
        while len(seen) < len(sent):
            data, _ = stream.until("rows")
            for row in json.loads(data):
                assert row["session"] == session
                seen.add(row["id"])
        assert seen == {s.request_id for s in sent}
    finally:
        stream.close()


def test_the_tail_needs_the_password_and_valid_filters(dashboard_env: DashboardEnv) -> None:
    anonymous = Events(dashboard_env.proxy.port, "/dashboard/requests/tail", password=None)
    assert anonymous.response.status == 401
    anonymous.close()
    bad = Events(dashboard_env.proxy.port, "/dashboard/requests/tail?status=7xx")
    assert bad.response.status == 400
    assert "status" in json.loads(bad.response.read())["error"]["message"]
    bad.close()
    words = Events(dashboard_env.proxy.port, "/dashboard/requests/tail?q=some+words")
    assert words.response.status == 400
    words.close()


@pytest.fixture
def own_proxy(upstream: FakeUpstream, mongo_uri: str, tmp_path: Path) -> Iterator[ProxyProcess]:
    """A proxy of this test's own, to stop: a long graceful shutdown, so only the
    tail ending its streams lets it exit soon."""
    proxy = start_proxy(
        tmp_path,
        {
            "MONGODB_URI": mongo_uri,
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "DASHBOARD_PASSWORD": PASSWORD,
            "DATA_DIR": str(tmp_path / "data"),
            "GRACEFUL_SHUTDOWN_TIMEOUT": "600",
        },
    )
    yield proxy
    proxy.stop()


def test_sigterm_ends_tail_streams_instead_of_waiting_on_them(own_proxy: ProxyProcess) -> None:
    streams = [Events(own_proxy.port, "/dashboard/requests/tail") for _ in range(2)]
    try:
        for stream in streams:
            assert stream.response.status == 200
            assert stream.response.readline().startswith(b"retry: ")
        own_proxy.signal(signal.SIGTERM)
        for stream in streams:
            data, _ = stream.until("end")
            assert json.loads(data)["reason"]
            assert stream.next()[0] == "eof"
        # Well before GRACEFUL_SHUTDOWN_TIMEOUT (600 s): nothing held the server open.
        assert own_proxy.proc.wait(BOUND_S) == 0, own_proxy.log()
    finally:
        for stream in streams:
            stream.close()
