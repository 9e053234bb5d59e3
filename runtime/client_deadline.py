"""REQUEST_READ_TIMEOUT as a deadline, not an idle timer.

Sanic restarts its request timer on every byte received, and reads a body under
its response timer, so a client trickling one byte every few seconds (slowloris)
could hold a connection and a worker's buffers indefinitely. Here the head must
arrive within REQUEST_READ_TIMEOUT of its first byte, and the body within
REQUEST_READ_TIMEOUT of the head; past that the client gets `408 timeout_error`
and the connection is closed.
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Any

from sanic import Request
from sanic.exceptions import RequestTimeout
from sanic.http import Stage
from sanic.server.protocols.http_protocol import HttpProtocol


class DeadlineProtocol(HttpProtocol):
    """Bytes of a request head do not restart the request timer: it runs from the
    head's first byte (received while the connection was idle)."""

    def data_received(self, data: bytes) -> None:
        started = self._time
        http = getattr(self, "_http", None)
        super().data_received(data)
        if http is not None and http.stage is Stage.REQUEST:
            self._time = started


class DeadlineRequest(Request):
    """Reads the body within REQUEST_READ_TIMEOUT of the head having arrived."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_received = monotonic()

    async def receive_body(self) -> None:
        if self.body or self.stream is None:
            await super().receive_body()
            return
        limit = float(self.app.config.REQUEST_TIMEOUT)
        try:
            async with asyncio.timeout(max(0.0, self._head_received + limit - monotonic())):
                await super().receive_body()
        except TimeoutError:
            # The rest of the body is never read: drop the connection after the 408
            # instead of waiting on the trickle to "consume" it.
            self.stream.request_body = None
            self.stream.keep_alive = False
            raise RequestTimeout(
                f"Request body not received within {limit:g}s (REQUEST_READ_TIMEOUT)"
            ) from None
