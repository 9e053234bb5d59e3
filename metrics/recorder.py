"""Turns each finished exchange into metric samples (off the response path).

Two halves, in two processes: `record` runs in the worker on what the transport
knows (status, timings, disconnects, transport failures); `record_content` runs
in the recorder process once the body is decoded, folded and priced (tokens,
cost, and failures only the stream itself shows, such as `event: error`).
"""

from __future__ import annotations

from typing import Protocol

from metrics import registry as m
from metrics.labels import ModelLabels, endpoint_label, error_reason, status_class
from streaming.exchange import Exchange, Outcome
from streaming.usage import Usage


class PricedCost(Protocol):
    """What the metrics read of the recorder's cost (storage.pricing.Cost): the
    very object the request's document stores, so the two never disagree."""

    @property
    def usd(self) -> float | None: ...

    @property
    def unpriced(self) -> bool: ...

    @property
    def incomplete(self) -> bool: ...


class MetricsRecorder:
    def __init__(self) -> None:
        self._models = ModelLabels()

    def record(self, exchange: Exchange) -> None:
        endpoint = endpoint_label(exchange.path)
        model = self._models(exchange.routed_model or exchange.model)
        m.REQUESTS.labels(
            endpoint, model, status_class(exchange.status), str(exchange.stream_requested).lower()
        ).inc()
        if exchange.duration_ms is not None:
            m.DURATION.labels(endpoint, model).observe(exchange.duration_ms / 1000)
        if exchange.ttfb_ms is not None:
            m.TTFB.labels(endpoint, model).observe(exchange.ttfb_ms / 1000)
        if exchange.outcome is Outcome.CLIENT_CLOSED:
            m.CLIENT_DISCONNECTS.inc()
        elif exchange.outcome in (Outcome.UPSTREAM_ERROR, Outcome.PROXY_ERROR):
            m.UPSTREAM_ERRORS.labels(error_reason(exchange.error_reason, exchange.status)).inc()

    def record_content(
        self,
        exchange: Exchange,
        *,
        judged_stream_failure: bool,
        usage: Usage | None = None,
        cost: PricedCost | None = None,
        model: str | None = None,
    ) -> None:
        """Recorder side, once the exchange is folded and priced.
        `judged_stream_failure`: the fold turned a completed relay into an upstream
        error (the worker counted it as completed). `usage`, `cost` and `model`:
        as the request's document has them (recording.priced)."""
        if judged_stream_failure:
            m.UPSTREAM_ERRORS.labels(error_reason(exchange.error_reason, exchange.status)).inc()
        if usage is None:
            return
        label = self._models(model)
        for kind, count in usage.by_type().items():
            if count:
                m.TOKENS.labels(kind, label).inc(count)
        if cost is None:
            return
        if cost.unpriced:
            m.UNPRICED.labels(label).inc()
            return
        if cost.incomplete:
            m.COST_INCOMPLETE.labels(label).inc()
        if cost.usd:
            m.COST.labels(label).inc(cost.usd)
