"""The relay loop: upstream bytes to the client, observers on the side.

Each chunk is written to the client the moment it is read, before anything
else looks at it; nothing between the upstream read and the client write can
raise, block or wait on storage.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
from sanic import Request
from sanic.compat import Header
from sanic.response import HTTPResponse

from forwarding.upstream import UpstreamClient
from streaming.errors import error_body
from streaming.exchange import Exchange
from streaming.observer import BodyObserver


class StreamBroken(Exception):
    """The upstream failed after the response had started; the client saw it."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


async def read_body(
    client: UpstreamClient, upstream: aiohttp.ClientResponse, exchange: Exchange
) -> bytes:
    """The whole body of a small response, each read bounded by the idle timeout."""
    chunks: list[bytes] = []
    while chunk := await client.read_chunk(upstream):
        exchange.mark_first_byte()
        chunks.append(chunk)
    return b"".join(chunks)


def buffered_response(status: int, headers: Sequence[tuple[str, str]], body: bytes) -> HTTPResponse:
    return HTTPResponse(body=body, status=status, headers=Header(headers))


async def relay_stream(
    request: Request,
    client: UpstreamClient,
    upstream: aiohttp.ClientResponse,
    headers: Sequence[tuple[str, str]],
    exchange: Exchange,
    observer: BodyObserver,
    *,
    sse: bool,
) -> None:
    """Relay an unbounded body chunk by chunk, flushing each one as it arrives.

    Raises StreamBroken after telling the client when the upstream fails midway:
    an SSE client gets an `event: error` (the way Anthropic itself reports
    mid-stream failures, which the SDKs surface as an APIError); any other body
    is cut without its terminating chunk, so the client cannot mistake it for
    a complete one.
    """
    response = await request.respond(status=upstream.status, headers=Header(headers))
    tail = b"\n\n"
    try:
        while chunk := await client.read_chunk(upstream):
            await response.send(chunk)
            exchange.mark_first_byte()
            observer.feed(chunk)
            tail = chunk[-2:]
    except TimeoutError:
        broken = StreamBroken(
            "upstream_idle_timeout",
            f"Upstream sent nothing for {client.idle_timeout:g}s (UPSTREAM_READ_IDLE_TIMEOUT)",
        )
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
        broken = StreamBroken("upstream_stream_broken", f"Upstream stream broke: {exc}")
    else:
        await response.eof()
        return
    if sse:
        # The event is ours, not the upstream's: observe it so the record shows it too.
        # A blank line first ends whatever partial event the upstream left open.
        lead = b"" if tail == b"\n\n" else b"\n\n"
        event = lead + b"event: error\ndata: " + error_body(502, broken.detail) + b"\n\n"
        await response.send(event)
        observer.feed(event)
        await response.eof()
    elif request.transport is not None:
        request.transport.abort()
    raise broken
