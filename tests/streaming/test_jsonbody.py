"""Request bodies as the proxy reads them: lone surrogates scrubbed at any depth,
never a RecursionError (which reached the client as a 500)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from streaming.jsonbody import parse_json_object, scrub_surrogates
from tests.conftest import ProxyProcess
from tests.fake_upstream import FakeUpstream

LONE = "\ud800"
REPLACED = "\ufffd"


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def _leaf(value: Any, depth: int) -> Any:
    for i in reversed(range(depth)):
        value = value[0] if i % 2 else value["k"]
    return value


def test_lone_surrogates_in_values_and_keys_are_replaced() -> None:
    value = {
        "a": f"x{LONE}y",
        f"k{LONE}": [1, 2.5, None, True, f"{LONE}", {"b": [f"{LONE}"]}],
        "fine": "é😀",
    }
    assert scrub_surrogates(value) == {
        "a": f"x{REPLACED}y",
        f"k{REPLACED}": [1, 2.5, None, True, REPLACED, {"b": [REPLACED]}],
        "fine": "é😀",
    }
    assert list(scrub_surrogates({"z": 1, "a": [], "m": {}})) == ["z", "a", "m"]  # order kept
    assert scrub_surrogates(LONE) == REPLACED and scrub_surrogates(7) == 7


def test_the_source_is_not_changed() -> None:
    value = {"a": [LONE, {"b": LONE}]}
    scrub_surrogates(value)
    assert value == {"a": [LONE, {"b": LONE}]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({LONE: 1, "\ud801": [2]}, {REPLACED: [2]}),
        ({LONE: [1], "\ud801": 2}, {REPLACED: 2}),
    ],
)
def test_keys_that_scrub_alike_keep_the_last_as_a_dict_does(
    value: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert scrub_surrogates(value) == expected


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_any_depth_without_recursion(depth: int) -> None:
    scrubbed = scrub_surrogates({"deep": _nested(depth, LONE)})
    assert _leaf(scrubbed["deep"], depth) == REPLACED


def test_parse_json_object_scrubs_a_deep_body_and_refuses_an_unparsable_one() -> None:
    deep = "[" * 800 + json.dumps(LONE) + "]" * 800
    parsed = parse_json_object(f'{{"model":"m","deep":{deep}}}'.encode())
    assert parsed is not None
    value = parsed["deep"]
    for _ in range(800):
        value = value[0]
    assert value == REPLACED
    too_deep = "[" * 100_000 + "]" * 100_000  # past what json.loads can parse
    assert parse_json_object(f'{{"deep":{too_deep}}}'.encode()) is None


@pytest.mark.parametrize(
    ("depth", "status"),
    [
        (900, 200),  # parsed by the proxy (a small top-level member): forwarded as sent
        (1001, 400),  # past the scanner's 1000 levels: refused
        (20_000, 400),
    ],
)
async def test_a_deep_member_with_a_lone_surrogate_is_never_a_500(
    proxy: ProxyProcess, fresh_upstream: FakeUpstream, depth: int, status: int
) -> None:
    deep = "[" * depth + '"\\ud800"' + "]" * depth
    body = f'{{"model":"claude-sonnet-4-5","max_tokens":1,"deep":{deep},"messages":[]}}'.encode()
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{proxy.url}/v1/messages",
            data=body,
            headers={"content-type": "application/json", "x-fake": "json:text_basic"},
        ) as resp:
            answer = await resp.json()
        assert resp.status == status, answer
        if status == 400:
            assert answer["error"]["type"] == "invalid_request_error"
            assert fresh_upstream.received == []
        else:
            (received,) = fresh_upstream.received
            assert received.body == body  # the bytes go upstream unchanged
        async with http.get(f"{proxy.url}/livez") as live:
            assert live.status == 200
