"""Stream events for the accumulator tests, built as the API sends them, folds of them
through the real decoder, and awkward chunkings of raw streams."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from streaming.accumulator import StreamSnapshot, accumulate
from streaming.sse import SSEDecoder

USAGE = {
    "input_tokens": 100,
    "cache_creation_input_tokens": 20,
    "cache_read_input_tokens": 300,
    "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 1,
    "service_tier": "standard",
}


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def fold_bytes(chunks: Iterable[bytes]) -> StreamSnapshot | None:
    decoder = SSEDecoder()
    snapshot: StreamSnapshot | None = None
    for chunk in chunks:
        for event in decoder.decode(chunk):
            snapshot = accumulate(json.loads(event.data), snapshot)
    assert decoder.flush() == []
    return snapshot


def fold(events: Iterable[Mapping[str, Any]]) -> StreamSnapshot:
    snapshot = StreamSnapshot()
    for event in events:
        snapshot = accumulate(event, snapshot)
    return snapshot


def awkward_cuts(raw: bytes) -> list[int]:
    """Every position where a cut is awkward: inside a multi-byte UTF-8 character,
    right after a CR or LF (so between the two bytes of a CRLF too), and inside each
    `data:` field name."""
    cuts = {i for i in range(1, len(raw)) if raw[i] & 0xC0 == 0x80}  # continuation byte
    cuts |= {i + 1 for i, byte in enumerate(raw) if byte in (0x0D, 0x0A)}
    at = raw.find(b"data:")
    while at != -1:
        cuts |= set(range(at + 1, at + 5))
        at = raw.find(b"data:", at + 1)
    return sorted(cut for cut in cuts if 0 < cut < len(raw))


def awkward_chunkings(raw: bytes) -> dict[str, list[bytes]]:
    """The stream whole, byte by byte, cut at every awkward position at once, and cut
    in two at each awkward position in turn (a decoder bug that only one cut exposes
    would hide among the others)."""
    cuts = awkward_cuts(raw)
    ways = {
        "whole": [raw],
        "bytes": [raw[i : i + 1] for i in range(len(raw))],
        "all-awkward": [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)],
    }
    for cut in cuts:
        ways[f"cut@{cut}"] = [raw[:cut], raw[cut:]]
    return ways


def start(**extra: Any) -> dict[str, Any]:
    message = {
        "id": "msg_01TestTestTestTestTestTe",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": dict(USAGE),
        **extra,
    }
    return {"type": "message_start", "message": message}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **body: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": body}


def text(index: int, piece: str) -> dict[str, Any]:
    return delta(index, type="text_delta", text=piece)


def partial(index: int, piece: str) -> dict[str, Any]:
    return delta(index, type="input_json_delta", partial_json=piece)


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(delta: dict[str, Any], usage: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"type": "message_delta", "delta": delta, "usage": usage, **top}


TOOL = {"type": "tool_use", "id": "toolu_01AaaaBbbbCcccDdddEeeeFf", "name": "f", "input": {}}

# The 2026 fixture pairs (tests/fixtures/streams/README.md says which page each follows).
STREAMS_2026: tuple[str, ...] = (
    "compaction",
    "fallback_switch",
    "server_tool_result",
    "omitted_thinking",
    "refusal",
    "unknown_types",
    "all_fields",
)

# What a fixture's fold cannot apply, noted rather than guessed (none for the others).
PROBLEMS_2026: dict[str, list[dict[str, Any]]] = {
    "unknown_types": [
        {"index": 0, "problem": "unknown_delta", "delta_type": "memory_note_delta"},
        {"index": 0, "problem": "unknown_delta", "delta_type": "memory_note_tag_delta"},
        {"index": 1, "problem": "unknown_delta", "delta_type": "text_annotation_delta"},
    ],
}
