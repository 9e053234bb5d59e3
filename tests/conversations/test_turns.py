"""How a rebuilt thread shows Claude Code 2.1's turns: system messages, omitted
thinking, fallback switches (pure)."""

from __future__ import annotations

from typing import Any

from conversations.thread import rebuild
from conversations.turns import usage_totals
from tests.conversations.thread_helpers import a, doc, kinds, reply, said, text, u

OMITTED = {"type": "thinking", "thinking": "", "signature": "EqQB-sig"}
SWITCH = {
    "type": "fallback",
    "from": {"model": "claude-fable-5"},
    "to": {"model": "claude-opus-5-5"},
    "trigger": {"type": "refusal", "category": "cyber"},
}


def _sys(value: str) -> dict[str, Any]:
    return {"role": "system", "content": value}


def _thinking_usage(count: int) -> dict[str, Any]:
    return {
        "input_tokens": 9,
        "output_tokens": 300,
        "output_tokens_details": {"thinking_tokens": count},
    }


def test_system_messages_are_system_turns() -> None:
    history = [u("one"), a(text("A")), u("two"), _sys("Plan mode is off.")]
    docs = [doc([u("one")], reply(text("A")), 0), doc(history, reply(text("B")), 1)]
    thread, _ = rebuild(docs)
    assert kinds(thread["turns"]) == [
        "message:user",
        "message:assistant",
        "message:user",
        "system",
        "message:assistant",
    ]
    system = thread["turns"][3]
    assert system["role"] == "system" and said([system]) == ["Plan mode is off."]
    # Resent with the next request, it stays one turn.
    again = doc([*history, a(text("B")), u("three")], reply(text("C")), 2)
    assert kinds(rebuild([*docs, again])[0]["turns"]).count("system") == 1


def test_a_subagents_prompt_is_never_a_system_message() -> None:
    agent = [["x-claude-code-agent-id", "agent-s"]]
    docs = [doc([u("Look into it"), _sys("Be thorough.")], reply(text("ok")), 0, headers=agent)]
    (view,) = rebuild(docs)[0]["subagents"]
    assert view["prompt"] == "Look into it"


def test_omitted_thinking_is_hidden_with_its_token_count() -> None:
    answer = reply(OMITTED, text("Done."), usage=_thinking_usage(180))
    turn = rebuild([doc([u("go")], answer, 0)])[0]["turns"][1]
    assert turn["content"][0] == {"type": "thinking", "hidden": True, "tokens": 180}
    assert turn["thinkingTokens"] == 180
    # Without the usage detail (an older document) the conversation's own copy counts.
    older = doc([u("go")], answer, 0)
    del older["usage"]["output_tokens_details"]
    assert rebuild([older])[0]["turns"][1]["content"][0]["tokens"] == 180
    # None known: hidden, without a count; never an empty block.
    none = rebuild([doc([u("go")], reply(OMITTED, text("x")), 0)])[0]["turns"][1]
    assert none["content"][0] == {"type": "thinking", "hidden": True, "tokens": None}
    assert none["thinkingTokens"] is None


def test_several_thinking_blocks_share_the_replys_count() -> None:
    answer = reply(
        OMITTED,
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}},
        OMITTED,
        text("x"),
        usage=_thinking_usage(90),
    )
    turn = rebuild([doc([u("go")], answer, 0)])[0]["turns"][1]
    hidden = [b for b in turn["content"] if b["type"] == "thinking"]
    assert hidden == [{"type": "thinking", "hidden": True, "tokens": None}] * 2
    assert turn["thinkingTokens"] == 90
    visible = {"type": "thinking", "thinking": "I should check the file.", "signature": "s"}
    turn = rebuild([doc([u("go")], reply(visible, usage=_thinking_usage(7)), 0)])[0]["turns"][1]
    assert turn["content"] == [{"type": "thinking", "thinking": "I should check the file."}]


def test_a_resent_message_with_hidden_thinking_is_the_same_message() -> None:
    # A final assistant message is a prefill, stored with the request: the retry
    # compares it with the held (hidden) one and keeps it.
    prefill = a(OMITTED, text("Answer: "))
    docs = [
        doc([u("q"), prefill], reply(text("42")), 0),
        doc([u("q"), prefill], reply(text("42")), 1),
    ]
    turns = rebuild(docs)[0]["turns"]
    assert turns[1]["requestId"] == docs[0]["requestId"]
    assert turns[1]["content"][0]["hidden"] is True


def test_a_fallback_switch_shows_requested_and_served_models() -> None:
    answer = reply(text("The limiter is "), SWITCH, text("in limits.py."), model="claude-fable-5")
    switched = doc([u("where?")], answer, 0, model="claude-fable-5")
    turn = rebuild([switched])[0]["turns"][1]
    assert turn["model"] == "claude-fable-5"  # requested
    assert turn["servedModel"] == "claude-opus-5-5"
    assert turn["fallbacks"] == [
        {
            "from": "claude-fable-5",
            "to": "claude-opus-5-5",
            "trigger": {"type": "refusal", "category": "cyber"},
        }
    ]
    assert [b["type"] for b in turn["content"]] == ["text", "fallback", "text"]


def test_served_model_without_a_switch_block() -> None:
    # Sticky routing: no block, the response names the model that served it.
    sticky = doc(
        [u("again")], reply(text("ok"), model="claude-opus-4-8"), 0, model="claude-fable-5"
    )
    turn = rebuild([sticky])[0]["turns"][1]
    assert (turn["model"], turn["servedModel"]) == ("claude-fable-5", "claude-opus-4-8")
    assert "fallbacks" not in turn
    # A document without the top-level field falls back on the conversation's.
    sticky.pop("servedModel", None)
    assert rebuild([sticky])[0]["turns"][1]["servedModel"] == "claude-opus-4-8"
    sticky["conversation"]["servedModel"] = None
    assert rebuild([sticky])[0]["turns"][1]["servedModel"] is None


def test_usage_totals_count_only_priced_costs_and_int_tokens() -> None:
    docs = [
        doc([u("a")], reply(text("x"), usage={"input_tokens": 3, "output_tokens": 4}), 0),
        doc([u("a")], reply(text("y"), usage={"input_tokens": 5, "output_tokens": 6}), 1),
    ]
    docs[1]["usage"]["input_tokens"] = "5"  # garbage never counts
    docs[1]["cost"] = None
    got = usage_totals(docs)
    assert got["requestCount"] == 2 and got["inputTokens"] == 3 and got["outputTokens"] == 10
    assert got["cost"] == round(docs[0]["cost"]["usd"], 10) > 0
