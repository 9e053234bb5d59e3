"""Top-level fields of a Messages request and their Chat Completions equivalents."""

from __future__ import annotations

from typing import Any

import pytest

from providers.openai_request import OpenAIOptions, to_openai_request
from providers.refusal import Malformed, Unsupported

MESSAGES = [{"role": "user", "content": "hi"}]
TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
FUNCTION = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "messages": MESSAGES, **fields}


DEFAULT = OpenAIOptions()


def translated(options: OpenAIOptions = DEFAULT, **fields: Any) -> dict[str, Any]:
    return to_openai_request(request(**fields), model="gpt-test", options=options)


def test_minimal_request_uses_the_routed_model() -> None:
    assert translated() == {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


# (Messages fields, the Chat Completions fields they add)
CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"max_tokens": 512}, {"max_tokens": 512}),
    ({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}),
    ({"stop_sequences": ["END", "\n\nHuman:"]}, {"stop": ["END", "\n\nHuman:"]}),
    ({"stop_sequences": []}, {}),
    ({"metadata": {"user_id": '{"device_id":"d1"}'}}, {"user": '{"device_id":"d1"}'}),
    ({"metadata": {}}, {}),
    ({"stream": True}, {"stream": True, "stream_options": {"include_usage": True}}),
    ({"stream": False}, {}),
    ({"tools": [TOOL]}, {"tools": [FUNCTION]}),
    (
        {
            "tools": [
                {**TOOL, "cache_control": {"type": "ephemeral"}, "strict": True, "type": "custom"}
            ]
        },
        {"tools": [{"type": "function", "function": {**FUNCTION["function"], "strict": True}}]},
    ),
    (
        {"tools": [TOOL], "tool_choice": {"type": "auto"}},
        {"tools": [FUNCTION], "tool_choice": "auto"},
    ),
    (
        {"tools": [TOOL], "tool_choice": {"type": "any"}},
        {"tools": [FUNCTION], "tool_choice": "required"},
    ),
    (
        {"tools": [TOOL], "tool_choice": {"type": "none"}},
        {"tools": [FUNCTION], "tool_choice": "none"},
    ),
    (
        {"tools": [TOOL], "tool_choice": {"type": "tool", "name": "get_weather"}},
        {
            "tools": [FUNCTION],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
    ),
    (
        {"tools": [TOOL], "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
        {"tools": [FUNCTION], "tool_choice": "auto", "parallel_tool_calls": False},
    ),
    # Without tools, auto and none mean nothing (and OpenAI refuses a lone tool_choice).
    ({"tool_choice": {"type": "auto"}}, {}),
    ({"tool_choice": {"type": "none"}}, {}),
    ({"thinking": {"type": "disabled"}}, {}),
    (
        {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": True},
            }
        },
    ),
    (
        {"output_format": {"type": "json_schema", "schema": {"type": "array"}}},
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": {"type": "array"}, "strict": True},
            }
        },
    ),
    # Documented as harmless to leave out.
    ({"cache_control": {"type": "ephemeral"}}, {}),
    ({"service_tier": "standard_only"}, {}),
    ({"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}}, {}),
    ({"speed": "standard"}, {}),
    ({"top_k": None}, {}),
]


@pytest.mark.parametrize(("fields", "added"), CASES)
def test_fields_translate(fields: dict[str, Any], added: dict[str, Any]) -> None:
    out = translated(**fields)
    assert {k: v for k, v in out.items() if k not in ("model", "messages")} == added


def test_max_completion_tokens_when_the_backend_wants_it() -> None:
    out = translated(OpenAIOptions(max_tokens_field="max_completion_tokens"), max_tokens=99)
    assert out["max_completion_tokens"] == 99 and "max_tokens" not in out


REASONING = OpenAIOptions(thinking="reasoning_effort")


@pytest.mark.parametrize(
    ("fields", "effort"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4097}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 16384}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 32000}}, "high"),
        ({"thinking": {"type": "adaptive"}}, None),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, "low"),
        ({"output_config": {"effort": "medium"}}, "medium"),
        ({"output_config": {"effort": "max"}}, "high"),
        ({"output_config": {"effort": "xhigh"}}, "high"),
        # An explicit effort wins over a budget.
        (
            {
                "thinking": {"type": "enabled", "budget_tokens": 32000},
                "output_config": {"effort": "low"},
            },
            "low",
        ),
    ],
)
def test_thinking_maps_to_reasoning_effort_where_the_backend_has_it(
    fields: dict[str, Any], effort: str | None
) -> None:
    assert translated(REASONING, **fields).get("reasoning_effort") == effort


@pytest.mark.parametrize(
    "fields",
    [
        {"thinking": {"type": "enabled", "budget_tokens": 2048}},
        {"thinking": {"type": "adaptive", "display": "omitted"}},
        {"output_config": {"effort": "medium"}},
        {
            "messages": [
                *MESSAGES,
                {"role": "system", "content": [], "output_config": {"effort": "low"}},
            ]
        },
    ],
)
def test_thinking_is_refused_by_default_and_dropped_only_when_configured(
    fields: dict[str, Any],
) -> None:
    with pytest.raises(Unsupported) as info:
        translated(**fields)
    assert "thinking" in info.value.feature
    ignored = translated(OpenAIOptions(thinking="ignore"), **fields)
    assert "reasoning_effort" not in ignored and set(ignored) == {"model", "messages"}
    # An effort-only system message leaves nothing behind.
    assert ignored["messages"] == [{"role": "user", "content": "hi"}]


def test_the_default_effort_asks_for_nothing_and_passes_the_default_mode() -> None:
    out = translated(output_config={"effort": "high"})
    assert out == {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def test_a_per_message_effort_is_sent_as_the_reasoning_effort() -> None:
    messages = [
        *MESSAGES,
        {"role": "system", "content": "Be thorough.", "output_config": {"effort": "low"}},
    ]
    out = translated(REASONING, messages=messages, output_config={"effort": "high"})
    assert out["reasoning_effort"] == "low"
    assert out["messages"][-1] == {"role": "system", "content": "Be thorough."}


DEFERRED = {
    "name": "WebFetch",
    "description": "Fetch a URL",
    "input_schema": {"type": "object", "properties": {"url": {"type": "string"}}},
    "defer_loading": True,
}
PLACEHOLDER = {
    "name": "DeferredToolPlaceholder",
    "description": "Reserved placeholder that keeps deferred tool loading active; never call it.",
    "input_schema": {"type": "object", "properties": {}},
    "defer_loading": True,
}


def test_deferred_tools_are_sent_as_ordinary_functions() -> None:
    out = translated(tools=[TOOL, DEFERRED, PLACEHOLDER, {**DEFERRED, "name": "Later"}])
    assert [t["function"]["name"] for t in out["tools"]] == [
        "get_weather",
        "WebFetch",
        "DeferredToolPlaceholder",
        "Later",
    ]
    assert out["tools"][1] == {
        "type": "function",
        "function": {
            "name": "WebFetch",
            "description": "Fetch a URL",
            "parameters": DEFERRED["input_schema"],
        },
    }
    # Deferred or not, the same function.
    assert translated(tools=[{**TOOL, "defer_loading": False}])["tools"] == [FUNCTION]


def test_a_tool_search_result_shows_the_loaded_definitions() -> None:
    """Claude Code's ToolSearch answer: tool references, then its own text."""
    messages = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "ToolSearch", "input": {"q": "x"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [
                        {"type": "tool_reference", "tool_name": "WebFetch"},
                        {"type": "tool_reference", "tool_name": "Gone"},
                    ],
                },
                {"type": "text", "text": "Tool loaded.", "cache_control": {"type": "ephemeral"}},
            ],
        },
    ]
    out = translated(messages=messages, tools=[TOOL, DEFERRED])
    assert out["messages"][2:] == [
        {
            "role": "tool",
            "tool_call_id": "toolu_1",
            "content": "<functions>\n"
            '<function>{"description": "Fetch a URL", "name": "WebFetch", "parameters": '
            '{"type": "object", "properties": {"url": {"type": "string"}}}}</function>\n'
            '<function>{"name": "Gone"}</function>\n'
            "</functions>",
        },
        {"role": "user", "content": "Tool loaded."},
    ]


REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"top_k": 40}, "`top_k`"),
    ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "`mcp_servers`"),
    ({"container": "cntr_1"}, "`container`"),
    ({"inference_geo": "us"}, "`inference_geo`"),
    ({"fallbacks": [{"model": "claude-opus-5"}]}, "`fallbacks`"),
    ({"speed": "fast"}, "`speed: fast`"),
    (
        {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        "`web_search_20250305` tools",
    ),
    ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "`bash_20250124` tools"),
    ({"tools": [{**TOOL, "input_examples": [{}]}]}, "`input_examples` on tools"),
    ({"metadata": {"user_id": "u", "team": "x"}}, "`metadata.team`"),
    ({"output_config": {"verbosity": "low"}}, "`output_config.verbosity`"),
    ({"output_config": {"format": {"type": "regex", "pattern": "a+"}}}, "output format `regex`"),
    ({"thinking": {"type": "sometimes"}}, "thinking of type `sometimes`"),
    ({"tools": [TOOL], "tool_choice": {"type": "maybe"}}, "`tool_choice` of type `maybe`"),
    ({"brand_new_field": 1}, "`brand_new_field`"),
]


@pytest.mark.parametrize(("fields", "feature"), REFUSED)
def test_refusals_name_the_feature(fields: dict[str, Any], feature: str) -> None:
    with pytest.raises(Unsupported) as info:
        translated(REASONING, **fields)
    assert info.value.feature == feature


def test_unknown_effort_is_refused_even_when_reasoning_is_mapped() -> None:
    with pytest.raises(Unsupported, match="effort `extreme`"):
        translated(REASONING, output_config={"effort": "extreme"})


@pytest.mark.parametrize(
    "fields",
    [
        {"stop_sequences": "END"},
        {"tools": {"name": "x"}},
        {"tools": [{"name": "x"}]},
        {"tool_choice": {"type": "tool", "name": "get_weather"}},
        {"tool_choice": {"type": "tool"}, "tools": [TOOL]},
        {"metadata": {"user_id": 5}},
        {"thinking": {"type": "enabled"}},
        {"tools": [{**TOOL, "defer_loading": "yes"}]},
    ],
)
def test_malformed_fields_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(Malformed):
        translated(REASONING, **fields)


def test_the_input_body_is_not_modified() -> None:
    body = request(tools=[TOOL], system=[{"type": "text", "text": "s"}], max_tokens=5)
    snapshot = repr(body)
    to_openai_request(body, model="m")
    assert repr(body) == snapshot
