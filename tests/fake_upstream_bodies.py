"""What the fake Anthropic API (tests/fake_upstream.py) answers with, as data:
its rate-limit headers and error types, the deterministic bodies of its `long:`,
`big:` and `models:` scenarios (so a client knows every byte it must receive),
SSE bodies cut event by event, and the scripted answers tests register."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

RATE_LIMIT_HEADERS = {
    "anthropic-organization-id": "org-fake-0001",
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": "3999",
    "anthropic-ratelimit-requests-reset": "2026-11-25T12:00:01Z",
    "anthropic-ratelimit-tokens-limit": "2000000",
    "anthropic-ratelimit-tokens-remaining": "1990000",
    "anthropic-ratelimit-tokens-reset": "2026-11-25T12:00:02Z",
    "anthropic-ratelimit-input-tokens-limit": "1600000",
    "anthropic-ratelimit-input-tokens-remaining": "1595000",
    "anthropic-ratelimit-input-tokens-reset": "2026-11-25T12:00:02Z",
    "anthropic-ratelimit-output-tokens-limit": "400000",
    "anthropic-ratelimit-output-tokens-remaining": "399000",
    "anthropic-ratelimit-output-tokens-reset": "2026-11-25T12:00:02Z",
    "anthropic-ratelimit-unified-status": "allowed",
    "anthropic-ratelimit-unified-5h-status": "allowed",
    "anthropic-ratelimit-unified-5h-utilization": "0.42",
    "anthropic-ratelimit-unified-5h-reset": "1795000000",
    "anthropic-ratelimit-unified-7d-status": "allowed",
    "anthropic-ratelimit-unified-7d-utilization": "0.13",
    "anthropic-ratelimit-unified-7d-reset": "1795500000",
}

ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def long_stream(deltas: int) -> list[bytes]:
    """The events of the `long:N:MS` scenario: deterministic, so a client that asked
    for N deltas knows every byte it must receive, message_stop included."""

    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()

    usage = {"input_tokens": 1200, "output_tokens": 1}
    message = {
        "id": f"msg_long{deltas:06d}",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    events = [
        event("message_start", {"type": "message_start", "message": message}),
        event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    for i in range(deltas):
        delta = {"type": "text_delta", "text": f"part {i} of {deltas}. "}
        events.append(
            event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
        )
    events += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": deltas * 5},
            },
        ),
        event("message_stop", {"type": "message_stop"}),
    ]
    return events


BIG_CHUNK = 64 * 1024


def big_chunks(total: int) -> Iterator[bytes]:
    """The body of the `big:BYTES` scenario, chunk by chunk: deterministic, so a
    client can hash what it must receive; each chunk differs (its index repeated),
    so a lost, doubled or reordered chunk changes the hash."""
    index = 0
    sent = 0
    while sent < total:
        size = min(BIG_CHUNK, total - sent)
        yield (index.to_bytes(8, "big") * (BIG_CHUNK // 8))[:size]
        sent += size
        index += 1


def models_page(ids: list[str], *, has_more: bool = False, pad: int = 0) -> bytes:
    """A models page (the List Models shape); `pad` lengthens the first display_name."""
    data = [
        {
            "type": "model",
            "id": model,
            "display_name": model + " " * (pad if i == 0 else 0),
            "created_at": "2025-09-29T00:00:00Z",
        }
        for i, model in enumerate(ids)
    ]
    page = {
        "data": data,
        "has_more": has_more,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
    }
    return json.dumps(page, indent=1).encode()  # indented: re-serialising shows


@dataclass
class Received:
    method: str
    path_qs: str
    headers: list[tuple[str, str]]
    body: bytes


# A blank line ends an SSE event, in any of the three line-end spellings.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")


def sse_chunks(raw: bytes) -> list[bytes]:
    """An SSE body cut after each event's blank line (joined, exactly `raw`), so a
    script is written the way the API flushes it: one event at a time."""
    cuts = [m.end() for m in _EVENT_END.finditer(raw)]
    starts = [0, *cuts]
    chunks = [raw[a:b] for a, b in zip(starts, cuts, strict=False)]
    if starts[-1] < len(raw):
        chunks.append(raw[starts[-1] :])
    return chunks


@dataclass(frozen=True)
class Script:
    """One scripted answer (`x-fake: script:KEY`)."""

    status: int
    headers: dict[str, str]
    chunks: tuple[bytes, ...]  # written one by one, each flushed
    sse: bool


def build_script(
    status: int, headers: dict[str, str], body: bytes | Sequence[bytes], *, sse: bool
) -> Script:
    """A `Script` made as `FakeUpstream.script` makes one, for a responder to return."""
    if isinstance(body, bytes):
        chunks = tuple(sse_chunks(body)) if sse else (body,)
    else:
        chunks = tuple(body)
    return Script(status, dict(headers), chunks, sse)
