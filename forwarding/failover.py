"""Failover: a provider that fails before the client got a byte hands the request on.

`run_chain` tries the planned provider; when it fails in a way another provider
may not (see `failure_reason`) and it names a `fallback_provider`, the request
goes there (with the model its `fallback_models` names), and so on down the
chain, which the config loader proved ends. Each provider's circuit breaker
(forwarding.breaker) is asked first: an open one is skipped straight to its
fallback, or answered at once with a 529 when it has none.

A failure is only ever judged before the answer starts: the status line (429,
529, 5xx), a connection that could not be made, no response headers in time, or
an OpenAI-format answer that failed before its first translated byte. Once the
client has a byte the answer is the client's, failures included: a stream that
dies midway ends with an `event: error`, never a second answer from elsewhere.

Every provider tried is noted on the exchange (`Exchange.attempts`) for the
request log: `answered`, `failover` (failed, the next provider took over),
`failed` (failed, and its error is what the client got), `skipped` (breaker
open), `refused` (the proxy refused the request for it), `estimated`
(count_tokens answered by the proxy for an OpenAI-format provider).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sanic.response import HTTPResponse

from control.plan import UpstreamPlan
from forwarding.breaker import Breaker, BreakerBoard
from forwarding.failure_log import failure_fields, format_fields
from metrics.providers import count_failover
from streaming.errors import ProxyError, error_body
from streaming.exchange import Exchange, Outcome

logger = logging.getLogger("proxy.failover")

PROXY_REQUEST_ID_HEADER = "x-proxy-request-id"
# ProxyError reasons of a request that never reached the provider's answer.
_TRANSPORT_REASONS = {
    "upstream_unreachable": "unreachable",
    "upstream_failed": "unreachable",
    "upstream_header_timeout": "timeout",
}

Deliver = Callable[[], Awaitable[HTTPResponse | None]]


def _nothing() -> None:
    return None


@dataclass(slots=True)
class Verdict:
    """What one provider did with the request, decided before the client got anything.

    `failure`: a `metrics.providers.FAILOVER_REASONS` value when another provider
    may answer instead. `deliver()` gives the client this provider's answer (its
    error, if it failed and nothing else answers); `discard()` drops it."""

    failure: str | None
    status: int | None  # what the provider itself answered; None: nothing
    error: str | None
    deliver: Deliver
    discard: Callable[[], None] = _nothing
    counts_for_breaker: bool = True  # a failure the provider's breaker counts
    outcome: str = "answered"  # the attempt's outcome when this answer is delivered


def failure_reason(status: int, *, own_key: bool) -> str | None:
    """Whether a provider's HTTP status lets another provider answer instead.

    429 and 5xx (529 included): the provider cannot answer now, another may.
    402 only when the provider uses its own key (`api_key_env`): the operator's
    account is out of credit, which the fallback is there for; with the client's
    own key it is that client's billing, and the client must see it."""
    if status == 429:
        return "rate_limited"
    if status == 402:
        return "billing" if own_key else None
    if status in (503, 529):
        return "overloaded"
    if 500 <= status <= 599:
        return "server_error"
    return None


def failure_in_answer(status: int, *, own_key: bool) -> str | None:
    """As `failure_reason`, for an error found inside a 200 answer (an OpenAI-format
    error chunk or body) before the client got a byte; `status` is the status the
    client would be told."""
    if status == 504:
        return "timeout"
    reason = failure_reason(status, own_key=own_key)
    return "broken" if reason == "server_error" else reason


def breaker_counts(reason: str, *, own_key: bool) -> bool:
    """A rate limit or billing error under the client's own key is that client's:
    it must not open the breaker for every other client of the provider."""
    return own_key or reason not in ("rate_limited", "billing")


def raising(err: ProxyError) -> Deliver:
    """The answer of a request that got none: the proxy's own error for it."""

    async def deliver() -> None:
        raise err

    return deliver


def transport_failure(err: ProxyError) -> str | None:
    """The failover reason of a request that got no answer at all, or None."""
    return _TRANSPORT_REASONS.get(err.reason)


@dataclass(slots=True)
class Chain:
    """One request's walk down its providers."""

    exchange: Exchange
    breakers: BreakerBoard
    attempt: Callable[[UpstreamPlan], Awaitable[Verdict]]
    next_plan: Callable[[UpstreamPlan], UpstreamPlan | None]
    note: Callable[[UpstreamPlan], None]  # the exchange now describes this provider
    attempts: list[dict[str, Any]] = field(default_factory=list)

    async def run(self, plan: UpstreamPlan) -> HTTPResponse | None:
        self.exchange.attempts = self.attempts
        while True:
            self.note(plan)
            breaker = self.breakers.get(plan.provider) if plan.target is not None else None
            ticket = breaker.admit() if breaker is not None else None
            if breaker is not None and ticket is None:
                fallback = self.next_plan(plan)
                retry = breaker.retry_after()
                self._record(plan, None, "skipped", f"circuit breaker open (retry in {retry}s)")
                if fallback is None:
                    return circuit_open_answer(self.exchange, breaker)
                self._hand_over(plan, fallback, "circuit_open", None)
                plan = fallback
                continue
            started = time.perf_counter()
            try:
                verdict = await self.attempt(plan)
            except BaseException as exc:  # no verdict on the provider: say why, pass it on
                if breaker is not None and ticket is not None:
                    breaker.released(ticket)
                self._record(plan, None, *_unanswered(exc), started)
                raise
            if breaker is not None and ticket is not None:
                if verdict.failure is None:
                    breaker.succeeded(ticket)
                elif verdict.counts_for_breaker:
                    breaker.failed(ticket)
                else:
                    breaker.released(ticket)
            fallback = self.next_plan(plan) if verdict.failure is not None else None
            if verdict.failure is not None and fallback is not None:
                verdict.discard()
                self._record(plan, verdict.status, "failover", verdict.error, started)
                self._hand_over(plan, fallback, verdict.failure, verdict.status)
                plan = fallback
                continue
            outcome = "failed" if verdict.failure is not None else verdict.outcome
            entry = self._record(plan, verdict.status, outcome, verdict.error, started)
            try:
                return await verdict.deliver()
            finally:
                entry["ms"] = _ms_since(started)

    def _record(
        self,
        plan: UpstreamPlan,
        status: int | None,
        outcome: str,
        error: str | None,
        started: float | None = None,
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "provider": plan.provider,
            "format": plan.format.value,
            "model": plan.model,
            "status": status,
            "outcome": outcome,
            "error": error,
            "ms": _ms_since(started) if started is not None else 0,
        }
        self.attempts.append(entry)
        return entry

    def _hand_over(
        self, plan: UpstreamPlan, fallback: UpstreamPlan, reason: str, status: int | None
    ) -> None:
        count_failover(plan.provider, fallback.provider, reason)
        fields = failure_fields(self.exchange, reason)
        fields.update({"from": plan.provider, "to": fallback.provider, "provider_status": status})
        logger.warning("failover %s", format_fields(fields))


def circuit_open_answer(exchange: Exchange, breaker: Breaker) -> HTTPResponse:
    """The quick answer when the provider's breaker is open and no fallback is left:
    529 overloaded_error, which the SDKs and Claude Code retry, after `retry-after`."""
    retry = breaker.retry_after()
    message = (
        f"Provider {breaker.provider!r} is failing: its circuit breaker opened after "
        f"{breaker.settings.failures} consecutive failures and no fallback_provider is left; "
        f"retry in {retry}s"
    )
    body = error_body(529, message, exchange.request_id)
    exchange.status = 529
    exchange.response_chunks = [body]
    exchange.response_bytes = exchange.captured_bytes = len(body)
    exchange.mark_first_byte()
    exchange.finish(Outcome.UPSTREAM_ERROR, "circuit_open")
    headers = {
        "content-type": "application/json",
        "retry-after": str(retry),
        PROXY_REQUEST_ID_HEADER: exchange.request_id,
    }
    return HTTPResponse(body=body, status=529, headers=headers)


def _unanswered(exc: BaseException) -> tuple[str, str]:
    """(outcome, error) of an attempt that ended without a verdict."""
    if isinstance(exc, ProxyError):  # the proxy refused the request for this provider
        return ("refused" if exc.status < 500 else "error"), exc.message
    if isinstance(exc, asyncio.CancelledError):
        return "client_closed", "the client went away"
    return "error", f"{type(exc).__name__}: {exc}"[:300]


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
