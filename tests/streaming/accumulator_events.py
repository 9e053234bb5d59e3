"""Stream events for the accumulator tests, built as the API sends them, and folds
of them through the real decoder."""

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


TOOL = {"type": "tool_use", "id": "toolu_01AaaaBbbbCcccDdddEeeeFf", "name": "f", "input": {}}
