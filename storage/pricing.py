"""Cost in USD from a shipped, overridable price table.

cost = input·p_in + cache_write_5m·w5 + cache_write_1h·w1h + cache_read·r + output·p_out,
where `input_tokens` excludes cache tokens. A model the table does not know is
*unpriced* (cost None), never $0: a silent zero is the classic gateway cost bug.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from streaming.usage import Usage

DEFAULT_TABLE = Path(__file__).with_name("pricing.yaml")
_DATE_SUFFIX = re.compile(r"[-@](\d{8}|latest)$")
_VERSION_SUFFIX = re.compile(r"-v\d+(:\d+)?$")  # Bedrock's -v1:0
_PROVIDER_PREFIX = re.compile(r"^(anthropic/|(us|eu|apac|global)\.anthropic\.|anthropic\.)")
_CONTEXT_SUFFIX = re.compile(r"\[[^\[\]]*\]$")  # claude-sonnet-4-5[1m]


@dataclass(frozen=True, slots=True)
class Price:
    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float

    def cost(self, usage: Usage) -> float:
        total = (
            usage.input * self.input
            + usage.output * self.output
            + usage.cache_write_5m * self.cache_write_5m
            + usage.cache_write_1h * self.cache_write_1h
            + usage.cache_read * self.cache_read
        )
        return total / 1_000_000

    def breakdown(self, usage: Usage) -> dict[str, float]:
        return {
            "input": usage.input * self.input / 1e6,
            "output": usage.output * self.output / 1e6,
            "cacheWrite5m": usage.cache_write_5m * self.cache_write_5m / 1e6,
            "cacheWrite1h": usage.cache_write_1h * self.cache_write_1h / 1e6,
            "cacheRead": usage.cache_read * self.cache_read / 1e6,
        }


class PriceTable:
    def __init__(self, families: dict[str, Price]) -> None:
        # Longest prefix first, so claude-opus-4-5 wins over claude-opus-4.
        self._families = sorted(families.items(), key=lambda kv: -len(kv[0]))

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        path = path or os.environ.get("PRICING_FILE") or DEFAULT_TABLE
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        families: dict[str, Price] = {}
        for name, entry in (data.get("families") or {}).items():
            p_in, p_out = float(entry["input"]), float(entry["output"])
            families[str(name)] = Price(
                input=p_in,
                output=p_out,
                cache_write_5m=float(entry.get("cache_write_5m", p_in * 1.25)),
                cache_write_1h=float(entry.get("cache_write_1h", p_in * 2)),
                cache_read=float(entry.get("cache_read", p_in * 0.1)),
            )
        return cls(families)

    def family(self, model: str | None) -> str | None:
        if not model:
            return None
        name = _CONTEXT_SUFFIX.sub("", model.strip().lower())
        name = _PROVIDER_PREFIX.sub("", name)
        name = _VERSION_SUFFIX.sub("", name)
        name = _DATE_SUFFIX.sub("", name)
        for family, _ in self._families:
            if name == family or name.startswith(family + "-") or name.startswith(family + "."):
                return family
        return None

    def price(self, model: str | None) -> Price | None:
        family = self.family(model)
        return dict(self._families).get(family) if family else None

    def cost(self, model: str | None, usage: Usage) -> float | None:
        price = self.price(model)
        return None if price is None else price.cost(usage)
