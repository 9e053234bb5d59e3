"""Rebuilding a thread from what each request added (pure)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conversations.text import normalise_message
from conversations.thread import rebuild, summary
from recording.document import build_document
from tests.conversations.helpers import PRICES, T0, documents_of, exchange_of
from tests.fixtures.conversations import exchanges, final_thread

SESSION = [["X-Claude-Code-Session-Id", "thread-test"]]
TOOLS = [{"name": "Bash", "input_schema": {"type": "object"}}]


def _reply(text: str, output: int = 5) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": output},
    }


def _doc(
    messages: list[dict[str, Any]],
    reply: dict[str, Any] | None,
    at: float,
    *,
    status: int = 200,
    headers: list[list[str]] | None = None,
) -> dict[str, Any]:
    entry = {
        "path": "/v1/messages",
        "headers": [*SESSION, *(headers or [])],
        "body": {
            "model": "claude-sonnet-4-5",
            "max_tokens": 9,
            "messages": messages,
            "tools": TOOLS,
        },
        "status": status,
        "reply": reply,
    }
    return build_document(exchange_of(entry, T0 + timedelta(seconds=at)), PRICES)


def _u(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _a(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def _messages(turns: list[dict[str, Any]], segment: int = 0) -> list[dict[str, Any]]:
    return [
        {"role": t["role"], "content": t["content"]}
        for t in turns
        if t["type"] == "message" and t["segment"] == segment
    ]


def _normalised(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [normalise_message(m) for m in messages]


def test_fixture_session_rebuilds_without_duplicates() -> None:
    entries = exchanges("main_session")
    docs = [d for d in documents_of(entries) if d["conversation"]]
    thread, missing = rebuild(docs)
    assert missing == set()
    compaction = next(
        i for i, e in enumerate(entries) if "detailed summary" in str(e["body"]["messages"][-1])
    )
    assert _messages(thread["turns"], 0) == _normalised(final_thread(entries[compaction]))
    assert _messages(thread["turns"], 1) == _normalised(final_thread(entries[-1]))
    # Request order does not matter to the result, only their timestamps do.
    assert rebuild(list(reversed(docs)))[0] == thread


def test_retries_and_resends_add_nothing() -> None:
    first = [_u("one")]
    docs = [
        _doc(first, _reply("A"), 0),
        _doc(first, _reply("A again"), 1),  # the client retried: the newer answer stands
        _doc([*first, _a("A again"), _u("two")], _reply("B"), 2),
    ]
    thread, _ = rebuild(docs)
    assert _messages(thread["turns"]) == _normalised([_u("one"), _a("A again"), _u("two"), _a("B")])
    assert thread["turns"][1]["requestId"] == docs[1]["requestId"]


def test_a_rewound_history_follows_the_newer_branch() -> None:
    docs = [
        _doc([_u("one")], _reply("A"), 0),
        _doc([_u("one"), _a("A"), _u("two")], _reply("B"), 1),
        _doc([_u("one"), _a("A"), _u("two"), _a("B"), _u("three")], _reply("C"), 2),
        # Rewound to after A, and asked something else.
        _doc([_u("one"), _a("A"), _u("other")], _reply("D"), 3),
    ]
    thread, _ = rebuild(docs)
    assert _messages(thread["turns"]) == _normalised([_u("one"), _a("A"), _u("other"), _a("D")])
    # Rewound to the same prompt and answered again: what came after it is gone too.
    again = _doc([_u("one"), _a("A"), _u("two")], _reply("B2"), 4)
    thread, _ = rebuild([*docs[:3], again])
    assert _messages(thread["turns"]) == _normalised([_u("one"), _a("A"), _u("two"), _a("B2")])


def test_errors_stay_before_the_answer_that_followed() -> None:
    history = [_u("one")]
    docs = [
        _doc(history, None, 0, status=529),
        _doc(history, None, 1, status=529),
        _doc(history, _reply("A"), 2),
    ]
    turns = rebuild(docs)[0]["turns"]
    assert [t["type"] for t in turns] == ["message", "error", "error", "message"]
    assert [t["requestId"] for t in turns[1:]] == [d["requestId"] for d in docs]


def test_same_millisecond_requests_order_by_history_length() -> None:
    docs = [
        _doc([_u("one"), _a("A"), _u("two")], _reply("B"), 0),
        _doc([_u("one")], _reply("A"), 0),
    ]
    thread, _ = rebuild(docs)
    assert _messages(thread["turns"]) == _normalised([_u("one"), _a("A"), _u("two"), _a("B")])


def test_gaps_are_reported_and_filled_from_bodies() -> None:
    history = [_u("one"), _a("A"), _u("two"), _a("B"), _u("three")]
    docs = [
        _doc(history[:1], _reply("A"), 0),
        _doc(history, _reply("C"), 5),
    ]  # the middle was not logged
    thread, missing = rebuild(docs)
    assert missing == {docs[1]["requestId"]}
    gap = next(t for t in thread["turns"] if t["type"] == "gap")
    assert (gap["index"], gap["count"]) == (2, 2)

    fills = {docs[1]["requestId"]: _normalised(history)}
    thread, missing = rebuild(docs, fills)
    assert missing == set()
    assert _messages(thread["turns"]) == _normalised([*history, _a("C")])
    assert [t["source"] for t in thread["turns"]][2:4] == ["history", "history"]


def test_compaction_starts_a_new_segment_after_a_boundary() -> None:
    summary_text = "This session is being continued from a previous conversation. Summary."
    docs = [
        _doc([_u("one")], _reply("A"), 0),
        _doc([_u(summary_text)], _reply("B"), 1),
        _doc([_u("completely new start")], _reply("C"), 2),
    ]
    turns = rebuild(docs)[0]["turns"]
    assert [t["type"] for t in turns] == [
        "message",
        "message",
        "compaction",
        "message",
        "message",
        "new_history",
        "message",
        "message",
    ]


def test_subagents_nest_under_their_spawning_call() -> None:
    call = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "Task",
        "input": {"prompt": "Find the bug"},
    }
    spawn = {**_reply("x"), "content": [call], "stop_reason": "tool_use"}
    inner = {
        "type": "tool_use",
        "id": "toolu_2",
        "name": "Agent",
        "input": {"prompt": "Look deeper"},
    }
    inner_spawn = {**_reply("y"), "content": [inner], "stop_reason": "tool_use"}
    agent = [["X-Claude-Code-Agent-Id", "agent-1"]]
    nested = [["X-Claude-Code-Agent-Id", "agent-2"], ["X-Claude-Code-Parent-Agent-Id", "agent-1"]]
    docs = [
        _doc([_u("fix it")], spawn, 0),
        _doc([_u("Find the bug")], inner_spawn, 1, headers=agent),
        _doc([_u("Look deeper")], _reply("deep result"), 2, headers=nested),
        _doc(
            [_u("Find the bug"), {"role": "assistant", "content": [inner]}, _u("r")],
            _reply("bug found"),
            3,
            headers=agent,
        ),
        _doc(
            [_u("Unrelated work")], _reply("z"), 4, headers=[["X-Claude-Code-Agent-Id", "agent-3"]]
        ),
    ]
    thread, _ = rebuild(docs)
    (first,) = thread["turns"][1]["subagents"]
    assert (first["agentId"], first["toolUseId"], first["requestCount"]) == (
        "agent-1",
        "toolu_1",
        2,
    )
    (deeper,) = first["turns"][1]["subagents"]
    assert (deeper["agentId"], deeper["parentAgentId"], deeper["toolUseId"]) == (
        "agent-2",
        "agent-1",
        "toolu_2",
    )
    # A subagent no call can be found for is still shown, at the top.
    assert [o["agentId"] for o in thread["subagents"]] == ["agent-3"]


def test_summary_uses_the_main_thread() -> None:
    docs = [d for d in documents_of(exchanges("main_session")) if d["conversation"]]
    view = summary(docs)
    assert view["firstMessage"] == "test_parse_invoice fails with a KeyError, can you fix it?"
    assert view["model"] == "claude-sonnet-4-5-20250929"  # the haiku side calls do not count
    assert view["requestCount"] == len(docs) and view["errorCount"] == 1
    assert view["outputTokens"] == sum(d["usage"]["output_tokens"] for d in docs if d["usage"])
    assert view["duration"] == round(
        (view["lastActivity"] - view["startTime"]).total_seconds() * 1000
    )
