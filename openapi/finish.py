"""Completes the registered component schemas where sanic-ext's dataclass conversion
stops short, so the document is exact enough to validate against:

- `required`: the fields without a default, which every response carries (without it
  a response missing a field would still match);
- nested components as `$ref`s (sanic-ext inlines an anonymous copy instead);
- `HeaderRule` as `validate_rules` enforces it: token header names, no framing
  headers, no control characters, a value for `set` and a `find` for `replace`.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from sanic_ext.extensions.openapi.builders import SpecificationBuilder

from control.header_rules import (
    ACTIONS,
    MAX_HEADER_NAME,
    MAX_RULES,
    MAX_VALUE_BYTES,
    REFUSED_HEADERS,
)
from openapi import anthropic, components, requests, stats

MODULES = (anthropic, components, requests, stats)
CLOSED = frozenset({"ProxySettings", "HeaderRule"})


def finish_components() -> None:
    # sanic-ext has no public accessor for registered components; both spec routes
    # (ours and the UI's /docs/openapi.json) serialize these same objects.
    schemas: dict[str, Any] = SpecificationBuilder()._components["schemas"]
    classes = {
        name: cls
        for module in MODULES
        for name, cls in vars(module).items()
        if isinstance(cls, type) and is_dataclass(cls) and name in schemas
    }
    for name, cls in classes.items():
        values = _values(schemas[name])
        hints = typing.get_type_hints(cls)
        properties = values.get("properties", {})
        for f in fields(cls):
            ref = _ref(hints[f.name], classes)
            if ref is not None and f.name in properties:
                properties[f.name] = ref
        required = [
            f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
        ]
        if required:
            values["required"] = required
        if name in CLOSED:
            values["additionalProperties"] = False
    _values(schemas["HeaderRule"]).update(header_rule_schema())
    for side in ("requestHeaderRules", "responseHeaderRules"):
        _values(schemas["ProxySettings"])["properties"][side]["maxItems"] = MAX_RULES


def _values(schema: Any) -> dict[str, Any]:
    return schema._fields if hasattr(schema, "_fields") else schema


def _ref(hint: Any, classes: dict[str, type]) -> dict[str, Any] | None:
    """The schema of a field typed with a component: `X`, `X | None`, `list[X]`."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        inner = _ref(next(a for a in args if a is not type(None)), classes)
        return {"allOf": [inner], "nullable": True} if inner else None
    if typing.get_origin(hint) is list and args:
        inner = _ref(args[0], classes)
        return {"type": "array", "items": inner} if inner else None
    name = getattr(hint, "__name__", None)
    if name in classes and classes[name] is hint:
        return {"$ref": f"#/components/schemas/{name}"}
    return None


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else "\\" + c for c in word)


def header_rule_schema() -> dict[str, Any]:
    refused = "|".join(_any_case(h) for h in sorted(REFUSED_HEADERS))
    text = {
        "type": "string",
        "nullable": True,
        "pattern": r"^[^\x00-\x08\x0a-\x1f\x7f]*$",
        "maxLength": MAX_VALUE_BYTES // 4,  # bytes: 4 per character at most
    }
    return {
        "properties": {
            "header": {
                "type": "string",
                "description": "Header name (case-insensitive); framing headers are refused",
                "maxLength": MAX_HEADER_NAME,
                "pattern": f"^(?!(?:{refused})$)[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$",
            },
            "action": {"type": "string", "enum": list(ACTIONS)},
            "value": {**text, "description": "set: the value; replace: the replacement"},
            "find": {**text, "description": "replace: the text to find"},
            "enabled": {"type": "boolean", "default": True},
        },
        "required": ["header", "action"],
        "additionalProperties": False,
        "oneOf": [
            {"properties": {"action": {"enum": ["block"]}}},
            {
                "properties": {"action": {"enum": ["set"]}, "value": {"type": "string"}},
                "required": ["value"],
            },
            {
                "properties": {
                    "action": {"enum": ["replace"]},
                    "find": {"type": "string", "minLength": 1},
                },
                "required": ["find"],
            },
        ],
    }
