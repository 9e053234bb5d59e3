"""Claude Code 2.1.332's default requests (shapes in tests/providers/claude_code_body.py)
translate whole: nothing refused but what the provider's thinking option refuses, no
tool the model could call left out."""

from __future__ import annotations

import json

import pytest

from providers import OpenAIOptions, estimate_input_tokens, to_openai_request
from providers.refusal import Unsupported
from tests.providers.claude_code_body import (
    ENVIRONMENT,
    PLACEHOLDER,
    READ,
    after_tool_search,
    claude_code_request,
)

IGNORE = OpenAIOptions(thinking="ignore")
REASONING = OpenAIOptions(thinking="reasoning_effort")


def test_the_first_request_of_a_turn_translates() -> None:
    out = to_openai_request(claude_code_request(), model="local", options=IGNORE)
    assert [m["role"] for m in out["messages"]] == ["system", "user", "system"]
    assert out["messages"][1]["content"][1] == {
        "type": "text",
        "text": "What is the secret word in notes.txt?",
    }
    # The environment stays a system message in place, without its effort.
    assert out["messages"][2] == {"role": "system", "content": ENVIRONMENT}
    # Every tool is a function, the deferred placeholder included.
    assert [t["function"]["name"] for t in out["tools"]] == [
        "Read",
        "ToolSearch",
        "DeferredToolPlaceholder",
    ]
    assert out["tools"][0]["function"]["parameters"] == READ["input_schema"]
    assert out["tools"][2]["function"]["parameters"] == PLACEHOLDER["input_schema"]
    assert "reasoning_effort" not in out
    assert (out["max_tokens"], out["stream"]) == (32000, True)
    assert json.loads(out["user"])["session_id"]


@pytest.mark.parametrize(
    ("effort", "sent"), [("low", "low"), ("medium", "medium"), ("max", "high")]
)
def test_its_effort_becomes_the_reasoning_effort(effort: str, sent: str) -> None:
    out = to_openai_request(claude_code_request(effort=effort), model="o4", options=REASONING)
    assert out["reasoning_effort"] == sent


def test_the_default_option_refuses_it_for_its_thinking_only() -> None:
    with pytest.raises(Unsupported) as info:
        to_openai_request(claude_code_request(), model="local")
    assert "thinking" in info.value.feature


def test_the_request_after_a_tool_search_translates() -> None:
    body = after_tool_search(claude_code_request())
    out = to_openai_request(body, model="local", options=IGNORE)
    assert "WebFetch" in [t["function"]["name"] for t in out["tools"]]
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["system", "user", "system", "assistant", "tool", "user", "system"]
    tool = out["messages"][4]
    assert tool["tool_call_id"] == "toolu_01"
    assert tool["content"].startswith("<functions>\n<function>")
    assert '"name": "WebFetch"' in tool["content"] and '"url"' in tool["content"]
    assert out["messages"][5] == {"role": "user", "content": "Tool loaded."}


def test_count_tokens_on_it_is_estimated_not_refused() -> None:
    answer = estimate_input_tokens(claude_code_request(), options=IGNORE)
    assert answer["estimated"] is True and answer["input_tokens"] > len(ENVIRONMENT) // 4
