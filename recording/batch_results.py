"""A Message Batches results download, priced at the batch rate (recorder process).

`GET /v1/messages/batches/{id}/results` answers JSONL: one
`{"custom_id", "result": {"type": "succeeded" | "errored" | "canceled" | "expired",
"message"?: {...}}}` per line. Each succeeded line is one message billed at the
Batch API rate; the download is where the proxy sees that usage (the create call
only queues the requests), so its document carries the sum. Read line by line:
a download can be large, and a body clipped at LOG_BODY_MAX_BYTES ends in a
partial line.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from storage.pricing import Cost, PriceTable
from streaming.exchange import Exchange
from streaming.observer import decoded_body
from streaming.usage import Usage, counts, raw_usage, thinking_tokens

RESULTS_PATH = re.compile(r"^/v1/messages/batches/[^/]+/results/?$")
BREAKDOWN_KEYS = ("input", "output", "cacheWrite5m", "cacheWrite1h", "cacheRead")
# Bounds on what one download adds to its document, however many results.
MAX_MODELS = 50
MAX_NOTES = 20


def is_batch_results(exchange: Exchange) -> bool:
    return (
        exchange.method.upper() == "GET"
        and RESULTS_PATH.match(exchange.path) is not None
        and isinstance(exchange.status, int)
        and exchange.status < 400
        and not exchange.is_sse
    )


@dataclass(slots=True)
class _CostSum:
    """Per-line Costs folded as they come (the lines are never all held)."""

    usd: float = 0.0
    breakdown: dict[str, float] = field(default_factory=lambda: dict.fromkeys(BREAKDOWN_KEYS, 0.0))
    priced: int = 0
    unpriced: int = 0
    incomplete: bool = False
    notes: dict[str, None] = field(default_factory=dict)
    modifiers: dict[str, float] | None = None
    priced_as: set[str | None] = field(default_factory=set)
    tiers: set[str | None] = field(default_factory=set)

    def add(self, cost: Cost) -> None:
        for note in cost.notes:
            self.note(note)
        if cost.unpriced or cost.usd is None:
            self.unpriced += 1
            return
        self.priced += 1
        self.usd += cost.usd
        for key, value in cost.breakdown.items():
            self.breakdown[key] = self.breakdown.get(key, 0.0) + value
        self.incomplete = self.incomplete or cost.incomplete
        # Only multipliers every priced result shares describe the sum.
        if self.modifiers is None:
            self.modifiers = dict(cost.modifiers)
        else:
            self.modifiers = {k: v for k, v in self.modifiers.items() if cost.modifiers.get(k) == v}
        self.priced_as.add(cost.priced_as)
        self.tiers.add(cost.tier)

    def note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes[text] = None

    def cost(self) -> Cost:
        if self.unpriced and not self.priced:
            return Cost(
                usd=None,
                breakdown={},
                unpriced=True,
                incomplete=False,
                notes=tuple(self.notes),
                modifiers={},
                priced_as=None,
                tier=None,
                iterations=None,
            )
        return Cost(
            usd=self.usd,
            breakdown=self.breakdown,
            unpriced=False,
            incomplete=self.incomplete,
            notes=tuple(self.notes),
            modifiers=self.modifiers or {},
            priced_as=_sole(self.priced_as),
            tier=_sole(self.tiers),
            iterations=None,
        )


def _sole(values: set[str | None]) -> str | None:
    return next(iter(values)) if len(values) == 1 else None


@dataclass(frozen=True, slots=True)
class BatchTotals:
    usage: dict[str, Any]  # the summed standard counters, shaped like a message's usage
    counts: Usage
    cost: Cost
    summary: dict[str, Any]  # the document's `batch`
    models: tuple[str, ...]


def batch_totals(exchange: Exchange, prices: PriceTable) -> BatchTotals | None:
    """The summed usage and cost of a results download; None without a body."""
    body = decoded_body(exchange)
    if body is None:
        return None
    total = Usage()
    thinking = False
    costs = _CostSum()
    models: dict[str, None] = {}
    lines = succeeded = unreadable = 0
    for line in io.BytesIO(body):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            unreadable += 1
            continue
        lines += 1
        result = item.get("result") if isinstance(item, dict) else None
        if not isinstance(result, Mapping) or result.get("type") != "succeeded":
            continue  # errored, canceled and expired requests are not billed
        succeeded += 1
        message = result.get("message")
        usage = raw_usage(message) if isinstance(message, dict) else None
        if usage is None:
            continue
        model = message.get("model") if isinstance(message, dict) else None
        model = model if isinstance(model, str) else None
        if model is not None and len(models) < MAX_MODELS:
            models[model] = None
        total += counts(usage)
        thinking = thinking or thinking_tokens(usage) is not None
        cost = prices.cost_of(model, usage, batch=True)
        if cost is not None:
            costs.add(cost)
    clipped = exchange.response_clipped
    if clipped:
        costs.note("body clipped at the capture limit: results past it are not counted")
    elif unreadable:
        costs.note(f"{unreadable} result lines could not be read")
    if costs.unpriced and costs.priced:
        costs.note(f"{costs.unpriced} results unpriced")
    if clipped or unreadable or (costs.unpriced and costs.priced):
        costs.incomplete = True
    usage_sum = _usage_dict(total, thinking)
    return BatchTotals(
        usage=usage_sum,
        counts=total,
        cost=costs.cost(),
        summary={
            "results": lines,
            "succeeded": succeeded,
            "models": list(models),
            "unpriced": costs.unpriced,
            "unreadable": unreadable,
            "clipped": clipped,
        },
        models=tuple(models),
    )


def _usage_dict(total: Usage, thinking: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": total.input,
        "cache_creation_input_tokens": total.cache_write,
        "cache_read_input_tokens": total.cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": total.cache_write_5m,
            "ephemeral_1h_input_tokens": total.cache_write_1h,
        },
        "output_tokens": total.output,
    }
    if thinking:
        usage["output_tokens_details"] = {"thinking_tokens": total.thinking}
    return usage
