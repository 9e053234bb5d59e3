"""Cost in USD from a shipped, overridable, sourced price table.

cost = input·p_in + cache_write_5m·w5 + cache_write_1h·w1h + cache_read·r + output·p_out,
where `input_tokens` excludes cache tokens, times the request's modifiers
(storage/pricing_cost.py says how they combine). A model the table does not
know is *unpriced* (cost None), never $0: a silent zero is the classic gateway
cost bug. Model ids match a table id or alias exactly after normalisation
(`canonical_model`), never by prefix: `claude-opus-5-5` is not `claude-opus-5`.

Modules: pricing_rates (rates, id normal form), pricing_file (reading and
validating the YAML), pricing_cost (the engine), this one (the table).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from storage.pricing_cost import Cost, compute
from storage.pricing_file import PricingError, TableSpec, read_table
from storage.pricing_rates import ModelRates, Modifiers, Price, Tier, canonical_model
from streaming.usage import Usage

__all__ = [
    "DEFAULT_TABLE",
    "Cost",
    "ModelRates",
    "Modifiers",
    "Price",
    "PriceTable",
    "PricingError",
    "Tier",
    "canonical_model",
]

DEFAULT_TABLE = Path(__file__).with_name("pricing.yaml")


class PriceTable:
    def __init__(
        self,
        models: Mapping[str, ModelRates],
        aliases: Mapping[str, str] | None = None,
        modifiers: Modifiers | None = None,
        *,
        checked: str | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.models = dict(models)
        self.modifiers = modifiers or Modifiers()
        self.checked = checked
        self.sources = dict(sources or {})
        self._index = {table_id: table_id for table_id in self.models}
        for alias, table_id in (aliases or {}).items():
            if table_id in self.models:
                self._index[alias] = table_id

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        """PRICING_FILE, else the shipped table. Raises PricingError (`path:line: reason`)."""
        spec: TableSpec = read_table(Path(path or os.environ.get("PRICING_FILE") or DEFAULT_TABLE))
        return cls(
            spec.models,
            spec.index,
            spec.modifiers,
            checked=spec.checked,
            sources=spec.sources,
        )

    def resolve(self, model: str | None) -> str | None:
        """The table id `model` is priced as, or None."""
        name = canonical_model(model)
        return self._index.get(name) if name else None

    def rates(self, model: str | None) -> ModelRates | None:
        table_id = self.resolve(model)
        return self.models[table_id] if table_id else None

    def cost_of(
        self,
        model: str | None,
        usage: Mapping[str, Any] | None,
        *,
        served_model: str | None = None,
        batch: bool = False,
    ) -> Cost | None:
        """The cost of one response from its raw `usage` object (None when usage is None).
        Priced at `served_model` (the response's `model`) when given, else at `model`."""
        return compute(
            self.rates, self.modifiers, model, usage, served_model=served_model, batch=batch
        )

    # Thin wrappers kept for the callers written before cost_of.

    def family(self, model: str | None) -> str | None:
        return self.resolve(model)

    def price(self, model: str | None) -> Price | None:
        rates = self.rates(model)
        return rates.price if rates else None

    def cost(self, model: str | None, usage: Usage) -> float | None:
        price = self.price(model)
        return None if price is None else price.cost(usage)
