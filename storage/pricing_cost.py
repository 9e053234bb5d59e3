"""The cost engine: the upstream's raw `usage` object → a `Cost` with its reasons.

How the parts of a bill combine (platform.claude.com pricing, fast-mode and
data-residency pages, checked 2026-12-06):

* per token kind: tokens x rate of the model that served them (a prompt-size
  tier is picked per sampling attempt from input + cache writes + cache reads);
* every rate is then multiplied by the request's modifiers, which stack
  multiplicatively and apply to all five token kinds alike: fast mode
  (`usage.speed == "fast"`, the model's own multiplier), US-only inference
  (`usage.inference_geo == "us"`, 1.1x on models that have it) and the Batch
  API (0.5x). Prompt-caching rates are multiples of input, so a modifier on
  input carries over to them; the docs say caching multipliers stack with these;
* with `usage.iterations[]` (server-side tool loops, compaction, fallback
  chains) the top-level counts cover only part of the work: the bill is the
  sum over the iterations, each at the model that ran it. An attempt declined
  before any output (a `message` entry with no output in a chain that a
  `fallback_message` entry ends) is not billed.

Nothing here raises on odd input: a usage object is upstream data, and a cost
that cannot be known is reported as unpriced or incomplete, never as $0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from storage.pricing_rates import ModelRates, Modifiers
from streaming.usage import Usage

Lookup = Callable[[str | None], ModelRates | None]

_MAX_TOKENS = 2**63 - 1  # BSON's int64: beyond it a count is garbage, not usage


@dataclass(frozen=True, slots=True)
class Cost:
    usd: float | None  # None only when unpriced; with incomplete=True a lower bound
    breakdown: dict[str, float]  # input, output, cacheWrite5m, cacheWrite1h, cacheRead
    unpriced: bool  # the model (or every iteration's model) is not in the table
    incomplete: bool  # some part could not be priced
    notes: tuple[str, ...]
    modifiers: dict[str, float]  # multipliers applied, e.g. {"batch": 0.5}
    priced_as: str | None
    tier: str | None
    iterations: tuple[dict[str, Any], ...] | None

    def document(self) -> dict[str, Any]:
        """The stored `cost` sub-document (camelCase keys, JSON/BSON-safe)."""
        return {
            "usd": self.usd,
            "breakdown": dict(self.breakdown),
            "pricedAs": self.priced_as,
            "tier": self.tier,
            "modifiers": dict(self.modifiers),
            "incomplete": self.incomplete,
            "notes": list(self.notes),
            "iterations": None if self.iterations is None else [dict(i) for i in self.iterations],
        }


def count(value: object) -> int:
    """A token count as the upstream should have sent it, else 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value if 0 <= value <= _MAX_TOKENS else 0


def tokens_of(raw: Mapping[str, Any]) -> Usage:
    created = count(raw.get("cache_creation_input_tokens"))
    split = raw.get("cache_creation")
    if isinstance(split, Mapping):
        five = count(split.get("ephemeral_5m_input_tokens"))
        hour = count(split.get("ephemeral_1h_input_tokens"))
        # Older responses carry only the total: the rest counts as 5-minute writes.
        five += max(0, created - five - hour)
    else:
        five, hour = created, 0
    return Usage(
        input=count(raw.get("input_tokens")),
        output=count(raw.get("output_tokens")),
        cache_write_5m=five,
        cache_write_1h=hour,
        cache_read=count(raw.get("cache_read_input_tokens")),
    )


@dataclass(frozen=True, slots=True)
class _Part:
    kind: str | None
    model: str | None
    tokens: Usage
    declined: bool = False


def _parts(
    raw: Mapping[str, Any], model: str | None, served: str | None
) -> tuple[list[_Part], bool]:
    """The sampling attempts to bill, and whether they came from `iterations`."""
    listed = raw.get("iterations")
    entries = [e for e in listed if isinstance(e, Mapping)] if isinstance(listed, list) else []
    if not entries:
        return [_Part(None, served or model, tokens_of(raw))], False
    kinds = [e.get("type") if isinstance(e.get("type"), str) else None for e in entries]
    last_fallback = max((i for i, k in enumerate(kinds) if k == "fallback_message"), default=-1)
    # An entry without a model ran on the requested model when a fallback chain
    # is involved (its declined first hop), else on the model that answered.
    default = (model or served) if last_fallback >= 0 else (served or model)
    parts = []
    for i, (entry, kind) in enumerate(zip(entries, kinds, strict=True)):
        named = entry.get("model")
        tokens = tokens_of(entry)
        declined = kind == "message" and i < last_fallback and tokens.output == 0
        parts.append(
            _Part(kind, named if isinstance(named, str) and named else default, tokens, declined)
        )
    return parts, True


def _short(model: str | None) -> str | None:
    # Model ids come from clients: a note must not grow with whatever they send.
    return model if model is None or len(model) <= 80 else model[:77] + "..."


class _Bill:
    """Accumulates the priced parts of one response."""

    def __init__(self, lookup: Lookup, modifiers: Modifiers, raw: Mapping[str, Any], batch: bool):
        self.lookup = lookup
        self.table_modifiers = modifiers
        self.fast = raw.get("speed") == "fast"
        self.geo_us = raw.get("inference_geo") == "us"
        self.batch = batch or raw.get("service_tier") == "batch"
        self.usd = 0.0
        self.breakdown = dict.fromkeys(
            ("input", "output", "cacheWrite5m", "cacheWrite1h", "cacheRead"), 0.0
        )
        self.notes: list[str] = []
        self.applied: dict[str, float] = {}
        self.incomplete = False
        self.priced = 0
        self.tiers: set[str | None] = set()

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def multiplier(self, rates: ModelRates) -> float:
        factor = 1.0
        if self.fast:
            if rates.fast is None:
                self.incomplete = True
                self.note(f"speed=fast: no published multiplier for {rates.id}")
            else:
                factor *= rates.fast
                self.applied["speed"] = rates.fast
        if self.geo_us:
            if rates.us_inference is None:
                self.incomplete = True
                self.note(f"inference_geo=us: not known whether {rates.id} costs more")
            elif rates.us_inference:
                factor *= self.table_modifiers.inference_geo_us
                self.applied["inferenceGeo"] = self.table_modifiers.inference_geo_us
        if self.batch:
            factor *= self.table_modifiers.batch
            self.applied["batch"] = self.table_modifiers.batch
        return factor

    def add(self, part: _Part) -> dict[str, Any]:
        rates = self.lookup(part.model)
        row: dict[str, Any] = {
            "type": part.kind,
            "model": part.model,
            "pricedAs": rates.id if rates else None,
            "usd": None,
            "unpriced": rates is None,
            "tier": None,
            "declined": part.declined,
        }
        if rates is not None:
            self.priced += 1
        if part.declined:
            # Free whatever the model: an unknown one does not make the bill incomplete.
            row["usd"] = 0.0
            self.note(f"attempt on {_short(part.model)} declined before any output: not billed")
            return row
        if rates is None:
            self.note(f"no price for {_short(part.model)!r}")
            return row
        tier, _ = rates.price.tier_for(part.tokens)
        parts = rates.price.breakdown(part.tokens, self.multiplier(rates))
        for key, value in parts.items():
            self.breakdown[key] += value
        usd = sum(parts.values())
        self.usd += usd
        self.tiers.add(tier)
        row["usd"], row["tier"] = usd, tier
        return row


def compute(
    lookup: Lookup,
    modifiers: Modifiers,
    model: str | None,
    usage: object,
    *,
    served_model: str | None = None,
    batch: bool = False,
) -> Cost | None:
    if usage is None:
        return None
    raw: Mapping[str, Any] = usage if isinstance(usage, Mapping) else {}
    model = model if isinstance(model, str) else None
    served = served_model if isinstance(served_model, str) else None
    parts, from_iterations = _parts(raw, model, served)
    bill = _Bill(lookup, modifiers, raw, batch)
    if raw is not usage:
        bill.note("usage is not an object: no tokens counted")
    rows = [bill.add(part) for part in parts]
    unpriced = bill.priced == 0
    if not unpriced and any(row["unpriced"] and not row["declined"] for row in rows):
        bill.incomplete = True
    answered = lookup(served or model)
    if answered is None and not unpriced:
        answered = next((lookup(p.model) for p in reversed(parts) if lookup(p.model)), None)
    return Cost(
        usd=None if unpriced else bill.usd,
        breakdown={} if unpriced else bill.breakdown,
        unpriced=unpriced,
        incomplete=bill.incomplete and not unpriced,
        notes=tuple(bill.notes),
        modifiers={} if unpriced else bill.applied,
        priced_as=None if unpriced or answered is None else answered.id,
        tier=next(iter(bill.tiers)) if len(bill.tiers) == 1 else None,
        iterations=tuple(rows) if from_iterations else None,
    )
