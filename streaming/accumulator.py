"""Folds Anthropic Messages stream events into the message the non-streaming API returns.

A pure fold: `accumulate(event, snapshot)` takes one parsed `data:` object and returns
the updated snapshot (updated in place for speed); `finalize(snapshot)` returns a copy
of the message with every pending piece materialised. No I/O, no clock, no globals.

It observes traffic it does not own, so it never raises: events it cannot place
(unknown types, unknown deltas, an index without a block, anything before
message_start, wrong shapes) are counted and otherwise ignored. Text, thinking and
tool-input fragments are kept as lists of pieces and joined once, so 10k+ deltas stay
linear.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Enough to diagnose a bad stream without letting a garbage one grow memory.
MAX_PROBLEMS = 50

# Delta type → (field of the block it extends, block type it applies to).
_TEXT_DELTAS: dict[str, tuple[str, str]] = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "thinking"),
}


@dataclass(slots=True)
class _Block:
    """Working state of one content block, keyed by its stream `index`."""

    block: dict[str, Any]
    # Field name → pieces still to be joined into block[field].
    pieces: dict[str, list[str]] = field(default_factory=dict)
    # input_json_delta fragments; None until the first one arrives.
    json_pieces: list[str] | None = None
    json_dirty: bool = False
    stopped: bool = False


@dataclass(slots=True)
class StreamSnapshot:
    # The message from message_start (its key order kept), updated by the fold. Text
    # fields of blocks still receiving deltas lag behind: use finalize() to read it.
    message: dict[str, Any] | None = None
    # Full body of an `event: error`, e.g. {"type":"error","error":{...}}.
    error: dict[str, Any] | None = None
    # message_stop seen after a message_start.
    complete: bool = False
    # Every event passed to accumulate(), ignored ones included.
    event_count: int = 0
    # JSON-serialisable notes about what could not be folded, e.g.
    # {"index": 1, "problem": "invalid_input_json", "detail": "...", "partial_json": "..."}.
    problems: list[dict[str, Any]] = field(default_factory=list)
    _blocks: dict[int, _Block] = field(default_factory=dict, repr=False)

    @property
    def unfinished_blocks(self) -> list[int]:
        """Indices of blocks started but never stopped (the stream was cut)."""
        return [index for index, state in self._blocks.items() if not state.stopped]


def accumulate(event: Mapping[str, Any], snapshot: StreamSnapshot | None) -> StreamSnapshot:
    if snapshot is None:
        snapshot = StreamSnapshot()
    snapshot.event_count += 1
    try:
        kind = event.get("type") if isinstance(event, Mapping) else None
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            handler(event, snapshot)
    except Exception as exc:  # shapes no rule foresaw: note it, keep folding
        _note(snapshot, {"problem": "internal_error", "detail": f"{type(exc).__name__}: {exc}"})
    return snapshot


def finalize(snapshot: StreamSnapshot | None) -> dict[str, Any] | None:
    """The message as the non-streaming API would have returned it, or None without a
    message_start. Blocks cut before their stop are materialised as far as they got; a
    tool input whose JSON is incomplete stays as content_block_start gave it."""
    if snapshot is None or snapshot.message is None:
        return None
    for index, state in snapshot._blocks.items():
        _materialise(snapshot, index, state)
    return _detached(snapshot.message)


def _message_start(event: Mapping[str, Any], snapshot: StreamSnapshot) -> None:
    message = event.get("message")
    if not isinstance(message, Mapping):
        return
    if snapshot.message is not None:
        _note(snapshot, {"problem": "duplicate_message_start"})
        return
    snapshot.message = msg = dict(message)
    content = msg.get("content")
    blocks = (
        [dict(b) for b in content if isinstance(b, Mapping)] if isinstance(content, list) else []
    )
    msg["content"] = blocks
    for index, block in enumerate(blocks):
        snapshot._blocks[index] = _Block(block=block, stopped=True)
    usage = msg.get("usage")
    if isinstance(usage, Mapping):
        msg["usage"] = dict(usage)


def _content_block_start(event: Mapping[str, Any], snapshot: StreamSnapshot) -> None:
    message, index, given = snapshot.message, event.get("index"), event.get("content_block")
    if message is None or not _is_index(index) or not isinstance(given, Mapping):
        return
    if index in snapshot._blocks:
        _note(snapshot, {"index": index, "problem": "duplicate_block_start"})
        return
    block = dict(given)
    content = message.get("content")
    if not isinstance(content, list):
        message["content"] = content = []
    if index != len(content):
        _note(snapshot, {"index": index, "problem": "block_index_out_of_order"})
    content.append(block)
    snapshot._blocks[index] = _Block(block=block)


def _content_block_delta(event: Mapping[str, Any], snapshot: StreamSnapshot) -> None:
    state = _block_for(event, snapshot)
    delta = event.get("delta")
    if state is None or not isinstance(delta, Mapping):
        return
    kind, block = delta.get("type"), state.block
    if kind in _TEXT_DELTAS:
        name, block_type = _TEXT_DELTAS[kind]
        piece = delta.get(name)
        if isinstance(piece, str) and block.get("type") == block_type:
            pieces = state.pieces.get(name)
            if pieces is None:
                start = block.get(name)
                state.pieces[name] = pieces = [start] if isinstance(start, str) else []
            pieces.append(piece)
    elif kind == "input_json_delta":
        piece = delta.get("partial_json")
        if isinstance(piece, str) and _tracks_input(block):
            if state.json_pieces is None:
                state.json_pieces = []
            state.json_pieces.append(piece)
            state.json_dirty = True
    elif kind == "signature_delta":
        signature = delta.get("signature")
        if isinstance(signature, str) and block.get("type") == "thinking":
            block["signature"] = signature
    elif kind == "citations_delta":
        citation = delta.get("citation")
        if block.get("type") == "text" and citation is not None:
            citations = block.get("citations")
            if isinstance(citations, list):
                citations.append(citation)
            else:
                block["citations"] = [citation]
    # Unknown delta types are new protocol features: relayed, not folded.


def _content_block_stop(event: Mapping[str, Any], snapshot: StreamSnapshot) -> None:
    index = event.get("index")
    state = _block_for(event, snapshot)
    if state is None:
        return
    state.stopped = True
    _materialise(snapshot, index, state)


def _message_delta(event: Mapping[str, Any], snapshot: StreamSnapshot) -> None:
    message = snapshot.message
    if message is None:
        return
    delta = event.get("delta")
    if isinstance(delta, Mapping):
        for key, value in delta.items():
            # content and usage have their own folds; anything else is the API's to set.
            if key not in ("content", "usage"):
                message[key] = value
    usage = event.get("usage")
    if isinstance(usage, Mapping):
        merged = message.get("usage")
        if not isinstance(merged, dict):
            message["usage"] = merged = {}
        for key, value in usage.items():
            # Delta usage is cumulative: overwrite, never add; null means "unchanged".
            if value is not None:
                merged[key] = value


def _message_stop(event: Mapping[str, Any], snapshot: StreamSnapshot) -> None:
    if snapshot.message is not None:
        snapshot.complete = True


def _error(event: Mapping[str, Any], snapshot: StreamSnapshot) -> None:
    snapshot.error = dict(event)


_HANDLERS = {
    "message_start": _message_start,
    "content_block_start": _content_block_start,
    "content_block_delta": _content_block_delta,
    "content_block_stop": _content_block_stop,
    "message_delta": _message_delta,
    "message_stop": _message_stop,
    "error": _error,
}


def _detached(message: dict[str, Any]) -> dict[str, Any]:
    # A JSON round trip is faster than deepcopy, survives nesting json.loads accepted
    # (deepcopy recurses three frames per level) and guarantees plain JSON types.
    try:
        return json.loads(json.dumps(message, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return copy.deepcopy(message)
    except RecursionError:
        return message


def _note(snapshot: StreamSnapshot, problem: dict[str, Any]) -> None:
    if len(snapshot.problems) < MAX_PROBLEMS:
        snapshot.problems.append(problem)


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _block_for(event: Mapping[str, Any], snapshot: StreamSnapshot) -> _Block | None:
    index = event.get("index")
    return snapshot._blocks.get(index) if _is_index(index) else None


def _tracks_input(block: Mapping[str, Any]) -> bool:
    # tool_use, server_tool_use, mcp_tool_use and whatever *_tool_use comes next.
    kind = block.get("type")
    return isinstance(block.get("input"), dict) or (
        isinstance(kind, str) and kind.endswith("tool_use")
    )


def _materialise(snapshot: StreamSnapshot, index: Any, state: _Block) -> None:
    block = state.block
    for name, pieces in state.pieces.items():
        if len(pieces) != 1 or block.get(name) is not pieces[0]:
            joined = "".join(pieces)
            pieces[:] = [joined]
            block[name] = joined
    if state.json_dirty and state.json_pieces is not None:
        state.json_dirty = False
        raw = "".join(state.json_pieces)
        state.json_pieces = [raw]
        if not raw.strip():
            block["input"] = {}
            return
        try:
            block["input"] = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            if not isinstance(block.get("input"), dict):
                block["input"] = {}
            _note(
                snapshot,
                {
                    "index": index,
                    "problem": "invalid_input_json",
                    "detail": str(exc),
                    "partial_json": raw,
                },
            )
