"""The body inspection reads model and stream without parsing the body whole."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

import pytest

from control.jsonbytes import STEP_BYTES, scan_object, scan_steps
from control.jsonedit import splice_member
from forwarding.inspect import MAX_MEMBERS, SMALL_MEMBER_BYTES, inspect_body
from streaming.errors import ProxyError
from streaming.exchange import Exchange


def _exchange(body: bytes) -> Exchange:
    return Exchange("POST", "/v1/messages", "", [("content-type", "application/json")], body)


async def test_small_members_are_read_and_large_ones_left_as_bytes() -> None:
    history = [{"role": "user", "content": "x" * SMALL_MEMBER_BYTES}]
    body = json.dumps(
        {"model": "claude-opus-5-5", "messages": history, "stream": True, "metadata": {"u": 1}}
    ).encode()
    exchange = _exchange(body)
    await inspect_body(exchange, messages_api=True)
    assert exchange.model == "claude-opus-5-5" and exchange.stream_requested is True
    assert exchange.request_json == {
        "model": "claude-opus-5-5",
        "stream": True,
        "metadata": {"u": 1},
    }
    assert exchange.request_layout == scan_object(body)
    assert exchange.request_body == body


async def test_the_last_duplicate_wins_as_in_json_loads() -> None:
    exchange = _exchange(b'{"model":"a","stream":true,"model":"b","stream":false}')
    await inspect_body(exchange, messages_api=True)
    assert exchange.model == "b" and exchange.stream_requested is False


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"model": ' + b'"' + b"m" * (SMALL_MEMBER_BYTES + 1) + b'"}', "model: must be a string"),
        (b'{"model":"m","stream":[' + b"1," * SMALL_MEMBER_BYTES + b"1]}", "stream: must be"),
        (b"{" + b",".join(b'"k%d":0' % i for i in range(MAX_MEMBERS + 1)) + b"}", "members"),
        (b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
        (b"[1, 2]", "got a JSON list"),
        (b'{"model": NaN}', "not valid JSON"),
    ],
)
async def test_refusals(body: bytes, fragment: str) -> None:
    with pytest.raises(ProxyError) as caught:
        await inspect_body(_exchange(body), messages_api=True)
    assert caught.value.status == 400 and fragment in caught.value.message


async def test_other_endpoints_forward_what_they_cannot_read() -> None:
    exchange = _exchange(b"[1, 2]")
    await inspect_body(exchange, messages_api=False)
    assert exchange.request_json is None and exchange.request_layout is None


async def test_a_large_body_is_scanned_in_pieces_between_which_the_loop_runs() -> None:
    blocks = b",".join([b'{"type":"text","text":""}'] * 400_000)  # 10 MB of tiny values
    body = b'{"model":"m","messages":[{"role":"user","content":[%s]}]}' % blocks
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    await inspect_body(_exchange(body), messages_api=True)
    task.cancel()
    # The other task ran between pieces, at least once per STEP_BYTES scanned.
    assert ticks >= len(body) // STEP_BYTES


def test_every_piece_of_a_stepped_scan_is_bounded() -> None:
    # Many containers of containers: one Python step each; and long runs matched in C.
    for body in (
        b'{"a":[' + b",".join([b'{"a":{"b":[1e5]}}'] * 100_000) + b"]}",
        b'{"a":[' + b",".join([b'"s,t"', b"1e-5", b"true"] * 200_000) + b"]}",
        b'{"a":"' + b"x" * (3 * STEP_BYTES) + b'","b":[1e5,' + b"2," * STEP_BYTES + b"3]}",
    ):
        steps = scan_steps(body)
        pauses = 0
        while True:
            try:
                next(steps)
            except StopIteration as done:
                layout = done.value
                break
            pauses += 1
        assert layout == scan_object(body)
        assert pauses >= len(body) // (2 * STEP_BYTES)
        value = layout.members[0]
        assert json.loads(body[value.value_start : value.value_end]) == json.loads(body)["a"]


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{ "a" : 1 }', b'{"stream":false,"x":[1],"stream" : true}', b'\xef\xbb\xbf{"a":[]}'],
)
@pytest.mark.parametrize("key", ["stream", "model"])
def test_splice_returns_the_layout_of_its_result(body: bytes, key: str) -> None:
    out, layout = splice_member(body, key, b'"claude-opus-5-5"')
    assert layout == scan_object(out)
    again, layout2 = splice_member(out, "stream", b"true", layout)
    assert layout2 == scan_object(again)
    assert dataclasses.astuple(layout2)[0] == scan_object(body).open_brace


async def test_a_member_the_parser_cannot_nest_is_a_400_never_a_500() -> None:
    # Within the scan's MAX_DEPTH, but deeper than json.loads manages from where it
    # is called (in a worker, a few hundred frames are already on the stack).
    body = b'{"model":"m","x":' + b"[" * 900 + b'"\\ud800"' + b"]" * 900 + b"}"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(600)
    try:
        with pytest.raises(ProxyError) as refused:
            await inspect_body(_exchange(body), messages_api=True)
        other = _exchange(body)
        await inspect_body(other, messages_api=False)  # other routes: forwarded unread
    finally:
        sys.setrecursionlimit(limit)
    assert refused.value.status == 400 and "nested too deeply" in refused.value.message
    assert other.request_json == {"model": "m"}
