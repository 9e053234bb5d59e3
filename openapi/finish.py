"""Completes the registered component schemas where sanic-ext's dataclass conversion
stops short, so the document is exact enough to validate against:

- `required`: the fields without a default, which every response carries (without it
  a response missing a field would still match);
- nested components as `$ref`s (sanic-ext inlines an anonymous copy instead), also
  inside unions and as map values;
- number widths: int64 unless bounded, doubles (openapi/integers.py);
- `HeaderRule` exactly as `validate_rules` enforces it, built from the same
  constants (control/header_rules.py).
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from sanic_ext.extensions.openapi.builders import SpecificationBuilder
from sanic_ext.extensions.openapi.types import Schema

from control.header_rules import (
    ACTIONS,
    MAX_HEADER_NAME,
    MAX_RULES,
    MAX_VALUE_CHARS,
    REFUSED_HEADERS,
    REQUIRED,
    TEXT_FIELDS,
    USES,
)
from openapi import anthropic, components, requests, stats
from openapi.integers import set_number_formats

MODULES = (anthropic, components, requests, stats)
CLOSED = frozenset({"ProxySettings", "HeaderRule"})
# What validate_rules refuses in `value` and `find` (control characters but TAB).
TEXT_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"


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
    for schema in schemas.values():
        set_number_formats(schema)


def _values(schema: Any) -> dict[str, Any]:
    return schema._fields if hasattr(schema, "_fields") else schema


def _ref(hint: Any, classes: dict[str, type]) -> dict[str, Any] | None:
    """The schema of a field typed with a component: `X`, `list[X]`, `dict[str, X]`,
    or a union holding one of those (`X | None`, `str | list[X] | None`)."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType):
        return _union(args, classes)
    if typing.get_origin(hint) is list and args:
        inner = _ref(args[0], classes)
        return {"type": "array", "items": inner} if inner else None
    if typing.get_origin(hint) is dict and len(args) == 2:
        inner = _ref(args[1], classes)
        return {"type": "object", "additionalProperties": inner} if inner else None
    name = getattr(hint, "__name__", None)
    if name in classes and classes[name] is hint:
        return {"$ref": f"#/components/schemas/{name}"}
    return None


def _union(args: tuple[Any, ...], classes: dict[str, type]) -> dict[str, Any] | None:
    options = [a for a in args if a is not type(None)]
    nullable = len(options) < len(args)
    refs = [_ref(a, classes) for a in options]
    if not any(refs):
        return None  # sanic-ext's own rendering is right
    if len(options) == 1 and refs[0] is not None:
        schema = refs[0]
    else:
        schema = {"oneOf": [r or Schema.make(a) for r, a in zip(refs, options, strict=True)]}
    if not nullable:
        return schema
    # A `$ref`'s siblings are ignored (OpenAPI 3.0): wrap it to make it nullable.
    if "$ref" in schema:
        return {"allOf": [schema], "nullable": True}
    return {**schema, "nullable": True}


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else "\\" + c for c in word)


def header_rule_schema() -> dict[str, Any]:
    refused = "|".join(_any_case(h) for h in sorted(REFUSED_HEADERS))
    text = {
        "type": "string",
        "nullable": True,
        "pattern": TEXT_PATTERN,
        "maxLength": MAX_VALUE_CHARS,
    }
    return {
        "description": (
            "A header rule. Each action reads only some text fields: `block` none, "
            "`set` `value` (required, may be empty), `replace` `find` (required, "
            "non-empty) and `value` (the replacement, empty when null). A field the "
            "action does not read must be absent, null or empty. Text is Unicode "
            "without control characters other than TAB (lone surrogate escapes are "
            "refused too)."
        ),
        "properties": {
            "header": {
                "type": "string",
                "description": "Header name (case-insensitive); framing headers are refused",
                "minLength": 1,
                "maxLength": MAX_HEADER_NAME,
                "pattern": f"^(?!(?:{refused})$)[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$",
            },
            "action": {"type": "string", "enum": list(ACTIONS)},
            "value": {**text, "description": "set: the value; replace: the replacement"},
            "find": {**text, "description": "replace: the text to find (case-sensitive)"},
            "enabled": {"type": "boolean", "default": True},
        },
        "required": ["header", "action"],
        "additionalProperties": False,
        "oneOf": [_action_branch(action) for action in ACTIONS],
    }


def _action_branch(action: str) -> dict[str, Any]:
    """The fields one action allows and requires; the shared properties above
    already bound their type, length and characters."""
    properties: dict[str, Any] = {"action": {"enum": [action]}}
    for field in TEXT_FIELDS:
        if field not in USES[action]:
            properties[field] = {"maxLength": 0}  # absent, null or ""
    branch: dict[str, Any] = {"properties": properties}
    if action in REQUIRED:
        field, minimum = REQUIRED[action]
        properties[field] = {"type": "string", **({"minLength": minimum} if minimum else {})}
        branch["required"] = [field]
    return branch
