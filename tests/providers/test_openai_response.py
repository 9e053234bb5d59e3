"""Non-streaming Chat Completions bodies and the Anthropic messages they become."""

from __future__ import annotations

from typing import Any

import pytest

from providers.openai_errors import BackendFailure
from providers.openai_response import anthropic_usage, from_openai_response, parse_completion

REQUEST_ID = "0f3c9a"


def completion(
    message: dict[str, Any], finish: str | None = "stop", usage: Any = None, **choice: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": finish,
                **choice,
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def translate(body: dict[str, Any], stop_sequences: tuple[str, ...] = ()) -> dict[str, Any]:
    return from_openai_response(
        body, model="claude-haiku-4-5", request_id=REQUEST_ID, stop_sequences=stop_sequences
    )


def fn(id: str | None, name: str, arguments: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if id is not None:
        call["id"] = id
    return call


def test_a_text_answer_becomes_a_complete_message() -> None:
    usage = {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}
    assert translate(completion({"content": "Hi — ünï 🙂"}, usage=usage)) == {
        "id": f"msg_{REQUEST_ID}",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "Hi — ünï 🙂"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 20,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 7,
        },
    }


def test_tool_calls_become_tool_use_blocks_after_the_text() -> None:
    message = {
        "content": "Let me check.",
        "tool_calls": [
            fn("call_1", "get_weather", '{"city": "Paris", "note": "say \\"hi\\""}'),
            fn("call_2", "get_time", ""),
        ],
    }
    out = translate(completion(message, "tool_calls"))
    assert out["content"] == [
        {"type": "text", "text": "Let me check."},
        {
            "type": "tool_use",
            "id": "call_1",
            "name": "get_weather",
            "input": {"city": "Paris", "note": 'say "hi"'},
        },
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
    ]
    assert out["stop_reason"] == "tool_use"


def test_null_content_with_tool_calls_has_no_text_block() -> None:
    out = translate(completion({"content": None, "tool_calls": [fn("c", "f", "{}")]}, "tool_calls"))
    assert [b["type"] for b in out["content"]] == ["tool_use"]


def test_a_call_without_an_id_gets_one_from_the_request() -> None:
    out = translate(completion({"tool_calls": [fn(None, "f", "{}"), fn("x:y", "g", "{}")]}))
    assert [b["id"] for b in out["content"]] == [f"toolu_{REQUEST_ID}_0", "x_y"]


def test_legacy_function_call() -> None:
    message = {"content": None, "function_call": {"name": "f", "arguments": '{"a": 1}'}}
    out = translate(completion(message, "function_call"))
    assert out["content"] == [
        {"type": "tool_use", "id": f"toolu_{REQUEST_ID}_0", "name": "f", "input": {"a": 1}}
    ]
    assert out["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("message", "finish", "extra", "stops", "expected"),
    [
        ({"content": "a"}, "stop", {}, (), ("end_turn", None)),
        ({"content": "a"}, "length", {}, (), ("max_tokens", None)),
        ({"content": "a"}, "content_filter", {}, (), ("refusal", None)),
        ({"content": None, "refusal": "No."}, "stop", {}, (), ("refusal", None)),
        ({"tool_calls": [fn("c", "f", "{}")]}, "tool_calls", {}, (), ("tool_use", None)),
        # OpenAI answers a forced tool_choice with "stop".
        ({"tool_calls": [fn("c", "f", "{}")]}, "stop", {}, (), ("tool_use", None)),
        ({"tool_calls": [fn("c", "f", "{")]}, "length", {}, (), None),
        # vLLM names the stop string that matched.
        ({"content": "a"}, "stop", {"stop_reason": "END"}, ("END",), ("stop_sequence", "END")),
        ({"content": "a"}, "stop", {"stop_reason": "END"}, (), ("end_turn", None)),
        ({"content": "a"}, "stop", {"stop_reason": 128009}, ("END",), ("end_turn", None)),
        ({"content": "a"}, "eos", {}, (), ("end_turn", None)),
        ({"content": "a"}, None, {}, (), ("end_turn", None)),
    ],
)
def test_stop_reasons(
    message: dict[str, Any],
    finish: str | None,
    extra: dict[str, Any],
    stops: tuple[str, ...],
    expected: tuple[str, str | None] | None,
) -> None:
    body = completion(message, finish, **extra)
    if expected is None:  # a truncated tool call: its arguments are not JSON
        with pytest.raises(BackendFailure):
            translate(body, stops)
        return
    out = translate(body, stops)
    assert (out["stop_reason"], out["stop_sequence"]) == expected


def test_refusal_text_is_kept() -> None:
    out = translate(completion({"content": None, "refusal": "I can't help with that."}))
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]


def test_content_parts_are_joined() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert translate(completion({"content": parts}))["content"] == [{"type": "text", "text": "ab"}]


def test_empty_answer_has_no_blocks() -> None:
    assert translate(completion({"content": ""}))["content"] == []


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {
                "prompt_tokens": 2048,
                "completion_tokens": 12,
                "prompt_tokens_details": {"cached_tokens": 1536},
            },
            {"input_tokens": 512, "cache_read_input_tokens": 1536, "output_tokens": 12},
        ),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 90,
                "completion_tokens_details": {"reasoning_tokens": 64},
            },
            {
                "input_tokens": 10,
                "output_tokens": 90,
                "output_tokens_details": {"thinking_tokens": 64},
            },
        ),
        # Nulls some servers send for the details.
        (
            {
                "prompt_tokens": 3,
                "completion_tokens": 4,
                "prompt_tokens_details": None,
                "completion_tokens_details": None,
            },
            {"input_tokens": 3, "output_tokens": 4},
        ),
        (None, {"usage_unreported": True}),
    ],
)
def test_usage(usage: Any, expected: dict[str, Any]) -> None:
    full = {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
        **expected,
    }
    assert translate(completion({"content": "x"}, usage=usage))["usage"] == full
    assert anthropic_usage(usage) == full


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        (
            {
                "error": {
                    "message": "Rate limited",
                    "type": "requests",
                    "code": "rate_limit_exceeded",
                }
            },
            429,
            "rate_limit_error",
        ),
        (
            {"object": "error", "message": "bad", "type": "BadRequestError", "code": 400},
            400,
            "invalid_request_error",
        ),
        ({"error": "model crashed"}, 502, "api_error"),
        ({"id": "x", "choices": []}, 502, "api_error"),
        ({"id": "x"}, 502, "api_error"),
        ({"choices": [{"index": 0, "finish_reason": "stop"}]}, 502, "api_error"),
        (completion({"content": 5}), 502, "api_error"),
        (completion({"tool_calls": [fn("c", "f", "[1, 2]")]}), 502, "api_error"),
        (completion({"tool_calls": [fn("c", "f", "{'a': 1}")]}), 502, "api_error"),
        (completion({"tool_calls": [fn("c", "", "{}")]}), 502, "api_error"),
        (
            completion({"tool_calls": [{"id": "c", "type": "custom", "custom": {}}]}),
            502,
            "api_error",
        ),
    ],
)
def test_unusable_answers_are_backend_failures(
    body: dict[str, Any], status: int, error_type: str
) -> None:
    with pytest.raises(BackendFailure) as info:
        translate(body)
    assert (info.value.status, info.value.error_type) == (status, error_type)
    assert info.value.message


def test_arguments_sent_as_an_object_are_accepted() -> None:
    out = translate(completion({"tool_calls": [fn("c", "f", {"a": [1]})]}))
    assert out["content"][0]["input"] == {"a": [1]}


def test_parse_completion() -> None:
    assert parse_completion(b'{"choices": []}') == {"choices": []}
    for raw in (b'{"choices": [', b"[1]", b"", b"<html>"):
        with pytest.raises(BackendFailure) as info:
            parse_completion(raw)
        assert (info.value.status, info.value.error_type) == (502, "api_error")
