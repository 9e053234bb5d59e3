"""The forward service: one client request to the upstream and back.

handler → `Forwarder.handle` → inspect the body → upstream client → relay loop
(the capture on the side) → the finished `Exchange` goes to the sinks (the
transport metrics, the hand-off to the journal). The sinks are called exactly
once per request, also when the client disconnects and the handler task is
cancelled. Nothing here decodes or folds a relayed body, except demotion, which
must answer with the folded message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import aiohttp
from sanic import Request
from sanic.response import HTTPResponse
from yarl import URL

from control.demotion import StreamToMessage, demoted_response_headers
from control.header_rules import apply_rules
from control.plan import RuleBook, UpstreamPlan, plan_upstream
from control.routing import RoutingConfig
from forwarding.capture import Capture, CaptureBudget
from forwarding.failure_log import failure_fields, format_fields, log_forward_failure
from forwarding.inspect import inspect_body
from forwarding.relay import StreamBroken, buffered_response, read_body, relay_stream
from forwarding.upstream import UpstreamClient
from runtime.drain import close_after_response
from runtime.settings import Settings
from runtime.state import LiveState
from streaming.accumulator import finalize
from streaming.errors import ProxyError
from streaming.exchange import Exchange, Outcome
from streaming.headers import get_header, response_headers_for_client

logger = logging.getLogger("proxy.forward")

# Non-SSE bodies up to this size (by Content-Length) are read whole and sent in one
# write; larger or unsized ones are relayed chunk by chunk.
BUFFER_LIMIT = 4 * 1024 * 1024

PROXY_REQUEST_ID_HEADER = "x-proxy-request-id"

# Consumers of finished exchanges: the metrics, the hand-off to the journal.
ExchangeSink = Callable[[Exchange], None]


class Forwarder:
    def __init__(
        self,
        settings: Settings,
        client: UpstreamClient,
        live: LiveState,
        sinks: Sequence[ExchangeSink] = (),
        routing: RoutingConfig | None = None,
        rulebook: RuleBook | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._live = live
        self.sinks = list(sinks)
        self.routing = routing or RoutingConfig()
        self.rulebook = rulebook or RuleBook()
        self._base = settings.anthropic_forward_url
        self._capture_budget = CaptureBudget(settings.log_capture_budget_bytes)

    async def handle(self, request: Request, *, messages_api: bool = False) -> HTTPResponse | None:
        """Forward `request`; returns a response, or None once a stream was relayed.

        `messages_api`: the body must be a Messages API JSON object; anything else
        is refused with 400 before it costs an upstream call.
        """
        self._live.enter()
        if self._live.draining:
            close_after_response(request)
        exchange = Exchange(
            method=request.method,
            path=request.path,
            query=request.query_string,
            request_headers=list(request.headers.items()),
            request_body=request.body or b"",
        )
        try:
            try:
                refuse_control_characters(exchange)
                await inspect_body(exchange, messages_api=messages_api)
                return await self._forward(request, exchange)
            except ProxyError as err:
                exchange.status = err.status
                exchange.finish(Outcome.PROXY_ERROR, err.reason or err.message)
                if err.status >= 500:
                    log_forward_failure(exchange, err.message)
                else:
                    logger.info(
                        "request_rejected %s", format_fields(failure_fields(exchange, err.message))
                    )
                return HTTPResponse(
                    body=err.body(exchange.request_id),
                    status=err.status,
                    headers={PROXY_REQUEST_ID_HEADER: exchange.request_id},
                    content_type="application/json",
                )
        except asyncio.CancelledError:
            exchange.finish(Outcome.CLIENT_CLOSED, "client disconnected")
            raise
        finally:
            self._live.leave()
            self._submit(exchange)

    def _submit(self, exchange: Exchange) -> None:
        if exchange.outcome is None:  # an unexpected exception escaped
            exchange.finish(Outcome.PROXY_ERROR, "internal error")
        # Deferred: a buffered response is written after this returns, so the sinks
        # run once the client has its bytes. Survives handler cancellation.
        asyncio.get_running_loop().call_soon(self._deliver, exchange)

    def _deliver(self, exchange: Exchange) -> None:
        for sink in self.sinks:
            try:
                sink(exchange)
            except Exception:
                logger.exception("exchange sink %r failed for %s", sink, exchange.request_id)

    def plan(self, request: Request, exchange: Exchange) -> UpstreamPlan:
        """Where and what to send upstream (routing, header rules, demotion), noted on
        the exchange."""
        plan = plan_upstream(
            exchange,
            request.raw_url.decode("latin-1"),
            default_base=self._base,
            routing=self.routing,
            rules=self.rulebook.current,
            demote_enabled=self._settings.demote_nonstreaming,
        )
        exchange.upstream_url = plan.url
        exchange.provider = plan.provider
        exchange.routed_model = plan.routed_model
        exchange.route_rule = plan.rule
        exchange.demoted = plan.demote
        return plan

    async def _forward(self, request: Request, exchange: Exchange) -> HTTPResponse | None:
        plan = self.plan(request, exchange)
        url = URL(plan.url, encoded=True)
        upstream = await self._client.open(request.method, url, plan.headers, plan.body)
        try:
            return await self._respond(request, exchange, upstream)
        finally:
            upstream.close()

    async def _respond(
        self, request: Request, exchange: Exchange, upstream: aiohttp.ClientResponse
    ) -> HTTPResponse | None:
        exchange.status = upstream.status
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in upstream.raw_headers]
        exchange.response_headers = raw_headers
        client_headers = apply_rules(
            response_headers_for_client(raw_headers), self.rulebook.current.response
        )
        client_headers.append((PROXY_REQUEST_ID_HEADER, exchange.request_id))
        content_type = (get_header(raw_headers, "content-type") or "").lower()
        encoding = get_header(raw_headers, "content-encoding")
        exchange.is_sse = content_type.startswith("text/event-stream")
        length = upstream.content_length

        if exchange.demoted and exchange.is_sse and upstream.status == 200:
            return await self._demoted(exchange, upstream, client_headers)

        if not exchange.is_sse and length is not None and length <= BUFFER_LIMIT:
            try:
                body = await read_body(self._client, upstream, exchange)
            except TimeoutError:
                raise ProxyError(
                    504, "Upstream went silent while sending its body", "upstream_idle_timeout"
                ) from None
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                raise ProxyError(
                    502, f"Upstream body broke: {exc}", "upstream_stream_broken"
                ) from None
            exchange.response_chunks = [body]
            exchange.response_bytes = exchange.captured_bytes = len(body)
            exchange.response_encoding = encoding
            self._finish(exchange)
            return buffered_response(upstream.status, client_headers, body)

        exchange.response_encoding = encoding
        observer = Capture(self._settings.log_body_max_bytes, self._capture_budget)
        try:
            await relay_stream(
                request,
                self._client,
                upstream,
                client_headers,
                exchange,
                observer,
                sse=exchange.is_sse,
            )
        except StreamBroken as broken:
            observer.close(exchange)
            exchange.finish(Outcome.UPSTREAM_ERROR, broken.reason)
            log_forward_failure(exchange, broken.detail)
            return None
        except asyncio.CancelledError:
            observer.close(exchange)  # keep what arrived before the client left
            raise
        observer.close(exchange)
        self._finish(exchange)
        return None

    async def _demoted(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse, headers: list[tuple[str, str]]
    ) -> HTTPResponse:
        """Fold the upstream's stream and answer the stream:false client with one JSON
        message; headers (request-id, rate limits) come from the stream's response."""
        folder = StreamToMessage()
        capture = Capture(self._settings.log_body_max_bytes, self._capture_budget)
        try:
            while chunk := await self._client.read_chunk(upstream):
                folder.feed(chunk)
                capture.feed(chunk)
        except TimeoutError:
            raise ProxyError(
                504,
                "Upstream went silent while streaming (UPSTREAM_READ_IDLE_TIMEOUT)",
                "upstream_idle_timeout",
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise ProxyError(
                502, f"Upstream stream broke: {exc}", "upstream_stream_broken"
            ) from None
        finally:
            capture.close(exchange)
        status, body = folder.result()
        snapshot = folder.snapshot
        exchange.message = finalize(snapshot)
        exchange.stream_error = snapshot.error
        exchange.stream_complete = snapshot.complete
        exchange.status = status
        exchange.mark_first_byte()
        self._finish(exchange)
        return buffered_response(status, demoted_response_headers(headers), body)

    @staticmethod
    def _finish(exchange: Exchange) -> None:
        """The transport's verdict. A relayed stream's own `event: error` or missing
        `message_stop` is judged by the recorder once it folded the stream
        (`Exchange.judge_stream`); a demoted one was folded here already."""
        status = exchange.status or 0
        if status >= 400:
            exchange.finish(Outcome.UPSTREAM_ERROR, f"upstream status {status}")
            return
        exchange.finish(Outcome.COMPLETED)
        if exchange.demoted:
            exchange.judge_stream()


def refuse_control_characters(exchange: Exchange) -> None:
    """Sanic splits header lines on CRLF only, so a bare LF, CR or NUL can reach a
    header value; forwarding it would be header injection (aiohttp refuses it with
    an exception that would surface as a 500). Refused with a 400 naming the header,
    never its value, which may be a credential."""
    for name, value in exchange.request_headers:
        if "\n" in value or "\r" in value or "\x00" in value:
            raise ProxyError(
                400,
                f"Header {name[:64]!r}: value must not contain CR, LF or NUL",
                "invalid_header",
            )
