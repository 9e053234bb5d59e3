"""Credentials never leave the request path in clear text.

A fingerprint (`sha256:` + 16 hex digits) identifies a key in the log, in routing
rules and in metrics-free diagnostics without revealing it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

SECRET_HEADERS = frozenset(
    {"x-api-key", "authorization", "proxy-authorization", "cookie", "set-cookie"}
)


def fingerprint(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]


def sanitize_headers(headers: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Headers for storage: secrets replaced by their fingerprints, order and
    duplicates kept (as pairs: header names repeat and may contain dots)."""
    out: list[list[str]] = []
    for name, value in headers:
        if name.lower() in SECRET_HEADERS:
            value = fingerprint(value)
        out.append([name, value])
    return out
