"""Hostile-input helpers: raw sockets (aiohttp refuses to send most of what we need),
a proxy per module with short client timeouts, and checks every case ends with."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ProxyProcess, start_proxy
from tests.fake_upstream import FakeUpstream

# Short enough to observe in a test, long enough for a loaded 2-core machine.
READ_TIMEOUT = 2.0
KEEP_ALIVE = 2.0
MAX_BYTES = 64 * 1024

MESSAGE = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    closed: bool  # the server closed the connection after answering

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def json(self) -> Any:
        return json.loads(self.body)


def hostile_proxy(tmp: Path, upstream: FakeUpstream, mongo_uri: str, **env: str) -> ProxyProcess:
    """A proxy on the shared test database with short client-side limits."""
    return start_proxy(
        tmp,
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "MONGODB_URI": mongo_uri,
            "REQUEST_READ_TIMEOUT": str(READ_TIMEOUT),
            "KEEP_ALIVE_TIMEOUT": str(KEEP_ALIVE),
            "REQUEST_MAX_BYTES": str(MAX_BYTES),
            "DATA_DIR": str(tmp / "data"),
            **env,
        },
    )


@pytest.fixture(scope="module")
def hproxy(
    upstream: FakeUpstream, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    handle = hostile_proxy(tmp_path_factory.mktemp("hostile"), upstream, mongo_uri)
    yield handle
    handle.stop()


def parse_head(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return status, headers, rest


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


async def raw_request(
    port: int,
    payload: bytes,
    *,
    then: list[tuple[float, bytes]] | None = None,
    limit: float = 15.0,
) -> RawResponse:
    """Send `payload` (and each `(delay, bytes)` of `then`, ignoring a closed socket),
    read one response; `closed` tells whether the server then closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        # Read concurrently: a server that answers early must not be written to
        # again, or the kernel resets the connection and discards its answer.
        reading = asyncio.ensure_future(asyncio.wait_for(_read_response(reader), limit))
        for delay, data in then or []:
            await asyncio.wait({reading}, timeout=delay)
            if reading.done():
                break
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                break
        return await reading
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    status, headers, _ = parse_head(head)
    lowered = {k.lower(): v for k, v in headers}
    if "content-length" in lowered:
        body = await reader.readexactly(int(lowered["content-length"]))
    elif lowered.get("transfer-encoding", "").lower() == "chunked":
        chunks = bytearray()
        while not chunks.endswith(b"0\r\n\r\n"):
            data = await reader.read(65536)
            if not data:
                break
            chunks += data
        body = dechunk(bytes(chunks))
    else:
        body = await reader.read()
    closed = lowered.get("connection", "").lower() == "close"
    if not closed:
        # Still open unless the server hangs up within a short grace period.
        try:
            closed = await asyncio.wait_for(reader.read(1), 0.5) == b""
        except TimeoutError:
            closed = False
    return RawResponse(status, headers, body, closed)


def post_head(path: str, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode("latin-1")


def assert_error(resp: RawResponse | tuple[int, Any], status: int, error_type: str) -> None:
    """Anthropic's error shape (the model API's, `/v1/*`) with the expected status
    and type."""
    if isinstance(resp, RawResponse):
        code, payload = resp.status, resp.json()
    else:
        code, payload = resp
    assert code == status, payload
    assert payload["type"] == "error", payload
    assert payload["error"]["type"] == error_type, payload
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]


def assert_api_error(resp: RawResponse | tuple[int, Any], status: int) -> dict[str, str]:
    """The dashboard API's error (`/api/*`): the seed's `{"error", "details"}`, both
    non-empty strings, with the expected status. Returns the body."""
    if isinstance(resp, RawResponse):
        code, payload = resp.status, resp.json()
    else:
        code, payload = resp
    assert code == status, payload
    assert set(payload) == {"error", "details"}, payload
    assert all(isinstance(v, str) and v for v in payload.values()), payload
    return payload


async def assert_alive(proxy: ProxyProcess) -> None:
    """The process is up and an ordinary request is still served and logged."""
    assert proxy.proc.poll() is None, proxy.log()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{proxy.url}/livez") as resp:
            assert resp.status == 200
        async with http.post(f"{proxy.url}/v1/messages", json=MESSAGE) as resp:
            assert resp.status == 200
            assert (await resp.json())["type"] == "message"
            request_id = resp.headers["x-proxy-request-id"]
    await wait_record(proxy, request_id)


async def wait_record(proxy: ProxyProcess, request_id: str, within: float = 10.0) -> Any:
    """The request's log record, once the writer has stored it."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            async with http.get(f"{proxy.url}/api/requests/{request_id}") as resp:
                if resp.status == 200:
                    return (await resp.json())["request"]
            await asyncio.sleep(0.1)
    raise AssertionError(f"{request_id} never reached the log")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))
