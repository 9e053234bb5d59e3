"""Non-streaming → streaming demotion: the body rewrite and the SSE → message fold."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable

import pytest

from control.demotion import (
    ERROR_STATUS,
    StreamToMessage,
    demoted_response_headers,
    error_status,
    promote_body_to_stream,
    wants_non_streaming,
)
from tests.fixtures import (
    COMPLETE_STREAMS,
    error_bytes,
    events_of,
    message_bytes,
    stream_bytes,
)
from tests.streaming.accumulator_events import PROBLEMS_2026, STREAMS_2026, awkward_chunkings

# ---------------------------------------------------------------------------------
# promote_body_to_stream: generated bodies with hostile formatting
# ---------------------------------------------------------------------------------

_NUMBERS = [
    "0", "-0", "1.0", "-0.0", "1e5", "1E+5", "2e-3", "-1.5E-10", "1e400", "0.1",
    "123456789012345678901234567890", "-98765432109876543210.123456789e-5", "100",
]  # fmt: skip
_STRING_PIECES = [
    "a", "Z", "9", " ", "}", "{", "]", "[", ",", ":", "'", "é", "中", "😀",
    '\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0041", "\\u00e9",
    "\\ud83d\\ude00", "\\u007d", "\\u0022", "stream", "true",
]  # fmt: skip
_KEYS = ['"model"', '"messages"', '"max_tokens"', '"system"', '"Stream"', '"stream "', '"a"']
_STREAM_KEYS = ['"stream"', '"stream"', '"stream"', '"str\\u0065am"', '"\\u0073tream"']


def _ws(rng: random.Random) -> str:
    return "".join(rng.choice(" \t\n\r") for _ in range(rng.choice((0, 0, 0, 1, 2, 5))))


def _string(rng: random.Random) -> str:
    return '"' + "".join(rng.choice(_STRING_PIECES) for _ in range(rng.randint(0, 8))) + '"'


def _value(rng: random.Random, depth: int) -> str:
    kind = rng.randint(0, 5 if depth < 4 else 2)
    if kind == 0:
        return _string(rng)
    if kind == 1:
        return rng.choice([*_NUMBERS, str(rng.randint(-(10**9), 10**9)), repr(rng.random())])
    if kind == 2:
        return rng.choice(("true", "false", "null"))
    if kind == 3:
        items = [_ws(rng) + _value(rng, depth + 1) + _ws(rng) for _ in range(rng.randint(0, 4))]
        return "[" + (",".join(items) if items else _ws(rng)) + "]"
    members = []
    for _ in range(rng.randint(0, 4)):
        # Nested `stream` keys must never be touched.
        key = rng.choice([*_KEYS, *_STREAM_KEYS, _string(rng)])
        members.append(
            _ws(rng) + key + _ws(rng) + ":" + _ws(rng) + _value(rng, depth + 1) + _ws(rng)
        )
    return "{" + (",".join(members) if members else _ws(rng)) + "}"


def _body(rng: random.Random) -> tuple[str, str | None]:
    """(body, expected output) where the expected output is known only when the body
    already has a top-level stream (then only its values change)."""
    members, expected, has_stream = [], [], False
    for _ in range(rng.randint(0, 8)):
        is_stream = rng.random() < 0.25
        key = rng.choice(_STREAM_KEYS if is_stream else [*_KEYS, _string(rng)])
        if json.loads(key) == "stream":
            has_stream = True
            is_stream = True
        value = _value(rng, 1)
        lead, colon = _ws(rng) + key + _ws(rng) + ":" + _ws(rng), _ws(rng)
        members.append(lead + value + colon)
        expected.append(lead + ("true" if is_stream else value) + colon)
    around = _ws(rng), _ws(rng)
    wrap = lambda parts: around[0] + "{" + (",".join(parts) or _ws(rng)) + "}" + around[1]  # noqa: E731
    body = wrap(members)
    return body, (wrap(expected) if has_stream and members else None)


def test_promote_property_against_json_loads() -> None:
    rng = random.Random(20261125)
    appended = replaced = 0
    for _ in range(4000):
        body_text, expected = _body(rng)
        body = body_text.encode()
        before = json.loads(body)
        out = promote_body_to_stream(body)
        after = json.loads(out)
        assert after["stream"] is True, body_text
        assert {k: v for k, v in after.items() if k != "stream"} == {
            k: v for k, v in before.items() if k != "stream"
        }, body_text
        if "stream" in before:
            replaced += 1
            assert list(after) == list(before)
            if expected is not None:
                assert out == expected.encode(), body_text
        else:
            appended += 1
            assert list(after) == [*before, "stream"]
            # A pure insertion: the body's bytes all survive, in order, around it.
            prefix = 0
            while prefix < len(body) and out[prefix] == body[prefix]:
                prefix += 1
            tail = len(body) - prefix
            assert out[len(out) - tail :] == body[prefix:], body_text
            assert b"true" in out[prefix : len(out) - tail]
    assert appended > 500 and replaced > 500


def test_promote_keeps_number_spellings_and_escapes_exactly() -> None:
    body = (
        b'{"model":"claude-sonnet-4-5","max_tokens":1e5,"temperature":1.0,"top_p":-0,'
        b'"n":123456789012345678901234567890,"system":"caf\\u00e9 \xc3\xa9 \\ud83d\\ude00",'
        b'"stream":false,"metadata":{"stream":false},"stream":false}'
    )
    expected = (
        b'{"model":"claude-sonnet-4-5","max_tokens":1e5,"temperature":1.0,"top_p":-0,'
        b'"n":123456789012345678901234567890,"system":"caf\\u00e9 \xc3\xa9 \\ud83d\\ude00",'
        b'"stream":true,"metadata":{"stream":false},"stream":true}'
    )
    assert promote_body_to_stream(body) == expected


def test_promote_appends_when_absent() -> None:
    assert promote_body_to_stream(b'{"model":"m","max_tokens":5}') == (
        b'{"model":"m","max_tokens":5,"stream":true}'
    )


def test_promote_refuses_non_objects() -> None:
    for body in (b"[]", b"", b"nope", b'{"a":1', b'"x"'):
        with pytest.raises(ValueError):
            promote_body_to_stream(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"model":"m"}', True),
        (b'{"model":"m","stream":false}', True),
        (b'{"stream": false }', True),
        (b'{"stream":true}', False),
        (b'{"stream":true,"stream":false}', True),
        (b'{"stream":false,"stream":true}', False),
        (b'{"stream":null}', False),
        (b'{"stream":"false"}', False),
        (b'{"stream":0}', False),
        (b"[]", False),
        (b"not json", False),
    ],
)
def test_wants_non_streaming(body: bytes, expected: bool) -> None:
    assert wants_non_streaming(body) is expected


# ---------------------------------------------------------------------------------
# StreamToMessage
# ---------------------------------------------------------------------------------


def _fold(chunks: Iterable[bytes]) -> tuple[int, bytes]:
    folder = StreamToMessage()
    for chunk in chunks:
        folder.feed(chunk)
    return folder.result()


def _chunked(data: bytes, sizes: Iterable[int]) -> list[bytes]:
    out, pos = [], 0
    for size in sizes:
        if pos >= len(data):
            break
        out.append(data[pos : pos + size])
        pos += size
    if pos < len(data):
        out.append(data[pos:])
    return out


def _chunkings(name: str) -> dict[str, list[bytes]]:
    data = stream_bytes(name)
    rng = random.Random(name)
    ways = {
        "whole": [data],
        "bytes": [data[i : i + 1] for i in range(len(data))],
        "events": [raw for _, raw in events_of(name)],
        "random": _chunked(data, (rng.randint(1, 40) for _ in range(len(data)))),
    }
    for size in (2, 3, 7, 64, 1000):
        ways[f"size{size}"] = _chunked(data, iter(lambda s=size: s, None))
    # Every cut right after a CR, LF or inside a multi-byte character.
    cuts = [i for i, b in enumerate(data) if b in (0x0D, 0x0A) or b >= 0x80]
    ways["awkward"] = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return ways


@pytest.mark.parametrize("name", COMPLETE_STREAMS)
def test_complete_fixture_demotes_to_the_exact_non_streaming_body(name: str) -> None:
    expected = message_bytes(name)
    for way, chunks in _chunkings(name).items():
        assert _fold(chunks) == (200, expected), way


@pytest.mark.parametrize("name", STREAMS_2026)
def test_2026_fixture_demotes_to_the_exact_non_streaming_body(name: str) -> None:
    expected = message_bytes(name)
    ways = {**_chunkings(name), **awkward_chunkings(stream_bytes(name))}
    for way, chunks in ways.items():
        assert _fold(chunks) == (200, expected), way


def test_a_refusal_is_a_200_carrying_its_stop_details() -> None:
    status, body = _fold([stream_bytes("refusal")])
    message = json.loads(body)
    assert status == 200 and message["stop_reason"] == "refusal"
    assert message["stop_details"]["category"] == "cyber"


def test_unfoldable_deltas_still_demote_and_stay_noted_for_the_log() -> None:
    folder = StreamToMessage()
    folder.feed(stream_bytes("unknown_types"))
    assert folder.result() == (200, message_bytes("unknown_types"))
    assert folder.snapshot.problems == PROBLEMS_2026["unknown_types"]


@pytest.mark.parametrize(("kind", "status"), [("overloaded_error", 529), ("api_error", 500)])
def test_error_after_a_fallback_switch_maps_to_its_status(kind: str, status: int) -> None:
    raw = stream_bytes("fallback_switch")
    cut = raw.index(b"event: ping")  # right after the fallback block, mid-message
    error = {"type": "error", "error": {"type": kind, "message": "Überlastet"}}
    # The error body comes back exactly as the upstream sent it.
    assert _fold([raw[:cut], _sse(("error", error))]) == (status, json.dumps(error).encode())


def test_demoted_json_keeps_non_ascii_and_the_apis_key_order() -> None:
    _, body = _fold([stream_bytes("all_fields")])
    assert "Résumé: ✓ all 212 tests pass — 日本語 too 👍".encode() in body
    assert b"\\u" not in body  # no ASCII escaping anywhere
    assert list(json.loads(body)) == [
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
    ]


def test_every_block_type_is_covered_by_the_fixtures() -> None:
    types = set()
    for name in COMPLETE_STREAMS:
        types |= {block["type"] for block in json.loads(message_bytes(name))["content"]}
    assert {"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use"} <= types


def test_overloaded_midstream_becomes_529_with_its_error_body() -> None:
    for way, chunks in _chunkings("overloaded_midstream").items():
        assert _fold(chunks) == (529, error_bytes("overloaded_midstream")), way


def test_stream_cut_before_message_stop_is_a_502() -> None:
    for way, chunks in _chunkings("cut_before_stop").items():
        status, body = _fold(chunks)
        assert status == 502, way
        error = json.loads(body)
        assert error["type"] == "error"
        assert error["error"]["type"] == "api_error"
        assert "message_stop" in error["error"]["message"]


def _sse(*events: tuple[str | None, object]) -> bytes:
    out = b""
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out += (f"event: {name}\n" if name else "").encode() + f"data: {text}\n\n".encode()
    return out


_START = (
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
    },
)
_STOP = ("message_stop", {"type": "message_stop"})


def _error(kind: str, **extra: object) -> tuple[str, object]:
    return "error", {"type": "error", "error": {"type": kind, "message": "m"}, **extra}


@pytest.mark.parametrize(("kind", "status"), [*ERROR_STATUS.items(), ("brand_new_error", 500)])
def test_error_types_map_to_the_non_streaming_status(kind: str, status: int) -> None:
    raw = _sse(_START, _error(kind, request_id="req_1"))
    got_status, body = _fold([raw])
    assert got_status == status
    assert json.loads(body) == {
        "type": "error",
        "error": {"type": kind, "message": "m"},
        "request_id": "req_1",
    }


def test_documented_statuses() -> None:
    assert error_status("overloaded_error") == 529
    assert error_status("api_error") == 500
    assert error_status("rate_limit_error") == 429
    assert error_status("invalid_request_error") == 400
    assert error_status("authentication_error") == 401
    assert error_status("permission_error") == 403
    assert error_status("not_found_error") == 404
    assert error_status("request_too_large") == 413
    assert error_status("timeout_error") == 504
    assert error_status("whatever") == 500
    assert error_status(None) == 500


def test_error_before_message_start_still_maps() -> None:
    assert _fold([_sse(_error("rate_limit_error"))])[0] == 429


def test_error_without_event_name_is_recognised_by_its_type() -> None:
    assert _fold([_sse(_START, (None, _error("overloaded_error")[1]))])[0] == 529


def test_error_after_message_stop_does_not_spoil_a_complete_message() -> None:
    status, body = _fold([_sse(_START, _STOP, _error("overloaded_error"))])
    assert status == 200
    assert json.loads(body)["id"] == "msg_1"


def test_first_error_wins() -> None:
    status, _ = _fold([_sse(_START, _error("rate_limit_error"), _error("api_error"))])
    assert status == 429


def test_unreadable_error_event_is_a_502() -> None:
    status, body = _fold([_sse(_START, ("error", "not json"))])
    assert status == 502
    assert json.loads(body)["error"]["type"] == "api_error"


def test_empty_stream_is_a_502_naming_message_start() -> None:
    status, body = _fold([])
    assert status == 502
    assert "message_start" in json.loads(body)["error"]["message"]


def test_stream_cut_mid_event_says_so() -> None:
    status, body = _fold([_sse(_START) + b'event: message_delta\ndata: {"type":'])
    assert status == 502
    assert "cut inside an event" in json.loads(body)["error"]["message"]


def test_result_is_idempotent_and_feed_after_result_fails() -> None:
    folder = StreamToMessage()
    folder.feed(_sse(_START, _STOP))
    first = folder.result()
    assert folder.result() == first
    assert folder.snapshot.complete
    with pytest.raises(RuntimeError):
        folder.feed(b"data: {}\n\n")


def test_demoted_response_headers_keep_upstream_metadata() -> None:
    headers = [
        ("Content-Type", "text/event-stream; charset=utf-8"),
        ("request-id", "req_1"),
        ("anthropic-ratelimit-tokens-remaining", "100"),
        ("Content-Length", "999"),
        ("content-encoding", "gzip"),
        ("anthropic-organization-id", "org"),
    ]
    assert demoted_response_headers(headers) == [
        ("request-id", "req_1"),
        ("anthropic-ratelimit-tokens-remaining", "100"),
        ("anthropic-organization-id", "org"),
        ("content-type", "application/json"),
    ]
