"""One finished exchange → one MongoDB document (pure; `schemaVersion` 1).

Bodies are stored as the JSON *text* the client sent and received, not as BSON
sub-documents: BSON cannot hold every JSON value (integers past 2^63, some keys),
and a log that refuses a request it has already served would lose it. Everything
the dashboard, stats and conversations read is extracted into typed fields here,
once, at write time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from conversations.fields import conversation_fields
from recording.priced import Priced, price_exchange
from storage.pricing import PriceTable
from storage.ratelimits import parse_rate_limits
from streaming.credentials import fingerprint, sanitize_headers
from streaming.exchange import Exchange
from streaming.headers import get_header
from streaming.observer import decoded_body
from streaming.usage import response_message

SCHEMA_VERSION = 1
SESSION_HEADER = "x-claude-code-session-id"
_LEGACY_SESSION = re.compile(r"_session_([0-9a-fA-F-]{36})$")


def build_document(
    exchange: Exchange, prices: PriceTable, priced: Priced | None = None
) -> dict[str, Any]:
    """`priced`: the exchange's usage and cost when the caller already computed them
    (the recorder shares them with the metrics)."""
    body = exchange.request_json or {}
    req_headers = exchange.request_headers
    resp_headers = exchange.response_headers
    organization = get_header(resp_headers, "anthropic-organization-id")
    message = response_message(exchange)
    priced = priced or price_exchange(exchange, prices)
    rate_limit = parse_rate_limits(resp_headers, organization)

    document: dict[str, Any] = {
        **_identity(exchange),
        "model": priced.model,
        "originalModel": exchange.model,
        "routedModel": exchange.routed_model or exchange.model,
        "servedModel": priced.served_model,
        "provider": exchange.provider,
        "providerFormat": exchange.provider_format,
        "routeRule": exchange.route_rule,
        # Every provider tried (failovers and breaker skips included) and how many
        # times the request moved on to a fallback, for the log and for pipelines.
        "attempts": exchange.attempts,
        "failovers": _failovers(exchange.attempts),
        "userAgent": get_header(req_headers, "user-agent"),
        "contentType": get_header(req_headers, "content-type"),
        "isStreaming": exchange.stream_requested,
        "demoted": exchange.demoted,
        "messageCount": len(body["messages"]) if isinstance(body.get("messages"), list) else 0,
        "conversationHash": conversation_hash(body),
        "sessionId": session_id(req_headers, body),
        "organizationId": organization,
        "clientKeyFingerprint": (
            exchange.client_key if exchange.credentials_redacted else client_key(req_headers)
        ),
        "upstreamRequestId": _upstream_request_id(exchange),
        "statusCode": exchange.status,
        "responseTime": _ms(exchange.duration_ms),
        "timeToFirstByte": _ms(exchange.ttfb_ms),
        "stopReason": message.get("stop_reason") if message else None,
        "usage": priced.usage,
        "tokens": priced.counts.total if priced.counts else 0,
        "cost": priced.cost_document(),
        "unpriced": priced.unpriced,
        "costIncomplete": priced.incomplete,
        "outcome": exchange.outcome.value if exchange.outcome else None,
        "errorReason": exchange.error_reason,
        "request": {
            "headers": _stored_headers(exchange, req_headers),
            **_body_fields(exchange.request_body),
            "bodyBytes": len(exchange.request_body),
        },
        "response": {
            "statusCode": exchange.status,
            "headers": _stored_headers(exchange, resp_headers),
            **_response_body(exchange, message),
            "bodyBytes": exchange.response_bytes,
            "bodyClipped": exchange.response_clipped,
            "isStreaming": exchange.is_sse,
            "responseTime": _ms(exchange.duration_ms),
            "timeToFirstByte": _ms(exchange.ttfb_ms),
            "completedAt": exchange.completed_at,
            "streamComplete": exchange.stream_complete if exchange.is_sse else None,
            "streamError": _stream_error(exchange.stream_error),
            "streamErrorBody": exchange.stream_error,
            "rateLimit": rate_limit,
            "retryAfter": rate_limit.get("retryAfter") if rate_limit else None,
            "observerError": exchange.observer_error,
        },
    }
    if priced.batch is not None:
        document["batch"] = priced.batch
    document["conversation"] = conversation_fields(
        exchange, body, message, document["sessionId"], document["conversationHash"]
    )
    return document


def _failovers(attempts: list[dict[str, Any]]) -> int:
    # Every attempt but the last handed the request on (failed over, or skipped).
    return max(0, len(attempts) - 1)


def _upstream_request_id(exchange: Exchange) -> str | None:
    """Anthropic's `request-id`; an OpenAI-format backend's `x-request-id`."""
    found = get_header(exchange.response_headers, "request-id")
    if found is None and exchange.provider_format == "openai":
        found = get_header(exchange.response_headers, "x-request-id")
    return found


def _identity(exchange: Exchange) -> dict[str, Any]:
    return {
        "_id": exchange.request_id,
        "schemaVersion": SCHEMA_VERSION,
        "requestId": exchange.request_id,
        "timestamp": exchange.started_at,
        "method": exchange.method,
        "endpoint": exchange.path,
        "query": exchange.query,
    }


def minimal_document(exchange: Exchange, error: Exception) -> dict[str, Any]:
    """The record of an exchange whose full document could not be built: what is
    certain, with the bodies as sent, so the request is never missing from the log."""
    return {
        **_identity(exchange),
        "model": exchange.routed_model or exchange.model,
        "originalModel": exchange.model,
        "statusCode": exchange.status,
        "responseTime": _ms(exchange.duration_ms),
        "timeToFirstByte": _ms(exchange.ttfb_ms),
        "usage": None,
        "tokens": 0,
        "cost": None,
        "outcome": exchange.outcome.value if exchange.outcome else None,
        "errorReason": exchange.error_reason,
        "recordError": f"{type(error).__name__}: {error}"[:500],
        "request": {
            "headers": _stored_headers(exchange, exchange.request_headers),
            **_body_fields(exchange.request_body),
            "bodyBytes": len(exchange.request_body),
        },
        "response": {
            "statusCode": exchange.status,
            "headers": _stored_headers(exchange, exchange.response_headers),
        },
    }


def _stored_headers(exchange: Exchange, headers: list[tuple[str, str]]) -> list[list[str]]:
    if exchange.credentials_redacted:  # fingerprinted before they reached the journal
        return [[name, value] for name, value in headers]
    return sanitize_headers(headers)


def client_key(headers: list[tuple[str, str]]) -> str | None:
    key = get_header(headers, "x-api-key")
    if key:
        return fingerprint(key)
    auth = get_header(headers, "authorization") or ""
    scheme, _, token = auth.strip().partition(" ")
    return fingerprint(token.strip()) if scheme.lower() == "bearer" and token.strip() else None


def session_id(headers: list[tuple[str, str]], body: dict[str, Any]) -> str | None:
    header = get_header(headers, SESSION_HEADER)
    if header and header.strip():
        return header.strip()[:128]
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str):
        return None
    if user_id.startswith("{"):
        try:
            parsed = json.loads(user_id)
        except (ValueError, RecursionError):  # deep nesting is not a session
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("session_id"), str):
            return parsed["session_id"][:128]
    match = _LEGACY_SESSION.search(user_id)
    return match.group(1) if match else None


def conversation_hash(body: dict[str, Any]) -> str | None:
    """Groups requests of one conversation when no session id exists: the hash of the
    first user message with text, whitespace-normalised. `role: "system"` messages
    (mid-conversation system prompts, which a client can add or change as the
    conversation goes on) never count."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for item in messages:
        if isinstance(item, dict) and item.get("role") == "user":
            text = _text_of(item.get("content"))
            if text:
                normalised = " ".join(text.split())
                return hashlib.sha256(normalised.encode()).hexdigest()[:16]
    return None


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b["text"]
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    return ""


def _body_fields(raw: bytes) -> dict[str, Any]:
    try:
        return {"body": raw.decode("utf-8"), "bodyEncoding": "utf-8"}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(raw).decode(), "bodyEncoding": "base64"}


def _response_body(exchange: Exchange, message: dict[str, Any] | None) -> dict[str, Any]:
    if exchange.is_sse:
        # The stream folded into the message it amounts to (SSE itself is not kept).
        text = json.dumps(message, ensure_ascii=False) if message is not None else None
        return {"body": text, "bodyEncoding": "utf-8" if text is not None else None}
    body = decoded_body(exchange)
    if body is None:
        if exchange.response_body is None:
            return {"body": None, "bodyEncoding": None}
        return {
            "body": base64.b64encode(exchange.response_body).decode(),
            "bodyEncoding": f"base64;{exchange.response_encoding}",
        }
    return _body_fields(body)


def _stream_error(error: dict[str, Any] | None) -> str | None:
    if not error:
        return None
    inner = error.get("error")
    if isinstance(inner, dict):
        return f"{inner.get('type')}: {inner.get('message')}"
    return json.dumps(error)[:500]


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)
