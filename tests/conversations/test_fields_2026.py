"""What a logged request records about its conversation: the Claude Code 2.1 and
2026 API shapes (system messages, compaction, fallback, omitted thinking)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conversations.fields import compaction_keys, served_model, tail_start, thinking_tokens
from conversations.text import STRING_LIMIT, normalise_message
from recording.document import build_document
from tests.conversations.helpers import PRICES, documents_of, exchange_of
from tests.fixtures.conversations import exchanges

SESSION = [["x-claude-code-session-id", "fields-2026"]]
SUMMARY = "Summary: the user wants rate limiting on /upload; done in api/limits.py."


def _entry(
    messages: list[Any],
    reply: dict[str, Any] | None = None,
    *,
    headers: list[list[str]] | None = None,
) -> dict[str, Any]:
    return {
        "path": "/v1/messages",
        "headers": headers if headers is not None else SESSION,
        "body": {
            "model": "claude-opus-5-5",
            "max_tokens": 10,
            "messages": messages,
            "tools": [{"name": "Bash"}],
        },
        "status": 200,
        "reply": reply
        or {
            "type": "message",
            "role": "assistant",
            "model": "claude-opus-5-5",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
    }


def _doc(entry: dict[str, Any]) -> dict[str, Any]:
    return build_document(exchange_of(entry), PRICES)


def _u(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _a(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _compaction(summary: str = SUMMARY) -> dict[str, Any]:
    return {"type": "compaction", "content": summary, "encrypted_content": "EqQCopaque"}


def _sys(text: str) -> dict[str, Any]:
    return {"role": "system", "content": text}


# ---- mid-conversation system messages ------------------------------------------------------
def test_a_system_message_is_a_turn_of_its_own_never_the_prompt_nor_the_grouping() -> None:
    history = [_u("fix the login bug"), _a(_text("on it")), _u("also the tests")]
    plain = _doc(_entry(history, headers=[]))
    with_system = _doc(_entry([*history, _sys("Zanzibar mode: answer tersely.")], headers=[]))
    conv = with_system["conversation"]
    assert [t["role"] for t in conv["turns"]] == ["user", "system"]
    assert conv["turns"][1]["content"] == [_text("Zanzibar mode: answer tersely.")]
    # The instruction is injected context: neither searchable nor the prompt.
    assert "zanzibar" not in conv["words"] and "tests" in conv["words"]
    assert conv["prompt"] == "fix the login bug"
    # Grouping without a session, and the history's identity, ignore it.
    assert conv["id"] == plain["conversation"]["id"] == plain["conversationHash"]
    assert conv["segment"] == plain["conversation"]["segment"]


def test_a_system_message_in_first_place_never_counts_as_the_first_message() -> None:
    # The API refuses it there, but a client may still send it; the log keeps the request.
    first = _doc(_entry([_sys("be brief"), _u("hello there")], headers=[]))
    plain = _doc(_entry([_u("hello there")], headers=[]))
    assert first["conversation"]["segment"] == plain["conversation"]["segment"]
    assert first["conversation"]["id"] == plain["conversation"]["id"]
    assert first["conversation"]["prompt"] == "hello there"


# ---- compaction ---------------------------------------------------------------------------
def test_tail_start_counts_an_opening_assistant_message_as_new() -> None:
    restarted = [_a(_compaction()), _u("next")]
    assert tail_start(restarted) == 0  # no request of this history answered it
    assert tail_start([*restarted, _a(_text("b")), _u("c")]) == 3
    assert tail_start([_sys("x"), _a(_compaction()), _u("next")]) == 0
    assert tail_start([_u("a"), _a(_text("b")), _u("c")]) == 2  # unchanged otherwise


def test_compaction_keys_join_the_reply_and_the_history_that_starts_at_it() -> None:
    long_summary = "s" * (STRING_LIMIT + 10)  # stored clipped: the keys come from the raw text
    reply = {
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-5-5",
        "content": [_compaction(long_summary), _text("Done.")],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 5, "output_tokens": 3},
    }
    before = _doc(_entry([_u("one"), _a(_text("A")), _u("two")], reply))["conversation"]
    (key,) = before["compactions"]
    after = _doc(_entry([_a(*reply["content"]), _u("three")]))["conversation"]
    assert after["resumes"] == key and after["start"] == 0
    assert [t["role"] for t in after["turns"]] == ["assistant", "user"]
    assert after["segment"] != before["segment"]
    # The client may resend the block alone (pause_after_compaction): the same key.
    alone = _doc(_entry([_a(_compaction(long_summary)), _u("three")]))["conversation"]
    assert alone["resumes"] == key
    # A history that merely contains the block further on is not a restart.
    kept = _doc(_entry([_u("one"), _a(*reply["content"]), _u("three")]))["conversation"]
    assert kept["resumes"] is None and kept["compactions"] == []
    stored = json.dumps([before, after])
    assert "encrypted_content" not in stored and "EqQCopaque" not in stored
    assert before["reply"]["content"][0]["truncated"] == STRING_LIMIT + 10
    assert compaction_keys(None) == [] and compaction_keys([{"type": "compaction"}]) != []


# ---- fallback and thinking ----------------------------------------------------------------
def test_served_model_is_the_fallback_target_else_the_response_model() -> None:
    switch = {
        "type": "fallback",
        "from": {"model": "claude-fable-5"},
        "to": {"model": "claude-opus-5-5"},
        "trigger": {"type": "refusal", "category": "cyber"},
    }
    # In a stream, message_start names the requested model: the block says who finished.
    streamed = {"model": "claude-fable-5", "content": [_text("a"), switch, _text("b")]}
    assert served_model(streamed, streamed["content"]) == "claude-opus-5-5"
    sticky = {"model": "claude-opus-4-8", "content": [_text("no switch block")]}
    assert served_model(sticky, sticky["content"]) == "claude-opus-4-8"
    odd = {"model": 7, "content": [{"type": "fallback", "to": "x"}]}
    assert served_model(odd, odd["content"]) is None
    assert served_model(None, None) is None


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"output_tokens_details": {"thinking_tokens": 180}}, 180),
        ({"output_tokens_details": {"thinking_tokens": 0}}, 0),
        ({"output_tokens_details": {"thinking_tokens": True}}, None),
        ({"output_tokens_details": {"thinking_tokens": -1}}, None),
        ({"output_tokens_details": {"thinking_tokens": "9"}}, None),
        ({"output_tokens_details": None}, None),
        ({}, None),
        (None, None),
    ],
)
def test_thinking_tokens_are_read_only_when_a_count(usage: Any, expected: int | None) -> None:
    assert thinking_tokens({"usage": usage}) == expected


def test_the_2_1_session_records_fallbacks_thinking_and_system_turns() -> None:
    docs = [d for d in documents_of(exchanges("claude_code_21")) if d["conversation"]]
    convs = [d["conversation"] for d in docs]
    assert {c["id"] for c in convs} == {"7a1c9e4b-2f3d-4e8a-9b6c-0d5e7f1a2b3c"}
    assert convs[0]["thinkingTokens"] == 180 and convs[0]["servedModel"] == "claude-opus-5-5"
    assert any(t["role"] == "system" for t in convs[1]["turns"])
    switched = next(d for d in docs if d["model"] == "claude-fable-5")
    assert switched["conversation"]["servedModel"] == "claude-opus-5-5"
    nested = next(c for c in convs if c["agentId"] == "agent-b2")
    assert nested["thread"] == "subagent" and nested["parentAgentId"] == "agent-a1"
    # Every request after the compaction resumes from the block the earlier reply holds.
    (key,) = next(c["compactions"] for c in convs if c["compactions"])
    resumed = [c for c in convs if c["resumes"]]
    assert len(resumed) == 2 and {c["resumes"] for c in resumed} == {key}
    assert all(
        c["prompt"] == "Add per-user rate limiting to POST /upload: at most 10 uploads a minute."
        for c in convs
        if c["thread"] == "main" and not c["resumes"]
    )


def test_omitted_thinking_is_stored_as_an_empty_thinking_block() -> None:
    given = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "", "signature": "sig"},
            {"type": "thinking", "signature": "sig2"},  # no text field at all
        ],
    }
    assert normalise_message(given)["content"] == [
        {"type": "thinking", "thinking": ""},
        {"type": "thinking", "thinking": ""},
    ]
