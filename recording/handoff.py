"""A finished exchange ↔ the journal's metadata dict.

`encode_exchange` runs on the journal's writer thread, never on the event loop:
it is where credentials are replaced by fingerprints, so none reaches the disk.
`decode_exchange` runs in the recorder and gives back an `Exchange` the
document builder reads like the one the relay filled in, with its bodies.
The metadata holds only what `marshal` can carry (str, int, float, bool, None,
lists, dicts).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from recording.document import client_key
from streaming.credentials import redact_query, redact_url, sanitize_headers
from streaming.exchange import Exchange, Outcome
from streaming.jsonbody import parse_json_object

# `redact_query` is re-exported: the credential rule lives in streaming.credentials
# (the forwarder's log lines apply it too), the journal is where it must hold.
__all__ = ["decode_exchange", "encode_exchange", "redact_query", "stored_headers"]

_SCALARS = (
    "request_id",
    "method",
    "path",
    "model",
    "stream_requested",
    "provider",
    "routed_model",
    "route_rule",
    "demoted",
    "status",
    "is_sse",
    "response_encoding",
    "response_clipped",
    "response_bytes",
    "ttfb_ms",
    "duration_ms",
    "error_reason",
    # Providers: the format that answered, the model it reported, every attempt.
    "provider_format",
    "backend_model",
    "attempts",
)


def encode_exchange(exchange: Exchange) -> dict[str, Any]:
    # Runs once per request on the journal thread, which shares the worker's GIL:
    # kept to plain comprehensions. marshal refuses subclasses of str, which the
    # server hands out for the method, path and header names and values.
    meta: dict[str, Any] = {name: getattr(exchange, name) for name in _SCALARS}
    meta["method"] = str(exchange.method)
    meta["path"] = str(exchange.path)
    meta["query"] = redact_query(str(exchange.query))
    meta["upstream_url"] = redact_url(exchange.upstream_url)
    meta["request_headers"] = stored_headers(exchange.request_headers)
    meta["response_headers"] = stored_headers(exchange.response_headers)
    meta["client_key"] = client_key(exchange.request_headers)
    meta["request_parsed"] = exchange.request_json is not None
    meta["started_at"] = exchange.started_at.timestamp()
    meta["completed_at"] = exchange.completed_at.timestamp() if exchange.completed_at else None
    meta["outcome"] = exchange.outcome.value if exchange.outcome else None
    return meta


def stored_headers(headers: list[tuple[str, str]]) -> list[list[str]]:
    """Plain [name, value] pairs, credentials replaced by their fingerprints (by
    rule: see streaming.credentials)."""
    return sanitize_headers(headers)


def decode_exchange(meta: dict[str, Any], request_body: bytes, response_body: bytes) -> Exchange:
    exchange = Exchange(
        method=str(meta.get("method") or ""),
        path=str(meta.get("path") or ""),
        query=str(meta.get("query") or ""),
        request_headers=_pairs(meta.get("request_headers")),
        request_body=request_body,
    )
    for name in _SCALARS:
        if name in meta and name not in ("method", "path"):
            setattr(exchange, name, meta[name])
    exchange.upstream_url = meta.get("upstream_url")
    exchange.response_headers = _pairs(meta.get("response_headers"))
    exchange.credentials_redacted = True
    exchange.client_key = meta.get("client_key")
    exchange.started_at = _time(meta.get("started_at")) or exchange.started_at
    exchange.completed_at = _time(meta.get("completed_at"))
    outcome = meta.get("outcome")
    exchange.outcome = Outcome(outcome) if outcome in Outcome._value2member_map_ else None
    if meta.get("request_parsed"):
        exchange.request_json = parse_json_object(request_body)
    if exchange.is_sse:
        exchange.response_chunks = [response_body] if response_body else []
    elif response_body or exchange.status is not None:
        exchange.response_body = response_body
    return exchange


def _pairs(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return []
    return [(str(p[0]), str(p[1])) for p in value if isinstance(p, list | tuple) and len(p) == 2]


def _time(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None
