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


def _scrub_text(text: str) -> str:
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def scrub_surrogates(value: Any) -> Any:
    """The parsed body with lone UTF-16 surrogates (`"\\ud800"`, valid JSON text)
    replaced by U+FFFD. Only the proxy's view changes (model, log fields): the
    bytes go upstream as sent. Without this, one such string makes the log record
    unencodable (UTF-8, BSON) and the request would be lost from the log.

    Iterative, with an explicit stack: JSON nested as deep as the parser accepts
    would exceed Python's recursion limit here (RecursionError, a 500 for the
    client) if each level were a call."""
    if isinstance(value, str):
        return _scrub_text(value)
    if not isinstance(value, list | dict):
        return value
    root = _empty_like(value)
    # (a container to read, its copy to fill): each copy is put in place in its
    # parent when made, so the result keeps the source's order and, like a dict
    # comprehension, the last of two keys that scrub to the same text wins.
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        source, copy = stack.pop()
        if isinstance(source, list):
            for item in source:
                copy.append(_scrub_item(item, stack))
        else:
            for key, item in source.items():
                copy[_scrub_text(key) if isinstance(key, str) else key] = _scrub_item(item, stack)
    return root


def _empty_like(value: list[Any] | dict[str, Any]) -> list[Any] | dict[str, Any]:
    return [] if isinstance(value, list) else {}


def _scrub_item(item: Any, stack: list[tuple[Any, Any]]) -> Any:
    if isinstance(item, str):
        return _scrub_text(item)
    if isinstance(item, list | dict):
        copy = _empty_like(item)
        stack.append((item, copy))
        return copy
    return item
