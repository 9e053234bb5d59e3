"""Content blocks of the stream fold: their working state and how a delta extends one.

Pure helpers for `streaming.accumulator`, which owns the snapshot and the problem
notes. String fragments are kept as lists of pieces and joined once, at the block's
stop or at `finalize`, so a block fed tens of thousands of deltas stays linear.

Known deltas (text, thinking, signature, tool input, citations, compaction) are folded
as the API documents them. A delta of a type this module does not know is folded
generically only where its shape leaves one reading: `{"type": "<block type>_delta",
"<field>": "<string>"}` on a block whose `<field>` is a string (or null) extends that
field, as text_delta extends `text`. Anything else leaves the block as it is and is
reported to the caller, never guessed at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Why a delta was not folded (the caller notes it with the block's index).
NOT_APPLICABLE = "delta_not_applicable"  # a known delta on a block it does not fit
UNKNOWN_DELTA = "unknown_delta"  # a new delta type whose shape allows no safe reading

# Delta type → (field of the block it extends, block type it applies to).
_TEXT_DELTAS: dict[str, tuple[str, str]] = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "thinking"),
}


@dataclass(slots=True)
class BlockState:
    """Working state of one content block, keyed by its stream `index`."""

    block: dict[str, Any]
    # Field name → pieces still to be joined into block[field].
    pieces: dict[str, list[str]] = field(default_factory=dict)
    # input_json_delta fragments; None until the first one arrives.
    json_pieces: list[str] | None = None
    json_dirty: bool = False
    stopped: bool = False


def new_block(given: Mapping[str, Any]) -> dict[str, Any]:
    """The block as content_block_start gave it, detached from the event where the
    fold will append to it (citations), so the caller's event is never mutated."""
    block = dict(given)
    citations = block.get("citations")
    if isinstance(citations, list):
        block["citations"] = list(citations)
    return block


def apply_delta(state: BlockState, delta: Mapping[str, Any]) -> str | None:
    """Fold one delta into its block: None when applied, else why it was not."""
    kind, block = delta.get("type"), state.block
    block_type = block.get("type")
    if not isinstance(kind, str):
        return UNKNOWN_DELTA
    if kind in _TEXT_DELTAS:
        name, fits = _TEXT_DELTAS[kind]
        piece = delta.get(name)
        if not isinstance(piece, str) or block_type != fits:
            return NOT_APPLICABLE
        _extend(state, name, piece)
    elif kind == "input_json_delta":
        piece = delta.get("partial_json")
        if not isinstance(piece, str) or not _tracks_input(block):
            return NOT_APPLICABLE
        if state.json_pieces is None:
            state.json_pieces = []
        state.json_pieces.append(piece)
        state.json_dirty = True
    elif kind == "signature_delta":
        # One signature per block, sent whole: the last one stands.
        signature = delta.get("signature")
        if not isinstance(signature, str) or block_type != "thinking":
            return NOT_APPLICABLE
        block["signature"] = signature
    elif kind == "citations_delta":
        citation = delta.get("citation")
        if citation is None or block_type != "text":
            return NOT_APPLICABLE
        citations = block.get("citations")
        if isinstance(citations, list):
            citations.append(citation)
        else:
            block["citations"] = [citation]
    elif kind == "compaction_delta":
        return _compaction(state, delta)
    else:
        return _generic(state, delta)
    return None


def materialise(state: BlockState) -> dict[str, Any] | None:
    """Join pending pieces into the block; returns a problem (without the index) when
    the tool input's JSON does not parse. Idempotent: a second call finds no work."""
    block = state.block
    for name, pieces in state.pieces.items():
        if len(pieces) != 1 or block.get(name) is not pieces[0]:
            joined = "".join(pieces)
            pieces[:] = [joined]
            block[name] = joined
    if not state.json_dirty or state.json_pieces is None:
        return None
    state.json_dirty = False
    raw = "".join(state.json_pieces)
    state.json_pieces = [raw]
    if not raw.strip():
        block["input"] = {}
        return None
    try:
        block["input"] = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        if not isinstance(block.get("input"), dict):
            block["input"] = {}
        return {"problem": "invalid_input_json", "detail": str(exc), "partial_json": raw}
    return None


def _extend(state: BlockState, name: str, piece: str) -> None:
    pieces = state.pieces.get(name)
    if pieces is None:
        start = state.block.get(name)
        state.pieces[name] = pieces = [start] if isinstance(start, str) else []
    pieces.append(piece)


def _compaction(state: BlockState, delta: Mapping[str, Any]) -> str | None:
    # The block starts as {"content": null, "encrypted_content": null}. The docs send
    # the summary in one delta; should it come in several, `content` is a text and
    # extends, `encrypted_content` is an opaque blob each delta carries whole.
    if state.block.get("type") != "compaction":
        return NOT_APPLICABLE
    content, sealed = delta.get("content"), delta.get("encrypted_content")
    if not (content is None or isinstance(content, str)) or not (
        sealed is None or isinstance(sealed, str)
    ):
        return NOT_APPLICABLE
    if content is not None:
        _extend(state, "content", content)
    if sealed is not None:
        state.block["encrypted_content"] = sealed
    return None


def _generic(state: BlockState, delta: Mapping[str, Any]) -> str | None:
    kind, block = delta.get("type"), state.block
    fields = [name for name in delta if name != "type"]
    if kind != f"{block.get('type')}_delta" or len(fields) != 1:
        return UNKNOWN_DELTA
    (name,) = fields
    piece, current = delta[name], block.get(name, ...)
    if not isinstance(piece, str) or not (current is None or isinstance(current, str)):
        return UNKNOWN_DELTA
    _extend(state, name, piece)
    return None


def _tracks_input(block: Mapping[str, Any]) -> bool:
    # tool_use, server_tool_use, mcp_tool_use and whatever *_tool_use comes next.
    kind = block.get("type")
    return isinstance(block.get("input"), dict) or (
        isinstance(kind, str) and kind.endswith("tool_use")
    )
