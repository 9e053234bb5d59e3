"""Folds Anthropic Messages stream events into the message the non-streaming API returns.

A pure fold: `accumulate(event, snapshot)` takes one parsed `data:` object and returns
the updated snapshot (updated in place for speed); `finalize(snapshot)` returns a copy
of the message with every pending piece materialised. No I/O, no clock, no globals.

It observes traffic it does not own, so it never raises and never drops what it was
sent. message_start's message is kept whole, in its key order; every field of a
message_delta (its `delta`, and top-level fields such as `context_management`) is
merged into it; usage is merged key by key. Content blocks, known or not, are kept as
content_block_start gave them and extended by their deltas (streaming.
accumulator_blocks); a delta that cannot be applied leaves its block as it was and is
noted in `problems`. Events it cannot place at all (unknown event types, an index
without a block, anything before message_start, wrong shapes) are counted and
otherwise ignored.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streaming.accumulator_blocks import BlockState, apply_delta, materialise, new_block

# Enough to diagnose a bad stream without letting a garbage one grow memory.
MAX_PROBLEMS = 50

# Top-level keys in the order the non-streaming JSON has them (API reference, and the
# refusal and fallback pages). Keys a message_delta adds are placed by it; keys
# message_start sent keep its order, which is the API's own.
_KEY_ORDER: dict[str, int] = {
    key: rank
    for rank, key in enumerate(
        (
            "id",
            "type",
            "role",
            "model",
            "content",
            "stop_reason",
            "stop_sequence",
            "stop_details",
            "input_transformations",
            "usage",
            "diagnostics",
            "context_management",
            "container",
        )
    )
}

# message_delta members that are not message fields, or have folds of their own.
_NOT_MESSAGE_FIELDS = frozenset({"type", "delta", "usage", "content"})


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
    # {"index": 1, "problem": "invalid_input_json", "detail": "...", "partial_json": "..."}
    # or {"index": 0, "problem": "unknown_delta", "delta_type": "sparkle_delta"}.
    problems: list[dict[str, Any]] = field(default_factory=list)
    _blocks: dict[int, BlockState] = field(default_factory=dict, repr=False)
    # Top-level keys added after message_start, in arrival order (for the key order).
    _added: list[str] = field(default_factory=list, repr=False)
    # Delta problems already noted: one note per block and kind, not one per delta.
    _noted: set[tuple[int, str, str | None]] = field(default_factory=set, repr=False)

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
    return _detached(_ordered(snapshot.message, snapshot._added))


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
        [new_block(b) for b in content if isinstance(b, Mapping)]
        if isinstance(content, list)
        else []
    )
    msg["content"] = blocks
    for index, block in enumerate(blocks):
        snapshot._blocks[index] = BlockState(block=block, stopped=True)
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
    block = new_block(given)
    content = message.get("content")
    if not isinstance(content, list):
        message["content"] = content = []
    if index != len(content):
        _note(snapshot, {"index": index, "problem": "block_index_out_of_order"})
    content.append(block)
    snapshot._blocks[index] = BlockState(block=block)
    if block.get("type") == "fallback":
        _switch_model(snapshot, block)


def _content_block_delta(event: Mapping[str, Any], snapshot: StreamSnapshot) -> None:
    index = event.get("index")
    state = _block_for(event, snapshot)
    delta = event.get("delta")
    if state is None or not isinstance(delta, Mapping):
        return
    problem = apply_delta(state, delta)
    if problem is not None:
        kind = delta.get("type")
        key = (index, problem, kind if isinstance(kind, str) else None)
        if key not in snapshot._noted:
            snapshot._noted.add(key)
            _note(snapshot, {"index": index, "problem": problem, "delta_type": key[2]})


def _content_block_stop(event: Mapping[str, Any], snapshot: StreamSnapshot) -> None:
    index = event.get("index")
    state = _block_for(event, snapshot)
    if state is None:
        return
    state.stopped = True
    _materialise(snapshot, index, state)


def _message_delta(event: Mapping[str, Any], snapshot: StreamSnapshot) -> None:
    if snapshot.message is None:
        return
    delta = event.get("delta")
    if isinstance(delta, Mapping):
        for key, value in delta.items():
            # content and usage have their own folds; anything else is the API's to set.
            if key not in ("content", "usage"):
                _set(snapshot, key, value)
    for key, value in event.items():
        # e.g. context_management, input_transformations: message fields too.
        if key not in _NOT_MESSAGE_FIELDS:
            _set(snapshot, key, value)
    usage = event.get("usage")
    if isinstance(usage, Mapping):
        merged = snapshot.message.get("usage")
        if not isinstance(merged, dict):
            merged = {}
            _set(snapshot, "usage", merged)
        for key, value in usage.items():
            # Delta usage is cumulative: overwrite, never add; null means "unchanged".
            # Nested objects (iterations, server_tool_use, …) are replaced whole.
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


def _switch_model(snapshot: StreamSnapshot, block: Mapping[str, Any]) -> None:
    # A server-side fallback hands the rest of the response to `to.model` mid-stream,
    # after message_start named the model that declined; the non-streaming message
    # names the model that answered, and no other event carries it.
    target = block.get("to")
    model = target.get("model") if isinstance(target, Mapping) else None
    if isinstance(model, str):
        _set(snapshot, "model", model)


def _set(snapshot: StreamSnapshot, key: Any, value: Any) -> None:
    message = snapshot.message
    if message is None:
        return
    if key not in message:
        snapshot._added.append(key)
    message[key] = value


def _ordered(message: dict[str, Any], added: list[Any]) -> dict[str, Any]:
    """The message with keys added after message_start where the non-streaming JSON
    has them: after the last earlier key message_start sent (unknown ones last, in
    arrival order). Sorting, not inserting one by one: a stream may add many keys."""
    if not added:
        return message
    late = set(added)
    early = [key for key in message if key not in late]
    # Rank → position of the last early key ranked below it (-1: before all of them).
    anchor = [-1] * len(_KEY_ORDER)
    for position, key in enumerate(early):
        rank = _KEY_ORDER.get(key)
        if rank is not None:
            for higher in range(rank + 1, len(anchor)):
                anchor[higher] = position
    place: dict[Any, tuple[int, int, int, int]] = {
        key: (position, 0, 0, 0) for position, key in enumerate(early)
    }
    for arrival, key in enumerate(added):
        rank = _KEY_ORDER.get(key)
        if rank is None:
            place[key] = (len(early), 1, 0, arrival)
        else:
            place[key] = (anchor[rank], 1, rank, arrival)
    return {key: message[key] for key in sorted(message, key=place.__getitem__)}


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


def _block_for(event: Mapping[str, Any], snapshot: StreamSnapshot) -> BlockState | None:
    index = event.get("index")
    return snapshot._blocks.get(index) if _is_index(index) else None


def _materialise(snapshot: StreamSnapshot, index: Any, state: BlockState) -> None:
    problem = materialise(state)
    if problem is not None:
        _note(snapshot, {"index": index, **problem})
