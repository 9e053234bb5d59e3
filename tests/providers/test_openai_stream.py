"""The stream translator: replayed whole and re-chunked, folded by our own accumulator."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

import providers.openai_stream as openai_stream
from providers.json_balance import JsonBalance
from providers.openai_errors import BackendFailure
from providers.openai_response import from_openai_response
from providers.openai_stream import OpenAIStreamTranslator
from streaming.accumulator import StreamSnapshot, accumulate, finalize
from streaming.sse import SSEDecoder
from tests.providers.openai_chunks import (
    call,
    chunk,
    completion_from_chunks,
    scenario_chunks,
    sse_body,
    usage_chunk,
)

MODEL = "claude-haiku-4-5"
REQUEST_ID = "5b1e77"
COMPLETE = [
    "text",
    "tools",
    "interleaved",
    "forced",
    "cached",
    "reasoning",
    "length",
    "content_filter",
    "refusal",
    "stop_sequence",
]
STOPS = ("END",)


def translator() -> OpenAIStreamTranslator:
    return OpenAIStreamTranslator(model=MODEL, request_id=REQUEST_ID, stop_sequences=STOPS)


def run(pieces: list[bytes]) -> bytes:
    t = translator()
    return b"".join(t.feed(p) for p in pieces) + t.finish()


def events(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    decoder = SSEDecoder()
    return [(e.event, json.loads(e.data)) for e in decoder.decode(raw)]


def fold(raw: bytes) -> StreamSnapshot:
    snapshot = None
    for _, payload in events(raw):
        snapshot = accumulate(payload, snapshot)
    assert snapshot is not None
    return snapshot


def non_streaming(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    return from_openai_response(
        completion_from_chunks(chunks), model=MODEL, request_id=REQUEST_ID, stop_sequences=STOPS
    )


def split_every(raw: bytes, size: int) -> list[bytes]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


@pytest.mark.parametrize("name", COMPLETE)
def test_stream_folds_into_the_non_streaming_translation(name: str) -> None:
    chunks = scenario_chunks(name)
    out = run([sse_body(chunks)])
    snapshot = fold(out)
    assert snapshot.complete and snapshot.error is None
    assert snapshot.problems == [] and snapshot.unfinished_blocks == []
    assert finalize(snapshot) == non_streaming(chunks)


@pytest.mark.parametrize("name", COMPLETE)
def test_every_event_names_its_type(name: str) -> None:
    out = run([sse_body(scenario_chunks(name))])
    assert out.endswith(b"\n\n")
    for event, payload in events(out):
        assert event == payload["type"]


@pytest.mark.parametrize("name", ["text", "tools", "interleaved", "refusal"])
def test_any_chunking_gives_the_same_bytes(name: str) -> None:
    raw = sse_body(scenario_chunks(name))
    whole = run([raw])
    for size in (1, 2, 3, 5, 7, 64):
        assert run(split_every(raw, size)) == whole, size
    rng = random.Random(name)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(raw)), 12))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        assert run(pieces) == whole


def test_every_two_piece_split_gives_the_same_bytes() -> None:
    # Cuts inside every UTF-8 character, `data:` prefix, escape and line end.
    raw = sse_body(scenario_chunks("tools"))
    whole = run([raw])
    for cut in range(1, len(raw)):
        assert run([raw[:cut], raw[cut:]]) == whole, cut


def test_crlf_and_comments_from_the_backend() -> None:
    raw = sse_body(scenario_chunks("tools"))
    noisy = b": keep-alive\r\n\r\n" + raw.replace(b"\n", b"\r\n")
    assert run([noisy]) == run([raw])


def test_events_are_flushed_as_their_chunk_arrives() -> None:
    chunks = scenario_chunks("tools")
    t = translator()
    flushed = [t.feed(sse_body([c], done=False)) for c in chunks]
    for sent, out in zip(chunks, flushed, strict=True):
        delta = (sent.get("choices") or [{}])[0].get("delta") or {}
        emitted = [p["delta"] for _, p in events(out) if p["type"] == "content_block_delta"]
        if delta.get("content"):
            assert {"type": "text_delta", "text": delta["content"]} in emitted
        for fragment in delta.get("tool_calls") or ():
            arguments = fragment["function"]["arguments"]
            if arguments:
                assert {"type": "input_json_delta", "partial_json": arguments} in emitted
    assert flushed[0].startswith(b"event: message_start\n")
    # The finish closes the blocks; message_delta waits for the usage chunk and [DONE].
    assert b"message_delta" not in b"".join(flushed)
    assert t.feed(b"data: [DONE]\n\n").startswith(b"event: message_delta\n")


def test_sequential_tool_calls_stream_one_block_at_a_time() -> None:
    kinds = [
        (p["type"], p.get("index")) for _, p in events(run([sse_body(scenario_chunks("tools"))]))
    ]
    starts_and_stops = [k for k in kinds if k[0] in ("content_block_start", "content_block_stop")]
    assert starts_and_stops == [
        ("content_block_start", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_stop", 2),
    ]


def test_interleaved_calls_each_keep_their_own_block_until_the_end() -> None:
    out = events(run([sse_body(scenario_chunks("interleaved"))]))
    deltas = [p["index"] for _, p in out if p["type"] == "content_block_delta"]
    assert deltas == [0, 1, 0, 1]
    stops = [i for i, (_, p) in enumerate(out) if p["type"] == "content_block_stop"]
    last_delta = max(i for i, (_, p) in enumerate(out) if p["type"] == "content_block_delta")
    assert all(i > last_delta for i in stops) and len(stops) == 2


def test_usage_comes_from_the_final_usage_chunk() -> None:
    out = events(run([sse_body(scenario_chunks("cached"))]))
    message_delta = next(p for _, p in out if p["type"] == "message_delta")
    assert message_delta["usage"] == {
        "input_tokens": 1024,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1024,
        "output_tokens": 5,
        "output_tokens_details": {"thinking_tokens": 0},
    }
    start = next(p for _, p in out if p["type"] == "message_start")
    assert start["message"]["usage"]["input_tokens"] == 0  # not known before the end


def test_a_stream_without_usage_says_so() -> None:
    chunks = [c for c in scenario_chunks("text") if "usage" not in c]
    snapshot = fold(run([sse_body(chunks)]))
    assert snapshot.complete
    assert finalize(snapshot)["usage"]["usage_unreported"] is True
    assert finalize(snapshot) == non_streaming(chunks)


def test_a_finish_without_done_completes_at_the_end_of_the_body() -> None:
    t = translator()
    out = t.feed(sse_body(scenario_chunks("text"), done=False))
    assert b"message_stop" not in out
    end = t.finish()
    assert end.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert fold(out + end).complete


def test_identity_of_what_answered() -> None:
    t = translator()
    t.feed(sse_body(scenario_chunks("text")))
    assert (t.served_model, t.backend_id) == ("fake-model", "chatcmpl-fake0001")


def test_nothing_after_done_is_translated() -> None:
    t = translator()
    t.feed(sse_body(scenario_chunks("text")))
    assert t.ended and t.failure is None
    assert t.feed(sse_body(scenario_chunks("text"))) == b"" and t.finish() == b""


def error_of(raw: bytes) -> dict[str, Any]:
    snapshot = fold(raw)
    assert not snapshot.complete and snapshot.error is not None
    last_event, last = events(raw)[-1]
    assert last_event == "error" and last == snapshot.error
    return snapshot.error["error"]


def test_backend_error_mid_stream() -> None:
    chunks = scenario_chunks("tools")[:5]
    error = {"error": {"message": "The server had an error", "type": "server_error", "code": None}}
    t = translator()
    out = t.feed(sse_body(chunks, done=False) + b"data: " + json.dumps(error).encode() + b"\n\n")
    assert error_of(out) == {"type": "api_error", "message": "The server had an error"}
    assert t.ended and isinstance(t.failure, BackendFailure) and t.started
    assert t.feed(b"data: [DONE]\n\n") == b"" and t.finish() == b""


def test_overload_mid_stream_keeps_its_type() -> None:
    error = {
        "error": {"message": "Overloaded", "type": "server_error", "code": "server_overloaded"}
    }
    raw = sse_body(scenario_chunks("text")[:2], done=False) + b"data: " + json.dumps(error).encode()
    assert error_of(run([raw + b"\n\n"]))["type"] == "overloaded_error"


def test_error_before_any_chunk_is_only_an_error() -> None:
    t = translator()
    out = t.feed(b'data: {"error": {"message": "quota", "code": "insufficient_quota"}}\n\n')
    assert not t.started and t.failure is not None
    assert t.failure.response()[0] == 402
    assert [name for name, _ in events(out)] == ["error"]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (sse_body(scenario_chunks("tools")[:6], done=False), "ended before"),
        (sse_body(scenario_chunks("tools")[:6], done=False)[:-30], "ended before"),
        (sse_body(scenario_chunks("text")[:3], done=True), "[DONE] before any finish_reason"),
        (sse_body(scenario_chunks("text")[:1], done=False) + b"data: {nope\n\n", "unreadable"),
        (b"data: [1, 2]\n\n", "unreadable"),
        (b"<html>oops</html>", "ended before"),
        (b"", "ended before"),
    ],
)
def test_streams_that_do_not_finish_end_with_an_error(raw: bytes, says: str) -> None:
    error = error_of(run([raw]))
    assert error["type"] == "api_error" and says in error["message"]


def test_bad_arguments_fail_like_the_non_streaming_translation() -> None:
    chunks = scenario_chunks("bad-args")
    error = error_of(run([sse_body(chunks)]))
    with pytest.raises(BackendFailure) as info:
        non_streaming(chunks)
    assert error == {"type": info.value.error_type, "message": info.value.message}


def test_more_arguments_after_a_closed_block_fail() -> None:
    chunks = [
        call(0, '{"a": 1}', id="c0", name="f"),
        call(1, "{}", id="c1", name="g"),
        call(0, ', "b": 2}'),
        chunk(finish="tool_calls"),
    ]
    assert "not a JSON object" in error_of(run([sse_body(chunks)]))["message"]


def test_whitespace_after_complete_arguments_is_fine() -> None:
    chunks = [
        call(0, '{"a": 1}', id="c0", name="f"),
        call(1, "{}", id="c1", name="g"),
        call(0, "\n"),
        chunk(finish="tool_calls"),
    ]
    snapshot = fold(run([sse_body(chunks)]))
    assert snapshot.complete and finalize(snapshot) == non_streaming(chunks)


def test_a_tool_call_whose_name_never_comes_is_an_error() -> None:
    chunks = [call(0, '{"a": 1}', id="c0"), chunk(finish="tool_calls")]
    assert "without a function name" in error_of(run([sse_body(chunks)]))["message"]


def test_a_name_after_the_first_fragment_starts_the_block_with_what_came() -> None:
    chunks = [
        call(0, '{"a": ', id="c0"),
        call(0, "1}", name="late"),
        chunk(finish="tool_calls"),
        usage_chunk(5, 5),
    ]
    snapshot = fold(run([sse_body(chunks)]))
    assert finalize(snapshot)["content"] == [
        {"type": "tool_use", "id": "c0", "name": "late", "input": {"a": 1}}
    ]


def test_calls_without_index_follow_their_ids() -> None:
    def frag(**fields: Any) -> dict[str, Any]:
        return chunk({"tool_calls": [fields]})

    chunks = [
        frag(id="c0", function={"name": "f", "arguments": '{"x"'}),
        frag(function={"arguments": ": 1}"}),
        frag(id="c1", function={"name": "g", "arguments": "{}"}),
        chunk(finish="tool_calls"),
    ]
    content = finalize(fold(run([sse_body(chunks)])))["content"]
    assert [(b["id"], b["input"]) for b in content] == [("c0", {"x": 1}), ("c1", {})]


def test_text_after_a_tool_call_opens_a_new_text_block() -> None:
    chunks = [
        *[chunk({"content": "a"})],
        call(0, "{}", id="c0", name="f"),
        chunk({"content": "b"}),
        chunk(finish="tool_calls"),
    ]
    content = finalize(fold(run([sse_body(chunks)])))["content"]
    assert [b["type"] for b in content] == ["text", "tool_use", "text"]


def test_work_grows_linearly_with_the_number_of_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = 0

    class Counting(JsonBalance):
        @property
        def complete(self) -> bool:
            nonlocal checks
            checks += 1
            return JsonBalance.complete.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(openai_stream, "JsonBalance", Counting)
    calls = 2000
    # Every call stays incomplete and open while the next ones start: a translator
    # that rescanned the open calls at each start would check ~calls²/2 times.
    chunks = [call(i, '{"a": [', id=f"c{i}", name="f") for i in range(calls)]
    chunks += [call(i, "1]}") for i in range(calls)] + [chunk(finish="tool_calls")]
    snapshot = fold(run([sse_body(chunks)]))
    assert snapshot.complete and len(finalize(snapshot)["content"]) == calls
    assert checks <= 4 * calls
