"""One structured line per failed forward, for grepping and log pipelines.

`key=value` pairs (values quoted when they contain spaces or quotes) followed by
the human-readable line. Never includes credentials or bodies.
"""

from __future__ import annotations

import logging

from streaming.exchange import Exchange
from streaming.headers import get_header

logger = logging.getLogger("proxy.forward")


def _quote(value: object) -> str:
    text = str(value)
    # logfmt: only spaces, quotes, backslashes and control characters need quoting.
    if text == "" or any(c in text for c in ' "\\\n\r\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        return f'"{escaped}"'
    return text


def failure_fields(exchange: Exchange, error: str) -> dict[str, object]:
    body = exchange.request_json or {}
    return {
        "request_id": exchange.request_id,
        "model": exchange.model or "-",
        "stream": exchange.stream_requested,
        "body_bytes": len(exchange.request_body),
        "has_thinking": isinstance(body.get("thinking"), dict),
        "anthropic_beta": get_header(exchange.request_headers, "anthropic-beta") or "",
        "query": exchange.query,
        "elapsed": f"{exchange.elapsed_ms() / 1000:.3f}s",
        "status": exchange.status or 0,
        "reason": exchange.error_reason or "",
        "error": error,
    }


def format_fields(fields: dict[str, object]) -> str:
    return " ".join(f"{key}={_quote(value)}" for key, value in fields.items())


def log_forward_failure(exchange: Exchange, error: str) -> None:
    logger.warning("forward_failed %s", format_fields(failure_fields(exchange, error)))
    logger.warning(
        "Forward of %s %s to %s failed after %.3fs: %s",
        exchange.method,
        exchange.path,
        exchange.upstream_url or "upstream",
        exchange.elapsed_ms() / 1000,
        error,
    )
