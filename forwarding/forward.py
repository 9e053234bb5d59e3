"""The forward service: one client request to the upstream and back.

handler → `Forwarder.handle` → inspect the body → plan (routing) → the provider
chain (forwarding.failover: breaker, fallbacks) → upstream client → relay loop
(the capture on the side) → the finished `Exchange` goes to the sinks (the
transport metrics, the hand-off to the journal). The sinks are called exactly
once per request, also when the client disconnects and the handler task is
cancelled. Nothing here decodes or folds a relayed body, except demotion, which
must answer with the folded message. OpenAI-format providers are answered by
forwarding.openai_forward.
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
from control.plan import RuleBook, UpstreamPlan, plan_fallback, plan_upstream
from control.routing import ProviderFormat, RoutingConfig
from forwarding.breaker import BreakerBoard
from forwarding.capture import Capture, CaptureBudget
from forwarding.failover import (
    PROXY_REQUEST_ID_HEADER,
    Chain,
    Verdict,
    breaker_counts,
    failure_reason,
    raising,
    transport_failure,
)
from forwarding.failure_log import failure_fields, format_fields, log_forward_failure
from forwarding.inspect import inspect_body
from forwarding.openai_forward import OpenAIForwarder
from forwarding.relay import StreamBroken, buffered_response, read_body, relay_stream
from forwarding.upstream import UpstreamClient
from metrics.providers import initialise_failover_series
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
        breakers: BreakerBoard | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._live = live
        self.sinks = list(sinks)
        self.routing = routing or RoutingConfig()
        self.rulebook = rulebook or RuleBook()
        self._base = settings.anthropic_forward_url
        self._capture_budget = CaptureBudget(settings.log_capture_budget_bytes)
        if breakers is None:  # one board per worker: a second forwarder shares it
            breakers = BreakerBoard(self.routing.providers)
            initialise_failover_series(
                [(p.name, p.fallback.provider) for p in self.routing.providers if p.fallback]
            )
        self.breakers = breakers
        self._openai = OpenAIForwarder(settings, client, self._capture_budget, self.rulebook)

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
                body = err.body(exchange.request_id)
                record_proxy_answer(exchange, body)
                return HTTPResponse(
                    body=body,
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
        note_plan(exchange, plan)
        return plan

    async def _forward(self, request: Request, exchange: Exchange) -> HTTPResponse | None:
        plan = self.plan(request, exchange)
        target = request.raw_url.decode("latin-1")

        async def attempt(plan: UpstreamPlan) -> Verdict:
            if plan.format is ProviderFormat.OPENAI:
                return await self._openai.attempt(request, exchange, plan)
            return await self._attempt(request, exchange, plan)

        def next_plan(failed: UpstreamPlan) -> UpstreamPlan | None:
            return plan_fallback(
                exchange,
                target,
                failed,
                routing=self.routing,
                rules=self.rulebook.current,
                demote_enabled=self._settings.demote_nonstreaming,
            )

        def note(plan: UpstreamPlan) -> None:
            note_plan(exchange, plan)

        chain = Chain(exchange, self.breakers, attempt, next_plan, note)
        return await chain.run(plan)

    async def _attempt(self, request: Request, exchange: Exchange, plan: UpstreamPlan) -> Verdict:
        """An Anthropic-format provider: relayed as it answers, unless its status says
        another provider may answer instead (then the body is never read)."""
        try:
            upstream = await self._client.open(
                request.method, URL(plan.url, encoded=True), plan.headers, plan.body
            )
        except ProxyError as err:
            reason = transport_failure(err)
            if reason is None:
                raise
            return Verdict(reason, None, err.message, raising(err))
        own_key = plan.target is not None and plan.target.api_key is not None
        status = upstream.status
        reason = failure_reason(status, own_key=own_key)

        async def deliver() -> HTTPResponse | None:
            try:
                return await self._respond(request, exchange, upstream)
            finally:
                upstream.close()

        return Verdict(
            reason,
            status,
            f"upstream status {status}" if reason else None,
            deliver,
            upstream.close,
            counts_for_breaker=reason is not None and breaker_counts(reason, own_key=own_key),
        )

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


def note_plan(exchange: Exchange, plan: UpstreamPlan) -> None:
    """The exchange describes the provider now tried; an earlier one's answer is gone."""
    exchange.upstream_url = plan.url
    exchange.provider = plan.provider
    exchange.provider_format = plan.format.value
    exchange.routed_model = plan.routed_model
    exchange.route_rule = plan.rule
    exchange.demoted = plan.demote
    exchange.status = None
    exchange.response_headers = []


def record_proxy_answer(exchange: Exchange, body: bytes) -> None:
    """The log keeps the error body the proxy answered with (small, made here), in
    place of whatever an upstream had sent before the proxy gave up: the record
    shows what the client got, message included."""
    exchange.response_chunks = [body]
    exchange.response_bytes = exchange.captured_bytes = len(body)
    exchange.response_clipped = False
    exchange.response_encoding = None
    exchange.is_sse = False
    exchange.message = None
    exchange.stream_error = None
    exchange.stream_complete = False


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
