"""Anthropic stream events as the bytes a client reads.

Every event carries its `event:` line: Claude Code treats SSE without one as a broken
stream and silently retries the turn non-streaming. The JSON is compact and keeps
non-ASCII characters as they are, like the API's own streams.
"""

from __future__ import annotations

import json
from typing import Any


def sse_event(payload: dict[str, Any]) -> bytes:
    """`event: <type>` + `data: <json>` + blank line; the name is the payload's type."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event: {payload['type']}\ndata: {data}\n\n".encode()


def error_payload(error_type: str, message: str) -> dict[str, Any]:
    """Anthropic's error shape, for a body or an `event: error`."""
    return {"type": "error", "error": {"type": error_type, "message": message}}
