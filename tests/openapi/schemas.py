"""OpenAPI 3.0 schemas of the served document as plain JSON Schema, to validate
values with `jsonschema` (Python's `re` for patterns, code points for lengths)."""

from __future__ import annotations

from typing import Any

import jsonschema

_REF = "#/components/schemas/"


def json_schema(spec: dict[str, Any], name: str, *, closed: bool = False) -> dict[str, Any]:
    """Component `name`, its `$ref`s inlined, `nullable` turned into a null type.
    `closed`: no properties beyond the documented ones, at the top level."""
    schemas = spec["components"]["schemas"]
    converted = _convert(schemas[name], schemas)
    if closed:
        converted["additionalProperties"] = False
    return converted


def errors(schema: dict[str, Any], value: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(value)
    ]


def error_message(body: dict[str, Any]) -> str:
    """The text of an error in either documented shape (the seed's `{error,
    details}` or Anthropic's `{type, error: {type, message}}`), for tests about
    what an error says; which shape a route answers is checked against the document
    by test_spec.py and test_schemathesis.py."""
    if isinstance(body.get("error"), str):
        return " ".join(filter(None, (body["error"], body.get("details"))))
    return body["error"]["message"]


def _convert(node: Any, schemas: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, schemas) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _convert(schemas[node["$ref"].removeprefix(_REF)], schemas)
    out = {key: _convert(value, schemas) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:  # a nullable oneOf/allOf: null, or what it says
            out = {"anyOf": [{"type": "null"}, out]}
    return out
