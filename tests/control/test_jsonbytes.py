"""The byte-level member editor shared by demotion (`stream`) and routing (`model`)."""

from __future__ import annotations

import json
import random
import time

import pytest

from control.jsonbytes import MAX_DEPTH, scan_object
from control.jsonedit import get_member, set_member
from control.routing import rewrite_model

# Serial (make test's second phase): times an edit of a 500 KB body (under 0.5 s).
pytestmark = pytest.mark.serial


def test_scan_finds_top_level_members_only() -> None:
    body = b'{"a": {"stream": 1}, "b": ["}", "\\"", {"c": []}], "stream": false}'
    layout = scan_object(body)
    assert [m.key for m in layout.members] == ["a", "b", "stream"]
    stream = layout.members[-1]
    assert body[stream.value_start : stream.value_end] == b"false"
    assert body[stream.key_start : stream.key_end] == b'"stream"'
    assert body[layout.close_brace] == ord("}")


def test_escaped_key_is_decoded_like_a_parser_does() -> None:
    body = b'{"str\\u0065am": false}'
    assert [m.key for m in scan_object(body).members] == ["stream"]
    assert set_member(body, "stream", b"true") == b'{"str\\u0065am": true}'


def test_get_member_takes_the_last_duplicate_like_json_loads() -> None:
    body = b'{"stream": true, "x": 1, "stream": false}'
    assert get_member(body, "stream") == b"false"
    assert get_member(body, "x") == b"1"
    assert get_member(body, "missing") is None


def test_set_member_replaces_every_duplicate() -> None:
    body = b'{"stream":false,"x":1.0,"stream" : null}'
    assert set_member(body, "stream", b"true") == b'{"stream":true,"x":1.0,"stream" : true}'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{}", b'{"stream":true}'),
        (b"  { }\n", b'  {"stream":true }\n'),
        (b'{"a":1}', b'{"a":1,"stream":true}'),
        (b'{"a": 1, "b": 2}', b'{"a": 1, "b": 2, "stream": true}'),
        (b'{\n  "a": 1,\n  "b": 2\n}\n', b'{\n  "a": 1,\n  "b": 2,\n  "stream": true\n}\n'),
        (b'{"a" : [1, 2] }', b'{"a" : [1, 2],"stream" : true }'),
    ],
)
def test_absent_member_is_appended_in_the_bodys_own_style(body: bytes, expected: bytes) -> None:
    assert set_member(body, "stream", b"true") == expected


def test_bom_is_kept() -> None:
    body = b'\xef\xbb\xbf{"stream":false}'
    assert set_member(body, "stream", b"true") == b'\xef\xbb\xbf{"stream":true}'


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"[]",
        b'"{}"',
        b"1",
        b"null",
        b"{",
        b'{"a"}',
        b'{"a":}',
        b'{"a":1,}',
        b'{,"a":1}',
        b'{"a":1 "b":2}',
        b'{"a":1}{}',
        b'{"a":1} x',
        b"{'a':1}",
        b"{a:1}",
        b'{"a":tru}',
        b'{"a":01}',
        b'{"a":1.}',
        b'{"a":-}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":"unterminated}',
        b'{"a":"bad \\x escape"}',
        b'{"a":"bad \\u12 escape"}',
        b'{"a":"raw\ncontrol"}',
        b'{"a":[1,2}',
        b'{"a":{"b":1]}',
        b'{"a":[1,2]',
        b'{"a":[1, x]}',
        b'{"a":"\xff"}',
        b'{"a":1}\x00',
        b"\xef\xbb\xbf",
    ],
)
def test_invalid_bodies_raise_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        scan_object(body)
    with pytest.raises(ValueError):
        set_member(body, "stream", b"true")


def test_non_bytes_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        scan_object('{"a":1}')  # type: ignore[arg-type]


def test_deep_nesting_does_not_recurse() -> None:
    depth = MAX_DEPTH  # the deepest accepted, scanned without recursion
    body = b'{"deep":' + b"[" * depth + b"]" * depth + b',"stream":false}'
    assert set_member(body, "stream", b"true").endswith(b'"stream":true}')


@pytest.mark.parametrize("opener", [b"[", b'{"k":'])
def test_nesting_deeper_than_the_limit_is_refused(opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    depth = 100_000
    body = b'{"deep":' + opener * depth + b"1" + closer * depth + b',"stream":false}'
    with pytest.raises(ValueError, match="nested too deeply"):
        scan_object(body)


def test_large_body_is_scanned_quickly() -> None:
    # A Claude Code-like body: many tools with nested schemas, one long history.
    rng = random.Random(7)
    tools = [
        {
            "name": f"tool_{i}",
            "description": "d" * rng.randint(50, 400),
            "input_schema": {
                "type": "object",
                "properties": {f"p{j}": {"type": "string", "enum": ["a", "b"]} for j in range(8)},
            },
        }
        for i in range(40)
    ]
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "x" * 2000 + '\\"}'}]}
        for _ in range(300)
    ]
    body = json.dumps(
        {"model": "m", "messages": messages, "tools": tools, "max_tokens": 1, "stream": False}
    ).encode()
    started = time.perf_counter()
    out = set_member(body, "stream", b"true")
    elapsed = time.perf_counter() - started
    assert json.loads(out)["stream"] is True
    assert len(body) > 500_000
    assert elapsed < 0.5, elapsed


def test_rewrite_model_changes_only_the_model() -> None:
    body = b'{"model" :"claude-3-5-haiku","x":1E+2,"y":"\\u00e9\xc3\xa9","model":"again"}'
    out = rewrite_model(body, "claude-haiku-4-5")
    assert out == (
        b'{"model" :"claude-haiku-4-5","x":1E+2,"y":"\\u00e9\xc3\xa9","model":"claude-haiku-4-5"}'
    )
    # A name needing escapes is JSON-encoded.
    assert json.loads(rewrite_model(b'{"model":"a"}', 'we"ird\n'))["model"] == 'we"ird\n'
    assert rewrite_model(b'{"max_tokens":1}', "m") == b'{"max_tokens":1,"model":"m"}'
    with pytest.raises(ValueError):
        rewrite_model(b"[]", "m")
