"""A request body read as a JSON object, the way both the worker and the recorder see it."""

from __future__ import annotations

import json
from typing import Any


def parse_json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a dict, or None when it is not a JSON object (or not JSON)."""
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    return scrub_if_needed(body, parsed)


def scrub_if_needed(body: bytes, parsed: dict[str, Any]) -> dict[str, Any]:
    if b"\\ud" in body or b"\\uD" in body:
        return scrub_surrogates(parsed)
    return parsed


def scrub_surrogates(value: Any) -> Any:
    """The parsed body with lone UTF-16 surrogates (`"\\ud800"`, valid JSON text)
    replaced by U+FFFD. Only the proxy's view changes (model, log fields): the
    bytes go upstream as sent. Without this, one such string makes the log record
    unencodable (UTF-8, BSON) and the request would be lost from the log."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [scrub_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {scrub_surrogates(k): scrub_surrogates(v) for k, v in value.items()}
    return value
