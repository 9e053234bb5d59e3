"""The stream fold against the fixtures' non-streaming bodies and the protocol rules."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from streaming.accumulator import accumulate, finalize
from tests.fixtures import COMPLETE_STREAMS, error_bytes, message_bytes, stream_bytes
from tests.streaming.accumulator_events import (
    PROBLEMS_2026,
    TOOL,
    USAGE,
    block_start,
    block_stop,
    compact,
    delta,
    fold,
    fold_bytes,
    partial,
    start,
    text,
)

# --- fixtures ------------------------------------------------------------------------

# What each fixture cannot fold, noted rather than guessed (none for most).
EXPECTED_PROBLEMS: dict[str, list[dict[str, Any]]] = {
    # An unknown delta whose field the text block does not have: the block stays as is.
    "pings_unknown": [{"index": 0, "problem": "unknown_delta", "delta_type": "text_sparkle_delta"}],
    **PROBLEMS_2026,
}


@pytest.mark.parametrize("name", COMPLETE_STREAMS)
def test_complete_stream_folds_to_non_streaming_body(name: str) -> None:
    snapshot = fold_bytes([stream_bytes(name)])
    assert snapshot is not None
    final = finalize(snapshot)
    assert final == json.loads(message_bytes(name))
    assert compact(final) == message_bytes(name)
    assert snapshot.complete and snapshot.error is None
    assert snapshot.problems == EXPECTED_PROBLEMS.get(name, [])
    assert snapshot.unfinished_blocks == []


@pytest.mark.parametrize("name", COMPLETE_STREAMS)
def test_complete_stream_folds_the_same_in_random_chunks(name: str) -> None:
    raw = stream_bytes(name)
    rng = random.Random(name)
    chunks, i = [], 0
    while i < len(raw):
        n = rng.randint(1, 50)
        chunks.append(raw[i : i + n])
        i += n
    assert compact(finalize(fold_bytes(chunks))) == message_bytes(name)


def test_event_count_includes_pings_and_unknown_events() -> None:
    snapshot = fold_bytes([stream_bytes("pings_unknown")])
    assert snapshot is not None
    # 7 protocol events + 3 pings + 1 unknown event type + 1 unknown delta type.
    assert snapshot.event_count == 12


def test_overloaded_midstream() -> None:
    snapshot = fold_bytes([stream_bytes("overloaded_midstream")])
    assert snapshot is not None
    assert snapshot.error == json.loads(error_bytes("overloaded_midstream"))
    assert snapshot.error["error"]["type"] == "overloaded_error"
    assert not snapshot.complete
    final = finalize(snapshot)
    assert final is not None
    assert final["content"] == [{"type": "text", "text": "Let me look at the files"}]
    assert final["stop_reason"] is None
    assert snapshot.unfinished_blocks == [0]


def test_cut_before_stop() -> None:
    snapshot = fold_bytes([stream_bytes("cut_before_stop")])
    assert snapshot is not None and not snapshot.complete and snapshot.error is None
    final = finalize(snapshot)
    assert final is not None
    assert final["id"] == "msg_01Yb8TcMw3HnR6qLfZs2VkPd"
    assert final["content"][0] == {"type": "text", "text": "Reading the config."}
    tool = final["content"][1]
    assert tool["type"] == "tool_use" and tool["input"] == {}
    assert final["stop_reason"] is None and final["usage"]["output_tokens"] == 1
    assert snapshot.unfinished_blocks == [1]
    [problem] = snapshot.problems
    assert problem["index"] == 1 and problem["problem"] == "invalid_input_json"
    assert problem["partial_json"] == '{"path": "/work/main/pyproj'
    # finalize again: same result, the problem is not recorded twice.
    assert finalize(snapshot) == final and len(snapshot.problems) == 1


# --- rules ---------------------------------------------------------------------------


def test_message_start_shape_and_key_order_kept() -> None:
    snapshot = fold([start(container=None)])
    final = finalize(snapshot)
    assert final is not None
    assert list(final) == [
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "usage",
        "container",
    ]
    assert list(final["usage"]) == list(USAGE)


def test_text_deltas_concatenate_and_stop_materialises() -> None:
    snapshot = fold([start(), block_start(0, {"type": "text", "text": ""}), text(0, "a")])
    for event in (text(0, "b"), text(0, "c"), block_stop(0)):
        accumulate(event, snapshot)
    assert snapshot.message is not None
    assert snapshot.message["content"][0]["text"] == "abc"


def test_block_start_text_is_kept_as_prefix() -> None:
    snapshot = fold([start(), block_start(0, {"type": "text", "text": "pre-"}), text(0, "x")])
    assert finalize(snapshot)["content"][0]["text"] == "pre-x"  # type: ignore[index]


def test_ten_thousands_of_deltas_are_linear() -> None:
    snapshot = fold([start(), block_start(0, {"type": "text", "text": ""})])
    started = time.perf_counter()
    for i in range(50_000):
        accumulate(text(0, f"{i % 10}"), snapshot)
    accumulate(block_stop(0), snapshot)
    assert time.perf_counter() - started < 10
    assert snapshot.message is not None
    result = snapshot.message["content"][0]["text"]
    assert len(result) == 50_000 and result.startswith("0123456789")


def test_input_json_pieces_parsed_at_stop() -> None:
    events = [
        start(),
        block_start(0, dict(TOOL)),
        partial(0, ""),
        partial(0, '{"a": [1, "x'),
        partial(0, 'y"], "b'),
        partial(0, '": {}}'),
    ]
    snapshot = fold(events)
    assert snapshot.message is not None
    assert snapshot.message["content"][0]["input"] == {}  # not yet: parsed once, at the stop
    accumulate(block_stop(0), snapshot)
    assert snapshot.message["content"][0]["input"] == {"a": [1, "xy"], "b": {}}
    assert snapshot.problems == []


def test_input_json_only_empty_fragments_is_empty_object() -> None:
    snapshot = fold(
        [start(), block_start(0, dict(TOOL)), partial(0, ""), partial(0, ""), block_stop(0)]
    )
    assert finalize(snapshot)["content"][0]["input"] == {}  # type: ignore[index]


def test_input_without_deltas_kept_as_started() -> None:
    given = {**TOOL, "input": {"ready": True}}
    snapshot = fold([start(), block_start(0, given), block_stop(0)])
    assert finalize(snapshot)["content"][0]["input"] == {"ready": True}  # type: ignore[index]


def test_server_tool_use_input_is_tracked() -> None:
    srv = {"type": "server_tool_use", "id": "srvtoolu_01X", "name": "web_search", "input": {}}
    snapshot = fold([start(), block_start(0, srv), partial(0, '{"query": "q"}'), block_stop(0)])
    assert finalize(snapshot)["content"][0]["input"] == {"query": "q"}  # type: ignore[index]


def test_unparsable_input_recorded_not_raised() -> None:
    snapshot = fold(
        [
            start(),
            block_start(0, dict(TOOL)),
            partial(0, '{"a": tru'),
            block_stop(0),
            block_start(1, dict(TOOL)),
            partial(1, "[" * 100_000),
            block_stop(1),
        ]
    )
    final = finalize(snapshot)
    assert final is not None
    assert [b["input"] for b in final["content"]] == [{}, {}]
    assert [p["index"] for p in snapshot.problems] == [0, 1]
    assert {p["problem"] for p in snapshot.problems} == {"invalid_input_json"}
    assert snapshot.problems[0]["partial_json"] == '{"a": tru'
    json.dumps(snapshot.problems)


def test_thinking_and_signature() -> None:
    events = [
        start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, type="thinking_delta", thinking="Hmm, "),
        delta(0, type="thinking_delta", thinking="let me see."),
        delta(0, type="signature_delta", signature="sig1"),
        delta(0, type="signature_delta", signature="sig2"),
        block_stop(0),
    ]
    block = finalize(fold(events))["content"][0]  # type: ignore[index]
    assert block == {"type": "thinking", "thinking": "Hmm, let me see.", "signature": "sig2"}


def test_citations_delta_creates_then_appends() -> None:
    c1 = {
        "type": "char_location",
        "cited_text": "a",
        "document_index": 0,
        "start_char_index": 0,
        "end_char_index": 1,
    }
    c2 = {**c1, "cited_text": "b"}
    events = [
        start(),
        block_start(0, {"type": "text", "text": ""}),
        delta(0, type="citations_delta", citation=c1),
        text(0, "A"),
        delta(0, type="citations_delta", citation=c2),
        block_stop(0),
        block_start(1, {"type": "text", "text": "", "citations": []}),
        delta(1, type="citations_delta", citation=c2),
        block_stop(1),
    ]
    final = finalize(fold(events))
    assert final is not None
    assert final["content"][0] == {"type": "text", "text": "A", "citations": [c1, c2]}
    assert final["content"][1] == {"type": "text", "text": "", "citations": [c2]}


def test_message_delta_copies_every_key_and_merges_usage() -> None:
    events = [
        start(),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "pause_turn", "stop_sequence": None},
            "usage": {"output_tokens": 10},
        },
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": "refusal",
                "stop_sequence": None,
                "stop_details": {"type": "refusal", "category": "cyber"},
            },
            "usage": {
                "input_tokens": 105,
                "cache_read_input_tokens": None,
                "output_tokens": 25,
                "server_tool_use": {"web_search_requests": 2},
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 20},
            },
        },
        {
            "type": "message_delta",
            "delta": {},
            "usage": {"output_tokens": 30, "server_tool_use": {"web_fetch_requests": 1}},
        },
    ]
    final = finalize(fold(events))
    assert final is not None
    assert final["stop_reason"] == "refusal" and final["stop_sequence"] is None
    assert final["stop_details"] == {"type": "refusal", "category": "cyber"}
    assert final["usage"] == {
        "input_tokens": 105,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 300,  # a null in the delta keeps the start value
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 20},
        "output_tokens": 30,  # overwritten, never summed
        "service_tier": "standard",
        "server_tool_use": {"web_fetch_requests": 1},  # nested dicts overwrite too
    }
    # Added by a message_delta, placed where the non-streaming JSON has it.
    assert list(final) == [
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "stop_details",
        "usage",
    ]


def test_message_delta_cannot_clobber_content_or_usage() -> None:
    events = [
        start(),
        block_start(0, {"type": "text", "text": "kept"}),
        block_stop(0),
        {
            "type": "message_delta",
            "delta": {"content": [], "usage": None},
            "usage": {"output_tokens": 2},
        },
    ]
    final = finalize(fold(events))
    assert final is not None
    assert final["content"] == [{"type": "text", "text": "kept"}]
    assert final["usage"]["output_tokens"] == 2


def test_message_stop_and_ping() -> None:
    snapshot = fold([start(), {"type": "ping"}, {"type": "ping"}])
    assert not snapshot.complete and snapshot.event_count == 3
    accumulate({"type": "message_stop"}, snapshot)
    assert snapshot.complete and snapshot.event_count == 4


def test_message_stop_without_start_is_not_complete() -> None:
    snapshot = accumulate({"type": "message_stop"}, None)
    assert not snapshot.complete and finalize(snapshot) is None


def test_error_before_message_start() -> None:
    body = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
    snapshot = accumulate(body, None)
    assert snapshot.error == body and snapshot.message is None
    assert finalize(snapshot) is None and finalize(None) is None


def test_unknown_events_ignored_and_unfoldable_deltas_noted() -> None:
    base = [start(), block_start(0, {"type": "text", "text": ""}), text(0, "x"), block_stop(0)]
    noisy = [
        base[0],
        {"type": "future_event", "index": 0, "payload": [1]},
        base[1],
        delta(0, type="future_delta", text="NO"),
        base[2],
        {"type": "content_block_annotation", "index": 0},
        base[3],
    ]
    assert finalize(fold(noisy)) == finalize(fold(base))
    # future_delta is not text_delta: appending its `text` would be a guess.
    assert fold(noisy).problems == [
        {"index": 0, "problem": "unknown_delta", "delta_type": "future_delta"}
    ]


def test_cut_text_block_materialised_by_finalize() -> None:
    snapshot = fold(
        [start(), block_start(0, {"type": "text", "text": ""}), text(0, "par"), text(0, "tial")]
    )
    assert finalize(snapshot)["content"][0]["text"] == "partial"  # type: ignore[index]
    assert snapshot.unfinished_blocks == [0]


def test_finalize_returns_independent_copy_and_fold_continues() -> None:
    snapshot = fold([start(), block_start(0, {"type": "text", "text": ""}), text(0, "a")])
    first = finalize(snapshot)
    assert first is not None
    first["content"][0]["text"] = "mutated"
    first["usage"]["output_tokens"] = -1
    accumulate(text(0, "b"), snapshot)
    second = finalize(snapshot)
    assert second is not None
    assert second["content"][0]["text"] == "ab" and second["usage"]["output_tokens"] == 1


def test_input_event_not_mutated() -> None:
    events = [
        start(),
        block_start(0, dict(TOOL)),
        partial(0, '{"k": 1}'),
        block_stop(0),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 9},
        },
    ]
    before = json.dumps(events)
    fold(events)
    assert json.dumps(events) == before


def test_deeply_nested_input_survives_finalize() -> None:
    nested = "[" * 900 + "]" * 900
    snapshot = fold([start(), block_start(0, dict(TOOL)), partial(0, nested), block_stop(0)])
    final = finalize(snapshot)
    assert final is not None and isinstance(final["content"][0]["input"], list)


def test_finalize_has_no_private_keys() -> None:
    for name in ("cut_before_stop", "tool_use", "citations"):
        final = finalize(fold_bytes([stream_bytes(name)]))

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                assert not any(str(k).startswith("_") for k in value)
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(final)
        assert json.loads(compact(final)) == final
