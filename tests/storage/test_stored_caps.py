"""What one log document stores is bounded, whatever the request holds (pure).

Each cap is a constant next to the code it bounds; a request far over it stores at
most the cap, and what is kept is said in each test (the first items found, except
for the messages of a request: the newest, since the reply follows them).
"""

from __future__ import annotations

from typing import Any

from conversations.fields import MAX_TURNS
from conversations.text import (
    CLIPPED,
    MAX_BLOCKS,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_WORDS,
    Budget,
    collect_words,
    fingerprint,
    normalise_message,
)
from conversations.thread import rebuild
from storage.ratelimits import MAX_RAW, MAX_VALUE_CHARS, parse_rate_limits
from tests.conversations.helpers import T0
from tests.storage.test_linear_time import fields_of, nested_lists, nested_results


def _with_text(text: str) -> dict[str, Any]:
    return fields_of({"messages": [{"role": "user", "content": text}]})


def test_words_are_capped_keeping_the_first() -> None:
    words = [f"w{i}" for i in range(100_000)]
    fields = _with_text(" ".join(words))
    assert fields["words"] == words[:MAX_WORDS]
    assert len(collect_words([" ".join(words)] * 3)) == MAX_WORDS


def test_turns_are_capped_keeping_the_newest_and_rebuild_reads_the_rest_back() -> None:
    messages = [{"role": "user", "content": f"m{i}"} for i in range(MAX_TURNS * 4)]
    fields = fields_of({"messages": messages})
    assert len(fields["turns"]) == MAX_TURNS
    assert fields["start"] == len(messages) - MAX_TURNS
    assert fields["turns"][-1] == normalise_message(messages[-1])
    assert fields["prompt"] == "m0"  # the first prompt still comes from the first message
    assert {"m0", "m1"}.isdisjoint(fields["words"])

    doc = {"requestId": "r", "timestamp": T0, "messageCount": 1, "conversation": fields}
    thread, missing = rebuild([doc])
    assert missing == {"r"}  # the earlier messages are read back from the body
    thread, missing = rebuild([doc], {"r": [normalise_message(m) for m in messages]})
    assert missing == set()
    shown = [t for t in thread["turns"] if t["type"] == "message"]
    assert [t["content"] for t in shown[:-1]] == [normalise_message(m)["content"] for m in messages]
    assert shown[-1]["role"] == "assistant"


def test_content_blocks_are_capped_keeping_the_first() -> None:
    blocks = [{"type": "text", "text": f"b{i}"} for i in range(MAX_BLOCKS * 3)]
    content = normalise_message({"role": "user", "content": blocks})["content"]
    assert len(content) == MAX_BLOCKS + 1
    assert content[:MAX_BLOCKS] == blocks[:MAX_BLOCKS]
    assert content[-1] == {"type": "omitted", "blocks": MAX_BLOCKS * 2}
    nested = [{"type": "tool_result", "tool_use_id": "t", "content": blocks}]
    (result,) = normalise_message({"role": "user", "content": nested})["content"]
    assert len(result["content"]) == MAX_BLOCKS + 1


def test_json_items_are_capped_keeping_the_first() -> None:
    data = {
        "xs": list(range(MAX_ITEMS * 2)),
        "obj": {f"k{i}": i for i in range(MAX_ITEMS + 5)},
    }
    call = {"type": "tool_use", "id": "t", "name": "Calc", "input": data}
    (stored,) = normalise_message({"role": "assistant", "content": [call]})["content"]
    xs, obj = stored["input"]["xs"], stored["input"]["obj"]
    assert xs[:MAX_ITEMS] == list(range(MAX_ITEMS)) and len(xs) == MAX_ITEMS + 1
    assert xs[-1] == f"{CLIPPED} {MAX_ITEMS} more items"
    assert len(obj) == MAX_ITEMS + 1 and obj[CLIPPED] == "5 more keys"
    assert [obj[f"k{i}"] for i in range(MAX_ITEMS)] == list(range(MAX_ITEMS))


def _depth(value: object) -> int:
    depth = 0
    while isinstance(value, list | dict) and value:
        value = value[0] if isinstance(value, list) else next(iter(value.values()))
        depth += 1
    return depth


def test_nesting_is_capped_so_nothing_recurses_with_the_input() -> None:
    call = {"type": "tool_use", "id": "t", "name": "Probe", "input": nested_lists(50_000)}
    (stored,) = normalise_message({"role": "assistant", "content": [call]})["content"]
    assert _depth(stored["input"]) < MAX_DEPTH
    leaf = stored["input"]
    while isinstance(leaf, list):
        leaf = leaf[0]
    assert leaf == CLIPPED
    fingerprint(stored)  # json.dumps of what is stored no longer recurses too deep

    content = normalise_message({"role": "user", "content": nested_results(50_000)})["content"]
    levels = 0
    while content and content[0]["type"] == "tool_result":
        content = content[0]["content"]
        levels += 1
    assert levels == MAX_DEPTH and content == [{"type": "omitted", "blocks": 1}]
    # The whole record builds too, search words included, and MongoDB (which refuses
    # documents nested over 100 levels) can store it inside a log document.
    deepest = [{"type": "tool_result", "tool_use_id": "t", "content": [call]}]
    for _ in range(MAX_DEPTH * 2):
        deepest = [{"type": "tool_result", "tool_use_id": "t", "content": deepest}]
    fields = fields_of({"messages": [{"role": "user", "content": [call, *deepest]}]})
    assert fields["words"] == ["probe", "ok"]
    assert _nesting(fields) < 90


def _nesting(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_nesting(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    return 0


def test_other_strings_of_a_block_are_clipped_too() -> None:
    huge = "r" * 100_000
    message = {
        "role": huge,
        "content": [
            {"type": "image", "source": {"type": "url", "url": huge, "media_type": huge}},
            {"type": "tool_use", "id": huge, "name": ["not", "a", "string"], "input": {}},
        ],
    }
    normalised = normalise_message(message, Budget(10))
    assert len(normalised["role"]) <= 64
    image, call = normalised["content"]
    assert max(len(image["source"]["url"]), len(image["source"]["media_type"])) <= 64_000
    assert len(call["id"]) <= 64_000 and call["name"] == ["not", "a", "string"]


def test_rate_limit_headers_are_capped() -> None:
    headers = [(f"anthropic-ratelimit-x{i}-limit", "1") for i in range(MAX_RAW * 3)]
    headers += [("retry-after", "30"), ("anthropic-ratelimit-requests-limit", "5" * 10_000)]
    info = parse_rate_limits(headers)
    assert info is not None
    assert len(info["raw"]) == MAX_RAW
    assert list(info["raw"]) == [f"x{i}-limit" for i in range(MAX_RAW)]  # the first ones
    assert info["retryAfter"] == 30  # kept whatever came before it
    first = parse_rate_limits([("retry-after", "30"), *headers])
    assert first is not None and len(first["raw"]) == MAX_RAW and first["retryAfter"] == 30
    long = parse_rate_limits([("anthropic-ratelimit-tokens-reset", "t" * 10_000)])
    assert long is not None and long["tokensReset"] == "t" * MAX_VALUE_CHARS
