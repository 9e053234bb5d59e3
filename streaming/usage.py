"""Token usage of a finished exchange, read from the message the client received.

Two readings of the upstream's `usage` object: `usage_of` gives the five billed
counters as plain numbers (metrics, totals), `usage_record` keeps the object
verbatim for the log, with those counters made safe to `$inc`/`$sum`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from streaming.exchange import Exchange
from streaming.observer import decoded_body

# Past this, BSON cannot hold the number as an int: garbage, not a count.
MAX_COUNT = 2**63 - 1
_5M = "ephemeral_5m_input_tokens"
_1H = "ephemeral_1h_input_tokens"


@dataclass(frozen=True, slots=True)
class Usage:
    input: int = 0
    output: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    # Part of `output` (the billed, inclusive total): never added to `total`.
    thinking: int = 0

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

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input=self.input + other.input,
            output=self.output + other.output,
            cache_write_5m=self.cache_write_5m + other.cache_write_5m,
            cache_write_1h=self.cache_write_1h + other.cache_write_1h,
            cache_read=self.cache_read + other.cache_read,
            thinking=self.thinking + other.thinking,
        )


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


def is_count(value: object) -> TypeGuard[int]:
    """A token count as the API sends it: an int (not a bool) BSON can hold, ≥ 0."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _int(value: object) -> int:
    return value if is_count(value) else 0


def raw_usage(message: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The message's `usage` object as the upstream sent it (None for an error body
    or a message without one)."""
    if not message or message.get("type") == "error":
        return None
    raw = message.get("usage")
    return raw if isinstance(raw, dict) else None


def thinking_tokens(raw: Mapping[str, Any]) -> int | None:
    """`output_tokens_details.thinking_tokens` when the upstream sent a count."""
    details = raw.get("output_tokens_details")
    value = details.get("thinking_tokens") if isinstance(details, Mapping) else None
    return value if is_count(value) else None


def counts(raw: Mapping[str, Any]) -> Usage:
    created = _int(raw.get("cache_creation_input_tokens"))
    split = raw.get("cache_creation")
    if isinstance(split, Mapping):
        five, hour = _int(split.get(_5M)), _int(split.get(_1H))
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
        thinking=thinking_tokens(raw) or 0,
    )


def usage_of(message: dict[str, Any] | None) -> Usage | None:
    raw = raw_usage(message)
    return None if raw is None else counts(raw)


def usage_record(raw: Mapping[str, Any], usage: Usage | None = None) -> dict[str, Any]:
    """The usage object for the log: every key the upstream sent, in its order,
    nested values as sent; the standard counters are guaranteed non-negative ints
    (a count the upstream sent is kept as sent, a missing, null or garbage one
    becomes what `counts` reads), so `$inc`/`$sum` readers never meet a null."""
    usage = usage or counts(raw)
    record = dict(raw)
    for key, value in (
        ("input_tokens", usage.input),
        ("output_tokens", usage.output),
        ("cache_creation_input_tokens", usage.cache_write),
        ("cache_read_input_tokens", usage.cache_read),
    ):
        if not is_count(record.get(key)):
            record[key] = value
    sent = raw.get("cache_creation")
    split = dict(sent) if isinstance(sent, Mapping) else {}
    for key, value in ((_5M, usage.cache_write_5m), (_1H, usage.cache_write_1h)):
        if not is_count(split.get(key)):
            split[key] = value
    record["cache_creation"] = split
    return record
