"""Turns and the system prompt: each Messages shape and the Chat Completions message it becomes."""

from __future__ import annotations

from typing import Any

import pytest

from providers.openai_messages import TOOL_ERROR_PREFIX, safe_tool_id, translate_messages
from providers.refusal import Malformed, Unsupported

USER = {"role": "user", "content": "next"}
PNG = "iVBORw0KGgo="


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **extra}


def tool_use(id: str, name: str, input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id, "name": name, "input": input}


def translated(messages: list[dict[str, Any]], system: Any = None) -> list[dict[str, Any]]:
    return translate_messages(system, messages)


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Be brief.", {"role": "system", "content": "Be brief."}),
        # cache_control is ignored on purpose; a single block reads as a plain string.
        (
            [text("One.", cache_control={"type": "ephemeral"})],
            {"role": "system", "content": "One."},
        ),
        (
            [text("One."), text("Two.", cache_control={"type": "ephemeral", "ttl": "1h"})],
            {"role": "system", "content": [text("One."), text("Two.")]},
        ),
    ],
)
def test_system_prompt(system: Any, expected: dict[str, Any]) -> None:
    assert translated([USER], system) == [expected, {"role": "user", "content": "next"}]


USER_CASES: list[tuple[Any, Any]] = [
    ("plain", "plain"),
    ([text("a")], "a"),
    ([text("a"), text("b")], [text("a"), text("b")]),
    (
        [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}],
        [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}],
    ),
    (
        [
            text("What is this?"),
            {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}},
        ],
        [
            text("What is this?"),
            {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}},
        ],
    ),
]


@pytest.mark.parametrize(("content", "expected"), USER_CASES)
def test_user_turns(content: Any, expected: Any) -> None:
    assert translated([{"role": "user", "content": content}]) == [
        {"role": "user", "content": expected}
    ]


def test_assistant_text_and_tool_calls() -> None:
    turns = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                text("Checking."),
                tool_use("toolu_01", "get_weather", {"city": "Zürich", "days": [1, 2]}),
                {"type": "redacted_thinking", "data": "opaque"},
                tool_use("toolu_02", "get_time", {}),
            ],
        },
        USER,
    ]
    assistant = translated(turns)[1]
    assert assistant == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "toolu_01",
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": '{"city": "Zürich", "days": [1, 2]}',
                },
            },
            {
                "id": "toolu_02",
                "type": "function",
                "function": {"name": "get_time", "arguments": "{}"},
            },
        ],
    }


def test_assistant_tool_calls_without_text_have_null_content() -> None:
    assistant = translated([{"role": "assistant", "content": [tool_use("t", "f", {})]}, USER])[0]
    assert assistant["content"] is None and len(assistant["tool_calls"]) == 1


def test_assistant_text_only() -> None:
    assert translated([{"role": "assistant", "content": "Sure."}, USER])[0] == {
        "role": "assistant",
        "content": "Sure.",
    }


def test_tool_results_become_tool_messages_in_order_before_the_rest() -> None:
    turn = {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "14°C"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_02",
                "content": [text("line 1"), text("line 2")],
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "tool_result", "tool_use_id": "toolu_03"},
            text("Thanks, continue."),
        ],
    }
    assert translated([turn]) == [
        {"role": "tool", "tool_call_id": "toolu_01", "content": "14°C"},
        {"role": "tool", "tool_call_id": "toolu_02", "content": [text("line 1"), text("line 2")]},
        {"role": "tool", "tool_call_id": "toolu_03", "content": ""},
        {"role": "user", "content": "Thanks, continue."},
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("No such file", TOOL_ERROR_PREFIX + "No such file"),
        ([text("boom"), text("trace")], [text(TOOL_ERROR_PREFIX + "boom"), text("trace")]),
        (None, "Error"),
    ],
)
def test_error_results_are_marked(content: Any, expected: Any) -> None:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": "t1", "is_error": True}
    if content is not None:
        block["content"] = content
    assert translated([{"role": "user", "content": [block]}]) == [
        {"role": "tool", "tool_call_id": "t1", "content": expected}
    ]


def test_mid_conversation_system_messages_stay_in_place() -> None:
    turns = [USER, {"role": "system", "content": [text("Now be formal.")]}, USER]
    assert [m["role"] for m in translated(turns)] == ["user", "system", "user"]
    assert translated(turns)[1]["content"] == "Now be formal."


def test_a_system_messages_effort_is_not_sent_with_it() -> None:
    """The per-message effort is the request's `reasoning_effort` (providers.effort):
    the message keeps its text, and an effort change alone adds no message."""
    turns = [
        USER,
        {"role": "system", "content": [text("# Environment")], "output_config": {"effort": "low"}},
        {"role": "system", "content": [], "output_config": {"effort": "high"}},
        {"role": "system", "content": "", "output_config": {}},
        {"role": "system", "content": "Still here.", "output_config": None},
    ]
    assert translated(turns) == [
        {"role": "user", "content": "next"},
        {"role": "system", "content": "# Environment"},
        {"role": "system", "content": "Still here."},
    ]


REFERENCED = {
    "WebFetch": {"name": "WebFetch", "description": "Fetch", "parameters": {"type": "object"}},
    "CronList": {"name": "CronList", "parameters": {"type": "object", "properties": {}}},
}


def _search_result(*content: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    block = {"type": "tool_result", "tool_use_id": "ts", "content": list(content), **extra}
    return [{"role": "user", "content": [block]}]


def test_tool_references_become_the_definitions_they_load() -> None:
    out = translate_messages(
        None,
        _search_result(
            {"type": "tool_reference", "tool_name": "WebFetch"},
            {"type": "tool_reference", "tool_name": "CronList", "cache_control": {"type": "x"}},
            text("and one more:"),
            {"type": "tool_reference", "tool_name": "Unknown"},
        ),
        REFERENCED,
    )
    assert out == [
        {
            "role": "tool",
            "tool_call_id": "ts",
            "content": [
                text(
                    "<functions>\n"
                    '<function>{"description": "Fetch", "name": "WebFetch", '
                    '"parameters": {"type": "object"}}</function>\n'
                    '<function>{"name": "CronList", '
                    '"parameters": {"type": "object", "properties": {}}}</function>\n'
                    "</functions>"
                ),
                text("and one more:"),
                text('<functions>\n<function>{"name": "Unknown"}</function>\n</functions>'),
            ],
        }
    ]


def test_a_failed_tool_search_keeps_its_error_mark() -> None:
    out = translate_messages(
        None,
        _search_result({"type": "tool_reference", "tool_name": "Unknown"}, is_error=True),
        REFERENCED,
    )
    assert out[0]["content"].startswith(TOOL_ERROR_PREFIX + "<functions>")


def test_tool_ids_keep_the_characters_both_formats_accept() -> None:
    assert safe_tool_id("call_a-B9") == "call_a-B9"
    assert safe_tool_id("call:1/x") == "call_1_x"
    turns = [
        {"role": "assistant", "content": [tool_use("call:1", "f", {})]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call:1"}]},
    ]
    out = translated(turns)
    assert out[0]["tool_calls"][0]["id"] == out[1]["tool_call_id"] == "call_1"


REFUSED: list[tuple[str, list[dict[str, Any]], Any]] = [
    (
        "images inside a tool_result",
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [
                            {"type": "image", "source": {"type": "url", "url": "https://x"}}
                        ],
                    }
                ],
            }
        ],
        None,
    ),
    (
        "`document` content blocks",
        [{"role": "user", "content": [{"type": "document", "source": {}}]}],
        None,
    ),
    (
        "`file` image sources",
        [
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
            }
        ],
        None,
    ),
    ("citations on text blocks", [{"role": "user", "content": [text("a", citations=[{}])]}], None),
    (
        "`server_tool_use` content blocks in assistant messages",
        [{"role": "assistant", "content": [{"type": "server_tool_use"}]}, USER],
        None,
    ),
    (
        "`compaction` content blocks in assistant messages",
        [{"role": "assistant", "content": [{"type": "compaction", "content": "s"}]}, USER],
        None,
    ),
    (
        "`search_result` blocks inside a tool_result",
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "search_result"}],
                    }
                ],
            }
        ],
        None,
    ),
    (
        "content before a tool_result in a user message",
        [{"role": "user", "content": [text("a"), {"type": "tool_result", "tool_use_id": "t"}]}],
        None,
    ),
    ("a final assistant message (prefill)", [USER, {"role": "assistant", "content": "{"}], None),
    (
        "`caller` on tool_use blocks",
        [{"role": "assistant", "content": [{**tool_use("t", "f", {}), "caller": {}}]}, USER],
        None,
    ),
    ("`name` on messages", [{"role": "user", "content": "x", "name": "bob"}], None),
    (
        "`output_config` on messages",
        [{"role": "user", "content": "x", "output_config": {"effort": "low"}}],
        None,
    ),
    (
        "`output_config.format` on system messages",
        [USER, {"role": "system", "content": [], "output_config": {"format": {}}}],
        None,
    ),
    (
        "`tool_name_hint` on tool_reference blocks",
        _search_result({"type": "tool_reference", "tool_name": "X", "tool_name_hint": "y"}),
        None,
    ),
    ("`image` blocks in `system`", [USER], [{"type": "image"}]),
]


@pytest.mark.parametrize(("feature", "messages", "system"), REFUSED)
def test_what_cannot_be_expressed_is_refused_by_name(
    feature: str, messages: list[dict[str, Any]], system: Any
) -> None:
    with pytest.raises(Unsupported) as info:
        translated(messages, system)
    assert info.value.feature == feature
    assert feature in info.value.message


@pytest.mark.parametrize(
    "messages",
    [
        "not a list",
        [{"role": "robot", "content": "x"}],
        [{"role": "user", "content": 5}],
        [{"role": "user", "content": [text(5)]}],  # type: ignore[arg-type]
        [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": []}],
            },
            USER,
        ],
        [USER, {"role": "system", "content": "x", "output_config": "low"}],
        _search_result({"type": "tool_reference"}),
    ],
)
def test_malformed_requests_are_refused(messages: Any) -> None:
    with pytest.raises(Malformed):
        translate_messages(None, messages)
