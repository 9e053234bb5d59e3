"""The stream fold given malformed, out-of-order or random events: it records
problems, it never raises."""

from __future__ import annotations

import json
import random
from typing import Any

from streaming.accumulator import MAX_PROBLEMS, StreamSnapshot, accumulate, finalize
from tests.streaming.accumulator_events import (
    TOOL,
    block_start,
    block_stop,
    delta,
    fold,
    partial,
    start,
    text,
)

# --- robustness ----------------------------------------------------------------------


def test_events_before_start_and_without_blocks_ignored() -> None:
    snapshot = fold(
        [
            text(0, "early"),
            block_start(0, {"type": "text", "text": ""}),
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        ]
    )
    assert snapshot.message is None and snapshot.event_count == 3
    accumulate(start(), snapshot)
    for event in (text(5, "x"), block_stop(5), partial(3, "{"), text(-1, "x")):
        accumulate(event, snapshot)
    assert finalize(snapshot)["content"] == []  # type: ignore[index]
    assert snapshot.problems == []


def test_malformed_shapes_never_raise() -> None:
    bad: list[Any] = [
        None,
        [],
        "message_start",
        7,
        {},
        {"type": None},
        {"type": 5},
        {"type": ["x"]},
        {"type": "message_start"},
        {"type": "message_start", "message": "x"},
        {"type": "content_block_start"},
        {"type": "content_block_start", "index": "0"},
        {"type": "content_block_start", "index": True, "content_block": {}},
        {"type": "content_block_start", "index": 0, "content_block": None},
        {"type": "content_block_delta", "index": 0},
        {"type": "content_block_delta", "delta": 1},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": None}},
        {"type": "content_block_stop", "index": None},
        {"type": "message_delta", "delta": 5},
        {"type": "message_delta", "usage": [1]},
        {"type": "error", "error": None},
    ]
    snapshot: StreamSnapshot | None = None
    for event in bad:
        snapshot = accumulate(event, snapshot)
    accumulate(start(), snapshot)
    for event in bad:
        snapshot = accumulate(event, snapshot)
    assert snapshot is not None and snapshot.event_count == 2 * len(bad) + 1
    assert not [p for p in snapshot.problems if p["problem"] == "internal_error"]
    json.dumps(finalize(snapshot))


def test_message_start_with_odd_content_and_usage() -> None:
    snapshot = fold(
        [
            start(content="nope", usage=None),
            text(0, "x"),
            {"type": "message_delta", "usage": {"output_tokens": 3}},
        ]
    )
    final = finalize(snapshot)
    assert final is not None
    assert final["content"] == [] and final["usage"] == {"output_tokens": 3}


def test_duplicate_and_out_of_order_blocks_recorded() -> None:
    snapshot = fold(
        [
            start(),
            block_start(0, {"type": "text", "text": "a"}),
            block_start(0, {"type": "text", "text": "b"}),
            block_start(2, {"type": "text", "text": "c"}),
            text(2, "!"),
            start(),
        ]
    )
    final = finalize(snapshot)
    assert final is not None
    assert [b["text"] for b in final["content"]] == ["a", "c!"]
    assert [p["problem"] for p in snapshot.problems] == [
        "duplicate_block_start",
        "block_index_out_of_order",
        "duplicate_message_start",
    ]


def test_problems_are_capped() -> None:
    snapshot = fold([start()] * (MAX_PROBLEMS + 20))
    assert len(snapshot.problems) == MAX_PROBLEMS


def test_random_garbage_events_never_raise() -> None:
    keys = ["type", "index", "delta", "content_block", "message", "usage", "text", "partial_json"]
    types = [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "error",
        "ping",
        "text_delta",
        "input_json_delta",
        "thinking_delta",
        "signature_delta",
        "citations_delta",
        "tool_use",
        "text",
        "thinking",
    ]

    def value(rng: random.Random, depth: int) -> Any:
        pick = rng.randrange(9 if depth < 3 else 6)
        if pick == 0:
            return rng.choice(types)
        if pick == 1:
            return rng.randint(-2, 4)
        if pick == 2:
            return rng.choice([None, True, 1.5, "", "{", '{"a": 1}'])
        if pick in (3, 4, 5):
            return rng.choice(types[:8])
        if pick in (6, 7):
            return {rng.choice(keys): value(rng, depth + 1) for _ in range(rng.randint(0, 5))}
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]

    for seed in range(300):
        rng = random.Random(seed)
        snapshot: StreamSnapshot | None = None
        if rng.random() < 0.7:
            snapshot = accumulate(start(), None)
        for _ in range(rng.randint(1, 60)):
            event = {k: value(rng, 1) for k in rng.sample(keys, rng.randint(0, len(keys)))}
            if rng.random() < 0.8:
                event["type"] = rng.choice(types[:8])
            snapshot = accumulate(event, snapshot)
        assert snapshot is not None
        assert not [p for p in snapshot.problems if p["problem"] == "internal_error"], seed
        json.dumps(finalize(snapshot))
        json.dumps(snapshot.problems)


def test_deltas_for_another_block_type_left_out_and_noted() -> None:
    events = [
        start(),
        block_start(0, {"type": "text", "text": ""}),
        delta(0, type="thinking_delta", thinking="no"),
        delta(0, type="signature_delta", signature="no"),
        partial(0, '{"no": 1}'),
        partial(0, '{"again": 1}'),
        block_start(1, dict(TOOL)),
        text(1, "no"),
        block_stop(0),
        block_stop(1),
    ]
    snapshot = fold(events)
    final = finalize(snapshot)
    assert final is not None
    assert final["content"] == [{"type": "text", "text": ""}, TOOL]
    # One note per block and delta type, however many such deltas came.
    assert [(p["index"], p["problem"], p["delta_type"]) for p in snapshot.problems] == [
        (0, "delta_not_applicable", "thinking_delta"),
        (0, "delta_not_applicable", "signature_delta"),
        (0, "delta_not_applicable", "input_json_delta"),
        (1, "delta_not_applicable", "text_delta"),
    ]
