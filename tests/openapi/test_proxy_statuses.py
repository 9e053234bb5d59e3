"""Every status the `/v1/*` operations document is one they really answer.

Probed over raw sockets against real processes: a proxy on the fake upstream
(small REQUEST_MAX_BYTES, short read and header timeouts) and one whose upstream
is a closed port. An undocumented status, or a documented one without a probe,
fails the test.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from sanic import Sanic

from app import create_app
from tests.conftest import ProxyProcess, free_port, start_proxy
from tests.fake_upstream import FakeUpstream
from tests.openapi.test_spec import _operations

Sanic.test_mode = True
JSON = {"content-type": "application/json", "x-api-key": "sk-ant-probe"}
MESSAGE = (
    b'{"model":"claude-sonnet-4-5-20250929","max_tokens":8,'
    b'"messages":[{"role":"user","content":"hi"}]}'
)


def _request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    length: int | None = None,
    raw_header: bytes = b"",
) -> int:
    """Send one request as bytes (so a bare LF or a lying Content-Length go out as
    written) and return the status of the answer."""
    head = f"{method} {path} HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n".encode()
    for name, value in headers.items():
        head += f"{name}: {value}\r\n".encode()
    head += raw_header
    head += f"content-length: {len(body) if length is None else length}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head + body)
        status_line = sock.makefile("rb").readline()
    return int(status_line.split()[1])


# status -> (proxy, method override, path, headers, body, options)
def _probes(method: str, path: str) -> dict[str, tuple[Any, ...]]:
    concrete = path.replace("{path}", "files")
    body = MESSAGE if concrete.startswith("/v1/messages") else b"{}"
    if path == "/v1/chat/completions":
        return {"400": ("up", concrete, JSON, body, {})}
    ok_headers = {**JSON} if path != "/v1/{path}" else {**JSON, "x-fake": "echo"}
    probes = {
        "200": ("up", concrete, ok_headers, body, {}),
        "400": ("up", concrete, JSON, body, {"raw_header": b"x-note: a\nb\r\n"}),
        "408": ("up", concrete, JSON, body, {"length": len(body) + 10}),
        "413": ("up", concrete, JSON, body, {"length": 10_000_000}),
        "502": ("dead", concrete, JSON, body, {}),
        "504": ("up", concrete, {**JSON, "x-fake": "slow-headers:3"}, body, {}),
        "default": ("up", concrete, {**JSON, "x-fake": "status:429"}, body, {}),
    }
    if path == "/v1/models":  # takes no body: no body deadline, no size limit
        del probes["408"], probes["413"]
    return probes


@pytest.fixture(scope="module")
def proxies(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ProxyProcess]]:
    common = {"REQUEST_LOG": "false", "REQUEST_MAX_BYTES": "65536", "REQUEST_READ_TIMEOUT": "1"}
    up = start_proxy(
        tmp_path_factory.mktemp("v1-up"),
        {**common, "ANTHROPIC_FORWARD_URL": upstream.url, "ANTHROPIC_RESPONSE_HEADER_TIMEOUT": "1"},
    )
    dead = start_proxy(
        tmp_path_factory.mktemp("v1-dead"),
        {**common, "ANTHROPIC_FORWARD_URL": f"http://127.0.0.1:{free_port()}"},
    )
    try:
        yield {"up": up, "dead": dead}
    finally:
        up.stop()
        dead.stop()


async def test_every_documented_v1_status_is_real(proxies: dict[str, ProxyProcess]) -> None:
    _, resp = await create_app().asgi_client.get("/openapi.json")
    operations = {k: op for k, op in _operations(resp.json).items() if k[1].startswith("/v1/")}
    # HEAD and OPTIONS too: the passthrough forwards them, and documents them.
    assert {("HEAD", "/v1/{path}"), ("OPTIONS", "/v1/{path}")} <= set(operations)
    wrong: list[str] = []
    for (method, path), op in sorted(operations.items()):
        probes = _probes(method, path)
        assert set(probes) == set(op["responses"]), f"{method} {path}: {sorted(op['responses'])}"
        for status, (which, url, headers, body, options) in probes.items():
            send_body = (
                body if method in ("POST", "PUT", "PATCH") or status in ("408", "413") else b""
            )
            if status == "408":
                send_body = body if send_body else b"x"
                options = {"length": len(send_body) + 10}
            got = await asyncio.to_thread(
                _request, proxies[which].port, method, url, headers, send_body, **options
            )
            expected = 429 if status == "default" else int(status)
            if got != expected:
                wrong.append(f"{method} {url} documents {status}, answered {got}")
    assert wrong == []
