"""One structured line per failed forward, for grepping and log pipelines.

`key=value` pairs (values quoted when they contain spaces or quotes) followed by
the human-readable line. Never includes credentials or bodies: the query, the
upstream URL and the error text pass through the credential rule
(streaming.credentials), and no header but `anthropic-beta` is printed. The fields and
their spelling are the seed's (`stream=true`, `ctx_err=<nil>`), so a log pipeline
written for it reads ours; `status`, `reason` and `error` follow them.
"""

from __future__ import annotations

import logging

from streaming.credentials import redact_query, redact_text, redact_url
from streaming.exchange import Exchange, Outcome
from streaming.headers import get_header

logger = logging.getLogger("proxy.forward")

# Go's spelling of a nil error and of the request context's two errors.
NIL = "<nil>"
CANCELED = "context canceled"
DEADLINE_EXCEEDED = "context deadline exceeded"


def _quote(value: object) -> str:
    if isinstance(value, bool):  # Go's %t, not Python's True/False
        return "true" if value else "false"
    text = NIL if value is None else str(value)
    # logfmt: only spaces, quotes, backslashes and control characters need quoting.
    if text == "" or any(c in text for c in ' "\\\n\r\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        return f'"{escaped}"'
    return text


def context_error(exchange: Exchange) -> str | None:
    """The seed's `ctx_err` (Go's `r.Context().Err()` when the forward failed): was
    the failure the client's doing or the upstream's? `context canceled`: the client
    had gone away; `context deadline exceeded`: the request's own whole-forward
    budget ran out (GET /v1/models' discovery budget); None (`<nil>`): the client
    was still waiting, so the upstream or the proxy failed on its own. A timeout
    waiting for the upstream is not the request's deadline (Go's transport timeout
    left ctx_err nil too)."""
    if exchange.outcome is Outcome.CLIENT_CLOSED:
        return CANCELED
    if exchange.error_reason == "models_deadline":
        return DEADLINE_EXCEEDED
    return None


def failure_fields(exchange: Exchange, error: str) -> dict[str, object]:
    body = exchange.request_json or {}
    return {
        "request_id": exchange.request_id,
        "model": exchange.model or "-",
        "stream": exchange.stream_requested,
        "body_bytes": len(exchange.request_body),
        "has_thinking": isinstance(body.get("thinking"), dict),
        "anthropic_beta": get_header(exchange.request_headers, "anthropic-beta") or "",
        "query": redact_query(exchange.query),
        "elapsed": f"{exchange.elapsed_ms() / 1000:.3f}s",
        "ctx_err": context_error(exchange),
        "status": exchange.status or 0,
        "reason": exchange.error_reason or "",
        # An error may quote the URL it failed on, query and all.
        "error": redact_text(error),
    }


def format_fields(fields: dict[str, object]) -> str:
    return " ".join(f"{key}={_quote(value)}" for key, value in fields.items())


def log_forward_failure(exchange: Exchange, error: str) -> None:
    logger.warning("forward_failed %s", format_fields(failure_fields(exchange, error)))
    logger.warning(
        "Forward of %s %s to %s failed after %.3fs: %s",
        exchange.method,
        exchange.path,
        redact_url(exchange.upstream_url) or "upstream",
        exchange.elapsed_ms() / 1000,
        redact_text(error),
    )
