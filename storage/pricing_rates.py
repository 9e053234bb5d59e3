"""Rates of one model (USD per million tokens) and the model-id normal form.

Ground module of the pricing package: no YAML, no usage parsing. `Price` keeps
the shape older callers know (five flat rates, `.cost(Usage)`), plus optional
prompt-size tiers so even those callers price Haiku 5.5's long prompts right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from streaming.usage import Usage

PER_MILLION = 1_000_000

# Documented defaults, as multiples of the input rate.
DEFAULT_WRITE_5M = 1.25
DEFAULT_WRITE_1H = 2.0
DEFAULT_READ = 0.1

_VERSION_SUFFIX = re.compile(r"-v\d+(?::\d+)?$")  # Bedrock's -v1:0
_DATE_SUFFIX = re.compile(r"[-@](?:\d{8}|latest)$")  # -20251001, Vertex's @20241022, -latest
_REGIONS = ("us.", "eu.", "apac.", "global.", "jp.", "au.")


def canonical_model(model: object) -> str | None:
    """The lookup form of a model id: lower case, without `[1m]`-style suffix,
    provider prefix, Bedrock version or date suffix. Every step is a constant
    number of passes over the string (the id comes from clients: keep it linear)."""
    if not isinstance(model, str):
        return None
    name = model.strip().lower()
    if name.endswith("]"):
        opening = name.rfind("[")
        if opening > 0 and "]" not in name[opening:-1]:
            name = name[:opening]
    name = name.removeprefix("anthropic/")
    for region in _REGIONS:
        if name.startswith(region + "anthropic."):
            name = name[len(region) :]
            break
    name = name.removeprefix("anthropic.")
    name = _VERSION_SUFFIX.sub("", name)
    name = _DATE_SUFFIX.sub("", name)
    return name or None


@dataclass(frozen=True, slots=True)
class Tier:
    """Rates that apply once the prompt is over `above` tokens."""

    above: int
    price: Price


@dataclass(frozen=True, slots=True)
class Price:
    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    tiers: tuple[Tier, ...] = field(default=())  # ascending by `above`

    @staticmethod
    def prompt_tokens(usage: Usage) -> int:
        """What a prompt-size tier is measured on: everything the model read
        (uncached input, cache writes and cache reads)."""
        return usage.input + usage.cache_write + usage.cache_read

    def tier_for(self, usage: Usage) -> tuple[str | None, Price]:
        """The tier label (None for an untiered model) and the flat rates to use."""
        if not self.tiers:
            return None, self
        prompt = self.prompt_tokens(usage)
        label, rates = f"prompt<={self.tiers[0].above}", self
        for tier in self.tiers:
            if prompt > tier.above:
                label, rates = f"prompt>{tier.above}", tier.price
        return label, rates

    def breakdown(self, usage: Usage, multiplier: float = 1.0) -> dict[str, float]:
        rates = self.tier_for(usage)[1]
        scale = multiplier / PER_MILLION
        return {
            "input": usage.input * rates.input * scale,
            "output": usage.output * rates.output * scale,
            "cacheWrite5m": usage.cache_write_5m * rates.cache_write_5m * scale,
            "cacheWrite1h": usage.cache_write_1h * rates.cache_write_1h * scale,
            "cacheRead": usage.cache_read * rates.cache_read * scale,
        }

    def cost(self, usage: Usage) -> float:
        return sum(self.breakdown(usage).values())


@dataclass(frozen=True, slots=True)
class ModelRates:
    """One entry of the table. `fast` is the fast-mode multiplier (None: not
    published); `us_inference` says whether US-only inference costs extra
    (None: not known, as in a legacy file)."""

    id: str
    price: Price
    fast: float | None = None
    us_inference: bool | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Modifiers:
    """Request-level multipliers, the same for every model they apply to."""

    batch: float = 0.5
    inference_geo_us: float = 1.1
