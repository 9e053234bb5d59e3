"""One attempt at an OpenAI-format provider: translate, call, translate back.

`POST /v1/messages` is translated (forwarding.openai_translate, `providers/`) and
sent to `{base_url}/chat/completions`; the answer comes back in Anthropic's shape:

- streamed (the client's `stream: true`): each backend chunk goes through
  `OpenAIStreamTranslator` and what it yields is written to the client at once
  (forwarding.relay, the same loop as any stream, so a failure midway ends with
  an `event: error`); nothing is buffered beyond the chunk in hand. The response
  starts with the first translated bytes, so a backend that fails before it
  (an error chunk, a cut, silence) is still a failure another provider may answer.
- whole (`stream: false`): the completion translated by `from_openai_response`.
  With demotion on, the backend is asked for a stream instead and the translated
  stream folded into the message (control.demotion.StreamToMessage), exactly as
  demotion does for an Anthropic upstream: a long local generation then never
  waits on ANTHROPIC_RESPONSE_HEADER_TIMEOUT.
- errors before the answer: `anthropic_error_from_openai` (status, type,
  `retry-after` and the backend's rate-limit headers kept).
- `POST /v1/messages/count_tokens`: the proxy's estimate (`"estimated": true`),
  the backend is not called. Other endpoints cannot be translated: 400.

The log keeps what the client got: the Anthropic SSE (folded by the recorder like
any stream) or the translated JSON, and the backend's own response headers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable

import aiohttp
from sanic import Request
from yarl import URL

from control.plan import COUNT_TOKENS_PATH, MESSAGES_PATH, RuleBook, UpstreamPlan
from forwarding.capture import CaptureBudget
from forwarding.failover import (
    Verdict,
    breaker_counts,
    failure_in_answer,
    failure_reason,
    raising,
    transport_failure,
)
from forwarding.openai_deliver import Delivery, Headers, TranslatingReader, kept_headers
from forwarding.openai_translate import estimate, openai_body
from forwarding.upstream import UpstreamClient
from providers import (
    BackendFailure,
    OpenAIOptions,
    OpenAIStreamTranslator,
    RequestRefused,
    anthropic_error_from_openai,
    from_openai_response,
    parse_completion,
    timeout_error,
)
from runtime.settings import Settings
from streaming.errors import ProxyError
from streaming.exchange import Exchange

# An error body is read up to this much (its message is in the first bytes).
ERROR_BODY_LIMIT = 1024 * 1024
# A whole completion larger than this is refused rather than held in the worker.
COMPLETION_LIMIT = 64 * 1024 * 1024


class OpenAIForwarder:
    def __init__(
        self,
        settings: Settings,
        client: UpstreamClient,
        capture_budget: CaptureBudget,
        rulebook: RuleBook,
    ) -> None:
        self._settings = settings
        self._client = client
        self._out = Delivery(settings, capture_budget, rulebook)

    async def attempt(self, request: Request, exchange: Exchange, plan: UpstreamPlan) -> Verdict:
        assert plan.target is not None
        settings = plan.target.openai
        options = OpenAIOptions(settings.max_tokens_field, settings.thinking)
        endpoint = exchange.path.rstrip("/")
        if exchange.method == "POST" and endpoint == COUNT_TOKENS_PATH:
            answer = await _refusing(estimate(exchange.request_body, options=options))
            return self._estimate(exchange, answer)
        if exchange.method != "POST" or endpoint != MESSAGES_PATH or exchange.request_json is None:
            raise ProxyError(
                400,
                f"{exchange.method} {exchange.path} cannot be sent to provider {plan.provider!r}: "
                "it speaks OpenAI Chat Completions, into which only POST /v1/messages and "
                "/v1/messages/count_tokens are translated",
                "invalid_request",
            )
        if plan.model is None:
            raise ProxyError(400, "model: a model is required", "invalid_request")
        body = await _refusing(
            openai_body(
                exchange.request_body, model=plan.model, options=options, stream=plan.stream
            )
        )
        own_key = plan.target.api_key is not None
        try:
            upstream = await self._client.open(
                "POST", URL(plan.url, encoded=True), plan.headers, body
            )
        except ProxyError as err:
            reason = transport_failure(err)
            if reason is None:
                raise
            return Verdict(reason, None, err.message, raising(err))
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in upstream.raw_headers]
        exchange.response_headers = raw_headers
        try:
            if not 200 <= upstream.status < 300:
                return await self._error(exchange, upstream, raw_headers, own_key)
            if plan.stream:
                return await self._streamed(request, exchange, plan, upstream, own_key)
            return await self._whole(exchange, plan, upstream, own_key)
        except BaseException:
            upstream.close()  # the verdict owns it only once there is one
            raise

    # ---- answers ------------------------------------------------------------------

    async def _error(
        self,
        exchange: Exchange,
        upstream: aiohttp.ClientResponse,
        raw_headers: Headers,
        own_key: bool,
    ) -> Verdict:
        status = upstream.status
        try:
            raw = await _read_capped(self._client, upstream, ERROR_BODY_LIMIT, clip=True) or b""
        except (TimeoutError, aiohttp.ClientError):
            raw = b""  # the status alone still says what went wrong
        finally:
            upstream.close()
        if 300 <= status < 400:
            err = ProxyError(
                502,
                f"The OpenAI-format backend answered {status}; redirects are not followed",
                "upstream_redirect",
            )
            return Verdict(None, status, err.message, raising(err))
        new_status, body, headers = anthropic_error_from_openai(status, raw, raw_headers)
        reason = failure_reason(status, own_key=own_key)
        message = _message_of(body)
        deliver = self._out.buffered(exchange, new_status, headers, body)
        counts = reason is not None and breaker_counts(reason, own_key=own_key)
        return Verdict(
            reason,
            status,
            f"backend status {status}: {message}",
            deliver,
            counts_for_breaker=counts,
        )

    async def _whole(
        self,
        exchange: Exchange,
        plan: UpstreamPlan,
        upstream: aiohttp.ClientResponse,
        own_key: bool,
    ) -> Verdict:
        status = upstream.status
        try:
            raw = await _read_capped(self._client, upstream, COMPLETION_LIMIT)
            if raw is None:
                too_large = f"The OpenAI-format backend's answer is over {COMPLETION_LIMIT} bytes"
                raise BackendFailure(502, "api_error", too_large)
            completion = parse_completion(raw)
            message = from_openai_response(
                completion,
                model=plan.model or "",
                request_id=exchange.request_id,
                stop_sequences=_stop_sequences(exchange),
            )
        except TimeoutError:
            s, body, headers = timeout_error(_silence(self._client))
            return self._failed(exchange, "timeout", status, s, body, headers, own_key)
        except aiohttp.ClientError as exc:
            failure = BackendFailure(
                502, "api_error", f"The OpenAI-format backend's answer broke: {exc}"
            )
            return self._failed(exchange, "broken", status, *failure.response(), own_key)
        except BackendFailure as failure:
            reason = failure_in_answer(failure.status, own_key=own_key)
            return self._failed(exchange, reason, status, *failure.response(), own_key)
        finally:
            upstream.close()
        model = completion.get("model")
        exchange.backend_model = model if isinstance(model, str) else None
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [("content-type", "application/json"), *kept_headers(exchange.response_headers)]
        return Verdict(None, status, None, self._out.buffered(exchange, 200, headers, body))

    async def _streamed(
        self,
        request: Request,
        exchange: Exchange,
        plan: UpstreamPlan,
        upstream: aiohttp.ClientResponse,
        own_key: bool,
    ) -> Verdict:
        status = upstream.status
        translator = OpenAIStreamTranslator(
            model=plan.model or "",
            request_id=exchange.request_id,
            stop_sequences=_stop_sequences(exchange),
        )
        reader = TranslatingReader(self._settings, self._client, translator)
        try:
            first = await reader.read_chunk(upstream)
        except TimeoutError:
            upstream.close()
            s, body, headers = timeout_error(_silence(self._client))
            return self._failed(exchange, "timeout", status, s, body, headers, own_key)
        except aiohttp.ClientError as exc:
            upstream.close()
            failure = BackendFailure(
                502, "api_error", f"The OpenAI-format backend's stream broke: {exc}"
            )
            return self._failed(exchange, "broken", status, *failure.response(), own_key)
        failure = translator.failure
        if failure is not None and not translator.started:
            upstream.close()
            reason = failure_in_answer(failure.status, own_key=own_key)
            return self._failed(exchange, reason, status, *failure.response(), own_key)
        reader.push(first)
        if plan.demote:
            return Verdict(
                None, status, None, self._out.folded(exchange, upstream, reader), upstream.close
            )
        return Verdict(
            None,
            status,
            None,
            self._out.stream(request, exchange, upstream, reader),
            upstream.close,
        )

    def _failed(
        self,
        exchange: Exchange,
        reason: str | None,
        status: int,
        new_status: int,
        body: bytes,
        headers: Headers,
        own_key: bool,
    ) -> Verdict:
        """A 200 answer that failed before the client got a byte: like an error status."""
        message = _message_of(body)
        deliver = self._out.buffered(exchange, new_status, headers, body)
        counts = reason is not None and breaker_counts(reason, own_key=own_key)
        return Verdict(reason, status, message, deliver, counts_for_breaker=counts)

    def _estimate(self, exchange: Exchange, body: bytes) -> Verdict:
        deliver = self._out.buffered(exchange, 200, [("content-type", "application/json")], body)
        return Verdict(None, None, None, deliver, outcome="estimated")


async def _refusing(work: Awaitable[bytes]) -> bytes:
    """The translation's answer; a request it refuses is the client's 400."""
    try:
        return await work
    except RequestRefused as refused:
        raise ProxyError(400, refused.message, "invalid_request") from None


async def _read_capped(
    client: UpstreamClient, upstream: aiohttp.ClientResponse, limit: int, *, clip: bool = False
) -> bytes | None:
    """The whole body, each read bounded by the idle timeout. Past `limit`: None, or
    with `clip` the first `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await client.read_chunk(upstream):
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            return b"".join(chunks)[:limit] if clip else None
    return b"".join(chunks)


def _stop_sequences(exchange: Exchange) -> list[str]:
    stops = (exchange.request_json or {}).get("stop_sequences")
    if isinstance(stops, list) and all(isinstance(s, str) for s in stops):
        return stops
    return []


def _silence(client: UpstreamClient) -> str:
    return (
        f"The OpenAI-format backend sent nothing for {client.idle_timeout:g}s "
        "(UPSTREAM_READ_IDLE_TIMEOUT)"
    )


def _message_of(body: bytes) -> str:
    try:
        error = json.loads(body).get("error") or {}
        return str(error.get("message") or "")[:300]
    except (ValueError, AttributeError):
        return body[:300].decode("utf-8", "replace")
