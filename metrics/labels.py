"""Bounded label values: a client controls the path and the model string.

The fixed vocabularies below are also what `registry.initialise_known_series`
creates at start-up, so a dashboard query has a series (at 0) before the first
request instead of "No data", and `rate()` sees the first increment.
"""

from __future__ import annotations

import re

KNOWN_ENDPOINTS = frozenset(
    {"/v1/messages", "/v1/messages/count_tokens", "/v1/models", "/v1/messages/batches"}
)
OTHER_ENDPOINT = "/v1/other"
ENDPOINTS = (*sorted(KNOWN_ENDPOINTS), OTHER_ENDPOINT)
# No final status: the client left (or the proxy failed) before the upstream answered.
NO_STATUS = "none"
# 1xx is never a final answer through aiohttp, so it is not a class worth a series.
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", NO_STATUS)
STREAM_VALUES = ("true", "false")
# streaming.usage.Usage.by_type's keys (a test keeps the two equal).
TOKEN_TYPES = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
# The model label of a request without a model (GET /v1/models, a batch download):
# the one model value known before traffic, so model-labelled metrics exist at 0.
NO_MODEL = "none"

# Why an exchange counts as an upstream error. Set by the proxy, never copied from
# input: the reasons the forwarder gives (ProxyError / StreamBroken; a test reads
# them from forwarding/), the upstream's own error status, the recorder's verdict on
# a stream, and the two catch-alls.
UPSTREAM_ERROR_REASONS = (
    "upstream_header_timeout",
    "upstream_unreachable",
    "upstream_failed",
    "upstream_idle_timeout",
    "upstream_stream_broken",
    "upstream_redirect",
    "upstream_server_error",
    "models_deadline",
    "circuit_open",
    "invalid_json",
    "invalid_request",
    "invalid_header",
    "status_4xx",
    "status_5xx",
    "stream_error",
    "stream_incomplete",
    "internal_error",
    "unknown",
    "other",
)
_REASONS = frozenset(UPSTREAM_ERROR_REASONS)
# Exchange.finish / judge_stream texts that are not identifiers.
_REASON_TEXTS = {
    "internal error": "internal_error",
    "stream ended before message_stop": "stream_incomplete",
}

# Model ids look like `claude-sonnet-4-5-20250929`; anything else is folded.
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,79}$")
MAX_MODELS = 100


class ModelLabels:
    """Keeps at most MAX_MODELS distinct model labels per process; later ones are "other"."""

    def __init__(self, limit: int = MAX_MODELS) -> None:
        self._seen: set[str] = set()
        self._limit = limit

    def __call__(self, model: str | None) -> str:
        if not model:
            return NO_MODEL
        if not _MODEL_RE.match(model):
            return "invalid"
        if model in self._seen:
            return model
        if len(self._seen) >= self._limit:
            return "other"
        self._seen.add(model)
        return model


def endpoint_label(path: str) -> str:
    path = path.rstrip("/") or "/"
    return path if path in KNOWN_ENDPOINTS else OTHER_ENDPOINT


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else NO_STATUS


def error_reason(reason: str | None, status: int | None) -> str:
    """An exchange's `error_reason` folded into UPSTREAM_ERROR_REASONS."""
    if not reason:
        return "unknown"
    if reason.startswith("upstream status "):
        label = "status_" + status_class(status)
        return label if label in _REASONS else "other"
    if reason.startswith("stream error"):
        return "stream_error"
    reason = _REASON_TEXTS.get(reason, reason)
    return reason if reason in _REASONS else "other"
