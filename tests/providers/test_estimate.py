"""count_tokens on an OpenAI-format route: an estimate that says it is one."""

from __future__ import annotations

from typing import Any

import pytest

from providers.estimate import (
    BYTES_PER_TOKEN,
    PER_IMAGE,
    PER_MESSAGE,
    REPLY_PRIMING,
    estimate_input_tokens,
)
from providers.openai_request import OpenAIOptions
from providers.refusal import Unsupported


def count(messages: list[dict[str, Any]], **fields: Any) -> int:
    answer = estimate_input_tokens({"model": "m", "messages": messages, **fields})
    assert answer["estimated"] is True
    return answer["input_tokens"]


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def test_the_method_on_a_small_request() -> None:
    text = "x" * 10  # 10 bytes → 3 tokens, rounded up
    assert count([user(text)]) == REPLY_PRIMING + PER_MESSAGE + -(-10 // BYTES_PER_TOKEN)


def test_bytes_not_characters() -> None:
    ascii_count = count([user("a" * 400)])
    cjk_count = count([user("字" * 400)])  # 3 bytes each
    assert cjk_count - ascii_count == (1200 - 400) // BYTES_PER_TOKEN


def test_every_part_of_the_request_counts() -> None:
    base = count([user("hello")])
    assert count([user("hello")], system="You are terse.") > base
    tool = {
        "name": "f",
        "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}},
    }
    assert count([user("hello")], tools=[tool]) > base
    image = {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
    assert count([user([{"type": "text", "text": "hello"}, image])]) == base + PER_IMAGE
    turns = [
        user("hello"),
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": "b"}}],
        },
        user([{"type": "tool_result", "tool_use_id": "t", "content": "result text"}]),
    ]
    assert count(turns) > base + 2 * PER_MESSAGE


def test_what_the_route_refuses_is_refused_here_too() -> None:
    with pytest.raises(Unsupported):
        count([user("hi")], top_k=5)
    with pytest.raises(Unsupported):
        count([user("hi")], thinking={"type": "enabled", "budget_tokens": 2048})
    answer = estimate_input_tokens(
        {"messages": [user("hi")], "thinking": {"type": "enabled", "budget_tokens": 2048}},
        options=OpenAIOptions(thinking="reasoning_effort"),
    )
    assert answer["estimated"] is True
