"""Token usage of a finished exchange, read from the message the client received."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from streaming.exchange import Exchange
from streaming.observer import decoded_body


@dataclass(frozen=True, slots=True)
class Usage:
    input: int = 0
    output: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0

    @property
    def cache_write(self) -> int:
        return self.cache_write_5m + self.cache_write_1h

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_write + self.cache_read

    def by_type(self) -> dict[str, int]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_write_5m": self.cache_write_5m,
            "cache_write_1h": self.cache_write_1h,
            "cache_read": self.cache_read,
        }


def response_message(exchange: Exchange) -> dict[str, Any] | None:
    """The Messages API response as the client got it (folded from SSE, or the JSON)."""
    if exchange.message is not None:
        return exchange.message
    if not exchange.response_parsed:  # parsed once, for the metrics and the log
        exchange.response_parsed = True
        body = decoded_body(exchange)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        exchange.response_json = parsed if isinstance(parsed, dict) else None
    return exchange.response_json


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_of(message: dict[str, Any] | None) -> Usage | None:
    if not message or message.get("type") == "error":
        return None
    raw = message.get("usage")
    if not isinstance(raw, dict):
        return None
    created = _int(raw.get("cache_creation_input_tokens"))
    split = raw.get("cache_creation")
    if isinstance(split, dict):
        five, hour = (
            _int(split.get("ephemeral_5m_input_tokens")),
            _int(split.get("ephemeral_1h_input_tokens")),
        )
        # Older responses carry only the total: count the rest as 5-minute writes.
        five += max(0, created - five - hour)
    else:
        five, hour = created, 0
    return Usage(
        input=_int(raw.get("input_tokens")),
        output=_int(raw.get("output_tokens")),
        cache_write_5m=five,
        cache_write_1h=hour,
        cache_read=_int(raw.get("cache_read_input_tokens")),
    )
