"""Turns each finished exchange into metric samples (off the response path).

Two halves, in two processes: `record` runs in the worker on what the transport
knows (status, timings, disconnects, transport failures); `record_content` runs
in the recorder process once the body is decoded and folded (tokens, cost, and
failures only the stream itself shows, such as `event: error`).
"""

from __future__ import annotations

from collections.abc import Callable

from metrics import registry as m
from metrics.labels import ModelLabels, endpoint_label, status_class
from streaming.exchange import Exchange, Outcome
from streaming.usage import Usage, response_message, usage_of

# (model, usage) -> USD, or None when the model has no price.
Pricer = Callable[[str | None, Usage], float | None]


class MetricsRecorder:
    def __init__(self, pricer: Pricer | None = None) -> None:
        self._models = ModelLabels()
        self.pricer = pricer

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
            m.UPSTREAM_ERRORS.labels(_reason(exchange)).inc()

    def record_content(self, exchange: Exchange, *, judged_stream_failure: bool) -> None:
        """Recorder side, once the exchange is folded. `judged_stream_failure`: the
        fold turned a completed relay into an upstream error (the worker counted
        it as completed)."""
        if judged_stream_failure:
            m.UPSTREAM_ERRORS.labels(_reason(exchange)).inc()
        if endpoint_label(exchange.path) != "/v1/messages":
            return
        model = self._models(exchange.routed_model or exchange.model)
        usage = usage_of(response_message(exchange))
        if usage is None:
            return
        for kind, count in usage.by_type().items():
            if count:
                m.TOKENS.labels(kind, model).inc(count)
        if self.pricer is not None:
            cost = self.pricer(exchange.routed_model or exchange.model, usage)
            if cost is None:
                m.UNPRICED.labels(model).inc()
            elif cost > 0:
                m.COST.labels(model).inc(cost)


def _reason(exchange: Exchange) -> str:
    # A fixed vocabulary: reasons are set by the proxy, never copied from input.
    reason = exchange.error_reason or "unknown"
    if reason.startswith("upstream status "):
        return "status_" + status_class(exchange.status)
    if reason.startswith("stream error"):
        return "stream_error"
    return reason if reason.replace("_", "").isalpha() and len(reason) < 40 else "other"
