"""Reading and validating a price table file (format: storage/pricing.yaml's header).

Works on PyYAML's node tree (`compose`) rather than on loaded Python values, so
every complaint names the line it is about: a price file is edited by hand, and
"path:12: claude-x: input must be a number" is fixed in seconds where a bare
traceback at start-up is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from storage.pricing_rates import (
    DEFAULT_READ,
    DEFAULT_WRITE_1H,
    DEFAULT_WRITE_5M,
    ModelRates,
    Modifiers,
    Price,
    Tier,
    canonical_model,
)

TOP_KEYS = frozenset({"checked", "sources", "modifiers", "models", "families"})
RATE_KEYS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
MODEL_KEYS = frozenset({*RATE_KEYS, "tiers", "fast", "us_inference", "aliases", "source"})
TIER_KEYS = frozenset({"above", *RATE_KEYS})
MODIFIER_KEYS = frozenset({"batch", "inference_geo_us"})


class PricingError(ValueError):
    """A price table that cannot be used; the message is `path:line: reason`."""


@dataclass(frozen=True, slots=True)
class TableSpec:
    models: dict[str, ModelRates]
    index: dict[str, str]  # canonical id or alias -> table id
    modifiers: Modifiers = field(default_factory=Modifiers)
    checked: str | None = None
    sources: dict[str, str] = field(default_factory=dict)


def read_table(path: Path) -> TableSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PricingError(f"{path}: cannot read the price table: {exc}") from None
    return _Parser(str(path)).table(_compose(str(path), text))


def _compose(where: str, text: str) -> Node | None:
    loader = yaml.SafeLoader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise PricingError(f"{where}:{line}: YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise PricingError(f"{where}:1: YAML error: {exc}") from None
    finally:
        loader.dispose()


class _Parser:
    def __init__(self, where: str) -> None:
        self.where = where
        self.constructor = yaml.constructor.SafeConstructor()

    def fail(self, node: Node, reason: str) -> PricingError:
        return PricingError(f"{self.where}:{node.start_mark.line + 1}: {reason}")

    def value(self, node: Node) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.fail(node, f"unreadable value: {exc}") from None

    def mapping(
        self, node: Node, what: str, allowed: frozenset[str] | None = None
    ) -> list[tuple[str, Node, Node]]:
        """(key, key node, value node) triples; refuses duplicate and unknown keys."""
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        seen: set[str] = set()
        entries: list[tuple[str, Node, Node]] = []
        for key_node, value_node in node.value:
            key = self.value(key_node) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                raise self.fail(key_node, f"{what}: keys must be strings")
            if key in seen:
                raise self.fail(key_node, f"{what}: duplicate key {key!r}")
            if allowed is not None and key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(key_node, f"{what}: unknown key {key!r} (known: {known})")
            seen.add(key)
            entries.append((key, key_node, value_node))
        return entries

    def number(self, node: Node, what: str, *, positive: bool = False) -> float:
        value = self.value(node)
        bad = isinstance(value, bool) or not isinstance(value, int | float)
        if bad or not math.isfinite(value) or value < 0 or (positive and value == 0):
            kind = "a positive number" if positive else "a non-negative number"
            raise self.fail(node, f"{what} must be {kind}, got {value!r}")
        return float(value)

    def table(self, root: Node | None) -> TableSpec:
        if root is None:
            raise PricingError(f"{self.where}:1: the price table is empty")
        models: dict[str, ModelRates] = {}
        index: dict[str, str] = {}
        modifiers, checked, sources = Modifiers(), None, {}
        found_models = False
        for key, _, node in self.mapping(root, "the price table", TOP_KEYS):
            if key in ("models", "families"):
                found_models = True
                for model_id, id_node, entry in self.mapping(node, key):
                    self.add_model(models, index, model_id, id_node, entry)
            elif key == "modifiers":
                modifiers = self.modifiers(node)
            elif key == "checked":
                checked = str(self.value(node))
            else:
                sources = self.sources(node)
        if not found_models:
            raise self.fail(root, "no `models:` (or legacy `families:`) mapping")
        return TableSpec(models, index, modifiers, checked, sources)

    def add_model(
        self,
        models: dict[str, ModelRates],
        index: dict[str, str],
        model_id: str,
        id_node: Node,
        entry: Node,
    ) -> None:
        table_id = self.table_id(model_id, id_node)
        fields = {
            key: (key_node, node)
            for key, key_node, node in self.mapping(entry, table_id, MODEL_KEYS)
        }
        price = self.price(fields, table_id, id_node)
        if "tiers" in fields:
            price = self.with_tiers(price, fields["tiers"][1], table_id)
        fast = None
        if "fast" in fields and self.value(fields["fast"][1]) is not None:
            fast = self.number(fields["fast"][1], f"{table_id}: fast", positive=True)
        us_inference = None
        if "us_inference" in fields:
            us_inference = self.value(fields["us_inference"][1])
            if not isinstance(us_inference, bool):
                node = fields["us_inference"][1]
                raise self.fail(node, f"{table_id}: us_inference must be true or false")
        source = None
        if "source" in fields:
            source = self.value(fields["source"][1])
            if not isinstance(source, str) or not source.strip():
                raise self.fail(fields["source"][1], f"{table_id}: source must be a URL")
        for name, node in [(table_id, id_node), *self.aliases(fields, table_id)]:
            if name in index:
                raise self.fail(node, f"{name!r} is already the id or alias of {index[name]}")
            index[name] = table_id
        models[table_id] = ModelRates(table_id, price, fast, us_inference, source)

    def table_id(self, model_id: str, node: Node) -> str:
        canonical = canonical_model(model_id)
        if canonical is None or canonical != model_id.strip().lower():
            raise self.fail(
                node,
                f"model id {model_id!r} would never match: ids are looked up without "
                f"provider prefixes, [..] and version or date suffixes (write {canonical!r})",
            )
        return canonical

    def aliases(
        self, fields: dict[str, tuple[Node, Node]], table_id: str
    ) -> list[tuple[str, Node]]:
        if "aliases" not in fields:
            return []
        node = fields["aliases"][1]
        if not isinstance(node, SequenceNode):
            raise self.fail(node, f"{table_id}: aliases must be a list of model ids")
        names = []
        for item in node.value:
            alias = self.value(item)
            if not isinstance(alias, str):
                raise self.fail(item, f"{table_id}: aliases must be model ids (strings)")
            names.append((self.table_id(alias, item), item))
        return names

    def price(self, fields: dict[str, tuple[Node, Node]], what: str, at: Node) -> Price:
        for required in ("input", "output"):
            if required not in fields:
                raise self.fail(at, f"{what}: missing `{required}`")
        rates = {
            key: self.number(fields[key][1], f"{what}: {key}") for key in RATE_KEYS if key in fields
        }
        p_in = rates["input"]
        return Price(
            input=p_in,
            output=rates["output"],
            cache_write_5m=rates.get("cache_write_5m", p_in * DEFAULT_WRITE_5M),
            cache_write_1h=rates.get("cache_write_1h", p_in * DEFAULT_WRITE_1H),
            cache_read=rates.get("cache_read", p_in * DEFAULT_READ),
        )

    def with_tiers(self, base: Price, node: Node, table_id: str) -> Price:
        if not isinstance(node, SequenceNode) or not node.value:
            raise self.fail(node, f"{table_id}: tiers must be a non-empty list")
        tiers: list[Tier] = []
        for item in node.value:
            fields = {
                key: (key_node, value)
                for key, key_node, value in self.mapping(item, f"{table_id}: tier", TIER_KEYS)
            }
            if "above" not in fields:
                raise self.fail(item, f"{table_id}: a tier needs `above` (prompt tokens)")
            above_node = fields["above"][1]
            above = self.value(above_node)
            if isinstance(above, bool) or not isinstance(above, int) or above <= 0:
                raise self.fail(above_node, f"{table_id}: above must be a positive whole number")
            if tiers and above <= tiers[-1].above:
                raise self.fail(above_node, f"{table_id}: tiers must ascend by `above`")
            tiers.append(Tier(above, self.tier_price(base, fields, table_id, item)))
        return Price(
            base.input,
            base.output,
            base.cache_write_5m,
            base.cache_write_1h,
            base.cache_read,
            tuple(tiers),
        )

    def tier_price(
        self, base: Price, fields: dict[str, tuple[Node, Node]], table_id: str, at: Node
    ) -> Price:
        flat = self.price(fields, f"{table_id}: tier", at)
        # An unstated cache rate keeps the model's own ratio to input (Haiku 5.5's
        # upper tier is its lower one times five, cache rates included).
        ratio = flat.input / base.input if base.input else 0.0
        return Price(
            flat.input,
            flat.output,
            flat.cache_write_5m if "cache_write_5m" in fields else base.cache_write_5m * ratio,
            flat.cache_write_1h if "cache_write_1h" in fields else base.cache_write_1h * ratio,
            flat.cache_read if "cache_read" in fields else base.cache_read * ratio,
        )

    def modifiers(self, node: Node) -> Modifiers:
        values = {
            key: self.number(value, f"modifiers: {key}", positive=True)
            for key, _, value in self.mapping(node, "modifiers", MODIFIER_KEYS)
        }
        return Modifiers(**values)

    def sources(self, node: Node) -> dict[str, str]:
        if isinstance(node, SequenceNode):
            pairs = [(str(i), item) for i, item in enumerate(node.value)]
        else:
            pairs = [(key, value) for key, _, value in self.mapping(node, "sources")]
        out: dict[str, str] = {}
        for name, item in pairs:
            url = self.value(item)
            if not isinstance(url, str):
                raise self.fail(item, f"sources: {name} must be a URL")
            out[name] = url
        return out
