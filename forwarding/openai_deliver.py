"""Giving the client an OpenAI-format provider's answer, once it is the one to give.

forwarding.openai_forward decides (its `Verdict`); these write: a buffered body
(the translated message, an error, an estimate), the translated stream relayed as
it comes (`stream`), or that stream folded into one message (`folded`, demotion).
Each fills in the exchange as the relay does for an Anthropic answer: what the
client got, for the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
from sanic import Request
from sanic.response import HTTPResponse

from control.demotion import StreamToMessage
from control.header_rules import apply_rules
from control.plan import RuleBook
from forwarding.capture import Capture, CaptureBudget
from forwarding.failover import PROXY_REQUEST_ID_HEADER, Deliver
from forwarding.failure_log import log_forward_failure
from forwarding.relay import StreamBroken, buffered_response, relay_stream
from forwarding.upstream import UpstreamClient
from providers import OpenAIStreamTranslator
from runtime.settings import Settings
from streaming.accumulator import finalize
from streaming.errors import ProxyError
from streaming.exchange import Exchange, Outcome

Headers = list[tuple[str, str]]

# The backend's headers the client also gets: its request id and rate limits (the
# set the error translation keeps too).
_KEPT = frozenset({"x-request-id", "retry-after", "retry-after-ms"})
_KEPT_PREFIX = "x-ratelimit-"


class TranslatingReader(UpstreamClient):
    """The backend's body as the relay reads it: each chunk translated, chunks that
    yield nothing yet (a usage chunk, a tool call still without its name) read
    past, the translator's ending appended. Bytes already translated (`push`) are
    handed out first. Reads stop once the translator has ended the message."""

    def __init__(
        self, settings: Settings, client: UpstreamClient, translator: OpenAIStreamTranslator
    ) -> None:
        super().__init__(settings)
        self._inner = client
        self.translator = translator
        self._pending: list[bytes] = []
        self._done = False

    def push(self, chunk: bytes) -> None:
        self._pending.append(chunk)

    async def read_chunk(self, response: aiohttp.ClientResponse) -> bytes:
        if self._pending:
            return self._pending.pop(0)
        while not self._done:
            if self.translator.ended:  # message_stop or an error event was the last
                self._done = True
                break
            chunk = await self._inner.read_chunk(response)
            if not chunk:
                self._done = True
                return self.translator.finish()
            out = self.translator.feed(chunk)
            if out:
                return out
        return b""


def kept_headers(headers: Sequence[tuple[str, str]]) -> Headers:
    return [
        (name.lower(), value)
        for name, value in headers
        if name.lower() in _KEPT or name.lower().startswith(_KEPT_PREFIX)
    ]


def finish(exchange: Exchange) -> None:
    """The verdict on what the client got (a relayed stream's own `event: error` is
    judged by the recorder once folded, as for any stream)."""
    status = exchange.status or 0
    if status >= 400:
        exchange.finish(Outcome.UPSTREAM_ERROR, f"upstream status {status}")
    else:
        exchange.finish(Outcome.COMPLETED)


class Delivery:
    def __init__(self, settings: Settings, capture_budget: CaptureBudget, rulebook: RuleBook):
        self._settings = settings
        self._capture_budget = capture_budget
        self.rulebook = rulebook

    def _client_headers(self, exchange: Exchange, headers: Sequence[tuple[str, str]]) -> Headers:
        out = apply_rules(list(headers), self.rulebook.current.response)
        out.append((PROXY_REQUEST_ID_HEADER, exchange.request_id))
        return out

    def buffered(self, exchange: Exchange, status: int, headers: Headers, body: bytes) -> Deliver:
        async def deliver() -> HTTPResponse:
            exchange.status = status
            exchange.is_sse = False
            exchange.response_encoding = None
            exchange.response_chunks = [body]
            exchange.response_bytes = exchange.captured_bytes = len(body)
            exchange.mark_first_byte()
            finish(exchange)
            return buffered_response(status, self._client_headers(exchange, headers), body)

        return deliver

    def stream(
        self,
        request: Request,
        exchange: Exchange,
        upstream: aiohttp.ClientResponse,
        reader: TranslatingReader,
    ) -> Deliver:
        async def deliver() -> None:
            headers = self._client_headers(
                exchange,
                [
                    ("content-type", "text/event-stream; charset=utf-8"),
                    ("cache-control", "no-cache"),
                    *kept_headers(exchange.response_headers),
                ],
            )
            exchange.status = 200
            exchange.is_sse = True
            exchange.response_encoding = None
            observer = Capture(self._settings.log_body_max_bytes, self._capture_budget)
            try:
                await relay_stream(request, reader, upstream, headers, exchange, observer, sse=True)
            except StreamBroken as broken:
                observer.close(exchange)
                exchange.finish(Outcome.UPSTREAM_ERROR, broken.reason)
                log_forward_failure(exchange, broken.detail)
                return None
            except asyncio.CancelledError:
                observer.close(exchange)  # keep what arrived before the client left
                raise
            finally:
                exchange.backend_model = reader.translator.served_model
                upstream.close()
            observer.close(exchange)
            finish(exchange)
            return None

        return deliver

    def folded(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse, reader: TranslatingReader
    ) -> Deliver:
        """Demotion: the translated stream folded into the one JSON message the
        stream:false client asked for; the log keeps the stream, as for any demotion."""

        async def deliver() -> HTTPResponse:
            folder = StreamToMessage()
            capture = Capture(self._settings.log_body_max_bytes, self._capture_budget)
            exchange.is_sse = True
            exchange.response_encoding = None
            try:
                while chunk := await reader.read_chunk(upstream):
                    folder.feed(chunk)
                    capture.feed(chunk)
            except TimeoutError:
                raise ProxyError(
                    504,
                    "Upstream went silent while streaming (UPSTREAM_READ_IDLE_TIMEOUT)",
                    "upstream_idle_timeout",
                ) from None
            except aiohttp.ClientError as exc:
                raise ProxyError(
                    502, f"Upstream stream broke: {exc}", "upstream_stream_broken"
                ) from None
            finally:
                capture.close(exchange)
                exchange.backend_model = reader.translator.served_model
                upstream.close()
            status, body = folder.result()
            snapshot = folder.snapshot
            exchange.message = finalize(snapshot)
            exchange.stream_error = snapshot.error
            exchange.stream_complete = snapshot.complete
            exchange.status = status
            exchange.mark_first_byte()
            finish(exchange)
            exchange.judge_stream()
            headers = [
                ("content-type", "application/json"),
                *kept_headers(exchange.response_headers),
            ]
            return buffered_response(status, self._client_headers(exchange, headers), body)

        return deliver
