"""The record of one exchange: what the relay saw, handed off for recording.

The relay fills it in as the request goes by; the worker hands it to the
journal (recording/) and the recorder process turns it into a document. Nothing
here does I/O, so building it can never slow or break a stream.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    COMPLETED = "completed"
    UPSTREAM_ERROR = "upstream_error"  # upstream answered 4xx/5xx or sent `event: error`
    CLIENT_CLOSED = "client_closed"  # the client went away before the end
    PROXY_ERROR = "proxy_error"  # the proxy could not complete the forward


@dataclass(slots=True)
class Exchange:
    method: str
    path: str
    query: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    # The body parsed as JSON, when it is a JSON object (messages, count_tokens). In
    # the worker only its small top-level members (model, stream, metadata, ...):
    # the whole body is parsed by the recorder (see forwarding/inspect.py).
    request_json: dict[str, Any] | None = None
    # Where the body's top-level members are (control.jsonbytes.ObjectLayout), so
    # that routing and demotion edit a large body without scanning it again.
    request_layout: Any = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _t0: float = field(default_factory=time.perf_counter)

    model: str | None = None
    stream_requested: bool = False
    upstream_url: str | None = None
    provider: str | None = None
    # Routing: the model the upstream was asked for when a rule rewrote it.
    routed_model: str | None = None
    route_rule: str | None = None
    # stream:false sent upstream as a stream and answered as JSON.
    demoted: bool = False
    # The wire format of the provider that answered (`anthropic`, `openai`).
    provider_format: str | None = None
    # The model an OpenAI-format backend said it used (its `model`); the client's
    # message names the model it was asked for.
    backend_model: str | None = None
    # Every provider tried, in order, failovers and circuit-breaker skips included:
    # {provider, format, model, status, outcome, error, ms} (plain values, so the
    # journal carries them as they are).
    attempts: list[dict[str, Any]] = field(default_factory=list)

    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    is_sse: bool = False
    # The response body as captured on the relay (still content-encoded), chunk by
    # chunk, up to LOG_BODY_MAX_BYTES; `response_clipped` says the rest was relayed
    # but not captured, `response_bytes` counts everything relayed.
    response_chunks: list[bytes] = field(default_factory=list)
    response_clipped: bool = False
    response_bytes: int = 0
    captured_bytes: int = 0  # sum of len(response_chunks), kept as they are taken
    # Non-SSE bodies as received (still content-encoded); see `response_encoding`.
    # Set by the recorder from the captured chunks.
    response_body: bytes | None = None
    response_encoding: str | None = None
    # SSE: the message folded from the events, and an `event: error` body if any.
    message: dict[str, Any] | None = None
    stream_error: dict[str, Any] | None = None
    stream_complete: bool = False
    observer_error: str | None = None
    # Parsed non-SSE response JSON, cached by streaming.usage.response_message.
    response_json: dict[str, Any] | None = None
    response_parsed: bool = False

    # Set when the exchange was rebuilt from the journal: its headers and query
    # already carry fingerprints instead of credentials, and `client_key` is the
    # fingerprint of the client's key computed before they were replaced.
    credentials_redacted: bool = False
    client_key: str | None = None

    ttfb_ms: float | None = None
    duration_ms: float | None = None
    completed_at: datetime | None = None
    outcome: Outcome | None = None
    error_reason: str | None = None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._t0) * 1000.0

    def mark_first_byte(self) -> None:
        if self.ttfb_ms is None:
            self.ttfb_ms = self.elapsed_ms()

    def finish(self, outcome: Outcome, reason: str | None = None) -> None:
        if self.outcome is not None:
            return  # the first verdict wins (e.g. client_closed over a later error)
        self.outcome = outcome
        self.error_reason = reason
        self.duration_ms = self.elapsed_ms()
        self.completed_at = datetime.now(UTC)

    def judge_stream(self) -> bool:
        """Once the stream is folded: a relay that completed still failed if the
        stream carried `event: error` or ended before `message_stop`. True when
        that turned the outcome into an upstream error."""
        if self.outcome is not Outcome.COMPLETED or not self.is_sse:
            return False
        if self.stream_error is not None:
            err = self.stream_error.get("error")
            kind = err.get("type") if isinstance(err, dict) else None
            self.error_reason = f"stream error: {kind or 'unknown'}"
        elif not self.stream_complete and not self.response_clipped:
            self.error_reason = "stream ended before message_stop"
        else:
            return False
        self.outcome = Outcome.UPSTREAM_ERROR
        return True
