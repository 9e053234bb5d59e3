"""The fold and the 2026 stream shapes: compaction, fallback, server tool results,
omitted thinking, refusals, unknown blocks and deltas, the new message and usage fields.
The fixture pairs are described in tests/fixtures/streams/README.md."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streaming.accumulator import finalize
from tests.fixtures import message_bytes, stream_bytes
from tests.storage.test_linear_time import assert_linear
from tests.streaming.accumulator_events import (
    PROBLEMS_2026,
    STREAMS_2026,
    USAGE,
    awkward_chunkings,
    awkward_cuts,
    block_start,
    block_stop,
    compact,
    delta,
    fold,
    fold_bytes,
    message_delta,
    start,
    text,
)

# Serial (make test's second phase): timings that must grow linearly (1 MB vs 256 KB).
pytestmark = pytest.mark.serial

# --- the fixture pairs ---------------------------------------------------------------


@pytest.mark.parametrize("name", STREAMS_2026)
def test_fixture_folds_to_its_non_streaming_json(name: str) -> None:
    snapshot = fold_bytes([stream_bytes(name)])
    assert snapshot is not None and snapshot.complete and snapshot.error is None
    final = finalize(snapshot)
    expected = json.loads(message_bytes(name))
    assert final == expected
    assert list(final) == list(expected)  # type: ignore[arg-type]
    assert compact(final) == message_bytes(name)
    assert snapshot.problems == PROBLEMS_2026.get(name, [])
    assert snapshot.unfinished_blocks == []


@pytest.mark.parametrize("name", STREAMS_2026)
def test_fixture_folds_the_same_however_it_is_cut(name: str) -> None:
    expected = json.loads(message_bytes(name))
    for way, chunks in awkward_chunkings(stream_bytes(name)).items():
        snapshot = fold_bytes(chunks)
        final = finalize(snapshot)
        assert final == expected, way
        assert list(final) == list(expected), way  # type: ignore[arg-type]
        assert snapshot is not None and snapshot.problems == PROBLEMS_2026.get(name, []), way


def test_the_fixtures_hold_every_awkward_cut_the_tests_claim() -> None:
    raw = b"".join(stream_bytes(name) for name in STREAMS_2026)
    cuts = awkward_cuts(raw)
    assert any(raw[cut] & 0xC0 == 0x80 for cut in cuts)  # inside a multi-byte character
    assert any(raw[cut - 1 : cut + 1] == b"\r\n" for cut in cuts)  # between CR and LF
    assert any(raw[cut - 1 : cut + 1] == b"at" for cut in cuts)  # inside "data:"
    assert stream_bytes("refusal").count(b"\r\n") > 10


def test_fixtures_cover_the_2026_block_types_and_stop_reasons() -> None:
    messages = [json.loads(message_bytes(name)) for name in STREAMS_2026]
    types = {block["type"] for message in messages for block in message["content"]}
    assert {"compaction", "fallback", "server_tool_result", "thinking"} <= types
    assert {"compaction", "refusal"} <= {message["stop_reason"] for message in messages}


# --- compaction ----------------------------------------------------------------------

COMPACTION = {"type": "compaction", "content": None, "encrypted_content": None}


def _compaction(*body: dict[str, Any]) -> dict[str, Any]:
    events = [start(), block_start(0, dict(COMPACTION)), *body, block_stop(0)]
    final = finalize(fold(events))
    assert final is not None
    return final["content"][0]


def test_compaction_delta_sets_summary_and_encrypted_content() -> None:
    block = _compaction(delta(0, type="compaction_delta", content="Sum.", encrypted_content="E1"))
    assert block == {"type": "compaction", "content": "Sum.", "encrypted_content": "E1"}


def test_compaction_deltas_extend_the_summary_and_keep_the_last_sealed_blob() -> None:
    block = _compaction(
        delta(0, type="compaction_delta", content="Earlier turns ", encrypted_content="E1"),
        delta(0, type="compaction_delta", content=None, encrypted_content=None),
        delta(0, type="compaction_delta", content="summarised.", encrypted_content="E2"),
    )
    assert block["content"] == "Earlier turns summarised."
    assert block["encrypted_content"] == "E2"


def test_compaction_without_content_stays_null() -> None:
    block = _compaction(delta(0, type="compaction_delta", content=None, encrypted_content="E"))
    assert block == {"type": "compaction", "content": None, "encrypted_content": "E"}


def test_compaction_delta_elsewhere_or_malformed_is_noted_not_applied() -> None:
    events = [
        start(),
        block_start(0, {"type": "text", "text": "t"}),
        delta(0, type="compaction_delta", content="no", encrypted_content="no"),
        block_start(1, dict(COMPACTION)),
        delta(1, type="compaction_delta", content=["no"], encrypted_content="no"),
    ]
    snapshot = fold(events)
    final = finalize(snapshot)
    assert final is not None
    assert final["content"] == [{"type": "text", "text": "t"}, COMPACTION]
    assert [(p["index"], p["problem"]) for p in snapshot.problems] == [
        (0, "delta_not_applicable"),
        (1, "delta_not_applicable"),
    ]


def _compaction_stream(n: int) -> list[dict[str, Any]]:
    piece = "summary—" * 8  # 64 characters, one multi-byte
    deltas = [
        delta(0, type="compaction_delta", content=piece, encrypted_content=None)
        for _ in range(n // len(piece))
    ]
    return [start(), block_start(0, dict(COMPACTION)), *deltas, block_stop(0)]


def test_a_compaction_block_of_ten_thousands_of_deltas_folds_linearly() -> None:
    # 4k deltas at 256 KB, 16k at 1 MB: joined once, never re-concatenated.
    assert_linear(lambda events: finalize(fold(events)), _compaction_stream)
    final = finalize(fold(_compaction_stream(64 * 10_000)))
    assert final is not None and final["content"][0]["content"] == "summary—" * 80_000


# --- unknown blocks and deltas -------------------------------------------------------


def test_unknown_block_is_kept_as_it_started() -> None:
    given = {"type": "hologram", "frames": [{"n": 1}], "meta": {"fps": 24}, "label": None}
    snapshot = fold([start(), block_start(0, given), block_stop(0)])
    final = finalize(snapshot)
    assert final is not None and final["content"] == [given]
    assert snapshot.problems == []


@pytest.mark.parametrize("start_value", ["pre-", None])
def test_unknown_delta_named_after_its_block_extends_that_string_field(
    start_value: str | None,
) -> None:
    events = [
        start(),
        block_start(0, {"type": "hologram", "caption": start_value, "n": 1}),
        delta(0, type="hologram_delta", caption="a"),
        delta(0, type="hologram_delta", caption="b"),
        block_stop(0),
    ]
    snapshot = fold(events)
    block = finalize(snapshot)["content"][0]  # type: ignore[index]
    assert block == {"type": "hologram", "caption": (start_value or "") + "ab", "n": 1}
    assert snapshot.problems == []


@pytest.mark.parametrize(
    "body",
    [
        {"type": "hologram_delta", "absent": "x"},  # no such field to extend
        {"type": "hologram_delta", "n": "x"},  # the field is not a string
        {"type": "hologram_delta", "caption": 5},  # the piece is not a string
        {"type": "hologram_delta", "caption": "x", "more": "y"},  # two readings
        {"type": "hologram_delta"},  # nothing to apply
        {"type": "other_delta", "caption": "x"},  # named after another block type
        {"type": "hologram_patch", "caption": "x"},  # not a *_delta at all
        {"type": None, "caption": "x"},
        {"type": ["hologram_delta"], "caption": "x"},
    ],
)
def test_unknown_delta_with_no_single_reading_leaves_the_block_and_is_noted(
    body: dict[str, Any],
) -> None:
    given = {"type": "hologram", "caption": "c", "n": 1}
    events = [start(), block_start(0, dict(given)), delta(0, **body), block_stop(0)]
    snapshot = fold(events)
    assert finalize(snapshot)["content"] == [given]  # type: ignore[index]
    kind = body.get("type")
    assert snapshot.problems == [
        {
            "index": 0,
            "problem": "unknown_delta",
            "delta_type": kind if isinstance(kind, str) else None,
        }
    ]
    json.dumps(snapshot.problems)


def test_many_unfoldable_deltas_make_one_note() -> None:
    events = [start(), block_start(0, {"type": "text", "text": ""})]
    events += [delta(0, type="sparkle_delta", sparkle="*")] * 10_000
    events += [text(0, "kept"), block_stop(0)]
    snapshot = fold(events)
    assert finalize(snapshot)["content"] == [{"type": "text", "text": "kept"}]  # type: ignore[index]
    assert snapshot.problems == [
        {"index": 0, "problem": "unknown_delta", "delta_type": "sparkle_delta"}
    ]


def test_events_are_not_mutated_by_the_fold() -> None:
    citation = {"type": "char_location", "cited_text": "a"}
    events = [
        start(),
        block_start(0, {"type": "text", "text": "", "citations": []}),
        delta(0, type="citations_delta", citation=citation),
        block_start(1, {"type": "hologram", "caption": None}),
        delta(1, type="hologram_delta", caption="x"),
        block_stop(0),
        block_stop(1),
    ]
    before = json.dumps(events)
    final = finalize(fold(events))
    assert json.dumps(events) == before
    assert final is not None and final["content"][0]["citations"] == [citation]


# --- fallback, thinking, stop reasons --------------------------------------------------

FALLBACK = {
    "type": "fallback",
    "from": {"model": "claude-fable-5"},
    "to": {"model": "claude-opus-5-5"},
    "trigger": {"type": "refusal", "category": "cyber"},
}


def test_fallback_block_names_the_model_that_answered() -> None:
    snapshot = fold([start(model="claude-fable-5"), block_start(0, FALLBACK), block_stop(0)])
    final = finalize(snapshot)
    assert final is not None
    assert final["model"] == "claude-opus-5-5" and final["content"] == [FALLBACK]
    assert list(final)[3] == "model"  # switched in place, not re-added


def test_fallback_without_a_target_model_leaves_the_model() -> None:
    odd = {"type": "fallback", "from": {"model": "a"}, "to": None}
    final = finalize(fold([start(model="claude-fable-5"), block_start(0, odd)]))
    assert final is not None and final["model"] == "claude-fable-5"


def test_a_model_in_message_delta_has_the_last_word() -> None:
    events = [
        start(model="claude-fable-5"),
        block_start(0, FALLBACK),
        block_stop(0),
        message_delta({"stop_reason": "end_turn", "model": "claude-opus-5-5-20261101"}, {}),
    ]
    assert finalize(fold(events))["model"] == "claude-opus-5-5-20261101"  # type: ignore[index]


def test_omitted_thinking_folds_to_empty_text_and_its_signature() -> None:
    events = [
        start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, type="signature_delta", signature="EuYBsig"),
        block_stop(0),
    ]
    block = finalize(fold(events))["content"][0]  # type: ignore[index]
    assert block == {"type": "thinking", "thinking": "", "signature": "EuYBsig"}


@pytest.mark.parametrize(
    ("reason", "details"),
    [
        ("refusal", {"type": "refusal", "category": "bio", "explanation": None}),
        ("compaction", None),
    ],
)
def test_2026_stop_reasons_and_details(reason: str, details: Any) -> None:
    events = [
        start(stop_details=None),
        message_delta({"stop_reason": reason, "stop_sequence": None, "stop_details": details}, {}),
    ]
    final = finalize(fold(events))
    assert final is not None
    assert (final["stop_reason"], final["stop_details"]) == (reason, details)


# --- message_delta: every field, usage key by key, key order ---------------------------


def test_message_delta_merges_its_top_level_fields() -> None:
    edits = {"applied_edits": [{"type": "clear_thinking_20251015", "cleared_input_tokens": 9}]}
    events = [
        start(input_transformations=[{"type": "thinking_dropped", "path": "messages.0"}]),
        block_start(0, {"type": "text", "text": "kept"}),
        block_stop(0),
        message_delta(
            {"stop_reason": "end_turn"},
            {"output_tokens": 5},
            context_management=edits,
            input_transformations=[],  # after a mid-stream fallback: the serving model's
            content=[],  # content has its own fold
        ),
        message_delta({}, {}, context_management=None),
    ]
    final = finalize(fold(events))
    assert final is not None
    assert final["input_transformations"] == []
    assert final["context_management"] is None  # the API's last word, null included
    assert final["content"] == [{"type": "text", "text": "kept"}]
    assert final["type"] == "message" and "delta" not in final


def test_usage_merges_key_by_key_and_replaces_nested_objects_whole() -> None:
    first = {"type": "message", "model": "claude-fable-5", "input_tokens": 9, "output_tokens": 0}
    second = {"type": "fallback_message", "model": "claude-opus-5-5", "input_tokens": 9}
    events = [
        start(),
        message_delta(
            {},
            {"output_tokens": 7, "iterations": [first], "output_tokens_details": {"a": 1}},
        ),
        message_delta(
            {},
            {
                "output_tokens": 9,
                "iterations": [first, second],
                "output_tokens_details": {"thinking_tokens": 4},
                "fallback_credit": {"status": {"type": "redeemed"}},
                "cache_read_input_tokens": None,
                "speed": None,
            },
        ),
    ]
    usage = finalize(fold(events))["usage"]  # type: ignore[index]
    assert usage == {
        **USAGE,
        "output_tokens": 9,  # overwritten, never summed
        "iterations": [first, second],
        "output_tokens_details": {"thinking_tokens": 4},  # not merged with {"a": 1}
        "fallback_credit": {"status": {"type": "redeemed"}},
    }


def test_keys_added_after_message_start_take_their_non_streaming_place() -> None:
    events = [
        start(private_field={"x": 1}),
        message_delta(
            {"stop_reason": "end_turn", "container": {"id": "container_1"}, "stop_details": None},
            {"output_tokens": 2},
            brand_new=True,
            context_management={"applied_edits": []},
            diagnostics={"cache_miss_reason": None},
        ),
    ]
    final = finalize(fold(events))
    assert list(final) == [  # type: ignore[arg-type]
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "stop_details",
        "usage",
        "diagnostics",
        "context_management",
        "container",
        "private_field",  # message_start's own, after the keys placed before it
        "brand_new",  # unknown and late: last
    ]


def test_message_start_order_is_the_apis_and_is_kept() -> None:
    odd = {
        "type": "message_start",
        "message": {
            "id": "m",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-opus-5-5",
            "container": None,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
    }
    events = [odd, message_delta({"container": {"id": "c"}, "stop_reason": "end_turn"}, {})]
    final = finalize(fold(events))
    assert list(final) == list(odd["message"])  # type: ignore[arg-type]
    assert final["container"] == {"id": "c"}  # type: ignore[index]


def test_many_keys_added_keep_their_arrival_order() -> None:
    names = [f"k{i}" for i in range(20_000)]
    events = [start(), message_delta({}, {}, **dict.fromkeys(names, 0))]
    final = finalize(fold(events))
    assert list(final)[-len(names) :] == names  # type: ignore[arg-type]
