"""The thread view's pages (pure): each tool call with its result, subagents under
the call that started them, the per-tool renderers, and the bounds of a page.

Threads come from the recorded-style sessions rebuilt as the conversation API
rebuilds them, or are written out here for the paging cases."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from conversations.thread import rebuild, summary
from dashboard.thread_blocks import block_views, split_reminders, tool_view
from dashboard.thread_models import SubagentView, ThreadPage, ToolView, TurnView
from dashboard.thread_view import (
    MAX_BLOCKS,
    MAX_RENDERED,
    PAGE_TURNS,
    SUBAGENT_TURNS,
    anchor_of,
    build_page,
    find_agent,
)
from tests.conversations.helpers import documents_of
from tests.fixtures.conversations import exchanges
from tests.fixtures.conversations.claude_code_21 import AGENT, NESTED, SYSTEM_NOTE

T = "2026-12-01T10:00:00Z"


def _iso(value: object) -> str:
    assert isinstance(value, datetime)
    return value.isoformat().replace("+00:00", "Z")


def thread_of(name: str) -> dict[str, Any]:
    """What `/api/conversations/{id}` answers for a fixture session."""
    docs = [d for d in documents_of(exchanges(name)) if d["conversation"]]
    view = summary(docs)
    thread, missing = rebuild(docs)
    assert not missing
    view.update(thread)
    return json.loads(json.dumps(view, default=_iso))


def tools(page: ThreadPage | SubagentView) -> list[ToolView]:
    return [b.tool for t in page.turns for b in t.blocks if b.tool is not None]


def message(role: str, content: list[dict[str, Any]], rid: str = "r1") -> dict[str, Any]:
    return {
        "type": "message",
        "role": role,
        "index": 0,
        "content": content,
        "requestId": rid,
        "timestamp": T,
        "source": "request",
    }


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def agent(agent_id: str, turns: list[dict[str, Any]], tool_use_id: str | None) -> dict[str, Any]:
    totals = {"requestCount": 1, "totalTokens": 10, "cost": 0.5}
    return {
        "agentId": agent_id,
        "parentAgentId": None,
        "prompt": f"prompt of {agent_id}",
        "startTime": T,
        "lastActivity": T,
        "toolUseId": tool_use_id,
        "turns": turns,
        "totals": totals,
        "subtreeTotals": totals,
    }


# ---- recorded sessions ----------------------------------------------------------------
def test_each_call_is_shown_with_its_result() -> None:
    page = build_page(thread_of("main_session"), "c1")
    assert page is not None
    by_name = {t.name: t for t in tools(page)}
    read, failing = by_name["Read"], next(t for t in tools(page) if t.name == "Bash")
    assert read.kind == "read" and read.title.endswith("/tests/test_invoice.py")
    assert read.result is not None and read.result.text.startswith("     1\tfrom billing.parse")
    assert failing.code == "pytest tests/test_invoice.py -x -q"
    assert failing.result is not None and failing.result.is_error
    assert "KeyError: 'currency'" in failing.result.text
    # Results are shown with their calls, never as turns of their own.
    for turn in page.turns:
        assert not any(b.kind == "orphan_result" for b in turn.blocks)
        if turn.kind == "user":
            assert any(b.kind in ("text", "reminder") for b in turn.blocks)
    kinds = [t.kind for t in page.turns]
    assert kinds.count("error") == 1 and kinds.count("compaction") == 1
    error = page.turns[kinds.index("error")]
    assert error.facts is not None and error.facts.status == 529
    assert error.error == "overloaded_error: Overloaded"
    assert page.side_call_count == 2 and len(page.side_calls) == 2


def test_subagents_hang_under_the_call_that_started_them() -> None:
    page = build_page(thread_of("claude_code_21"), "c21")
    assert page is not None and page.unplaced == []
    (task,) = [t for t in tools(page) if t.name == "Task"]
    (outer,) = task.subagents
    assert outer.agent_id == AGENT and outer.anchor == f"agent-{AGENT}"
    assert (outer.totals.requests, outer.subtree.requests) == (2, 3)
    assert outer.subtree.cost > outer.totals.cost > 0
    (inner_task,) = [t for t in tools(outer) if t.name == "Task"]
    (inner,) = inner_task.subagents
    assert inner.agent_id == NESTED and inner.turns[0].kind == "user"
    assert task.result is not None and task.result.markdown is not None  # the report
    system = [t for t in page.turns if t.kind == "system"]
    assert [b.text for t in system for b in t.blocks] == [SYSTEM_NOTE]


def test_hidden_thinking_fallbacks_and_facts() -> None:
    page = build_page(thread_of("claude_code_21"), "c21")
    assert page is not None
    hidden = [b.tokens for t in page.turns for b in t.blocks if b.kind == "hidden_thinking"]
    assert hidden == [180, 95, 150]
    (switched,) = [t for t in page.turns if t.fallbacks]
    assert (switched.fallbacks[0].source, switched.fallbacks[0].target) == (
        "claude-fable-5",
        "claude-opus-5-5",
    )
    assert switched.fallbacks[0].trigger == "refusal cyber"
    marker = [b.text for b in switched.blocks if b.kind == "fallback"]
    assert marker == ["claude-fable-5 → claude-opus-5-5 (refusal: cyber)"]
    assert switched.facts is not None and switched.facts.served_model == "claude-opus-5-5"
    assert switched.facts.model == "claude-fable-5" and switched.facts.cost
    compaction = next(t for t in page.turns if t.kind == "compaction")
    assert compaction.source == "server"
    assert all(t.request_href == f"/dashboard/requests/{t.request_id}" for t in page.turns)


def test_an_agent_page_and_unknown_agents() -> None:
    thread = thread_of("claude_code_21")
    page = build_page(thread, "c21", agent=NESTED)
    assert page is not None and page.agent is not None
    assert page.agent.agent_id == NESTED and page.agent.turns == []
    assert [t.anchor for t in page.turns] == [f"agent-{NESTED}-0", f"agent-{NESTED}-1"]
    assert find_agent(thread, AGENT) is not None
    assert build_page(thread, "c21", agent="nobody") is None


# ---- renderers ----------------------------------------------------------------------------
def test_tool_renderers() -> None:
    edit = tool_view(
        {
            "type": "tool_use",
            "id": "t",
            "name": "MultiEdit",
            "input": {
                "file_path": "/a.py",
                "edits": [{"old_string": "a\n", "new_string": "b\n"}, {"new_string": "c"}],
            },
        },
        None,
    )
    assert edit.kind == "edit" and edit.title == "/a.py" and edit.result is None
    assert [e.label for e in edit.edits] == ["edit 1 of 2", "edit 2 of 2"]
    assert [(r.kind, r.text) for r in edit.edits[0].diff.rows] == [("del", "a"), ("add", "b")]
    todos = tool_view(
        {
            "type": "tool_use",
            "id": "t2",
            "name": "TodoWrite",
            "input": {
                "todos": [
                    {"content": "Read", "status": "completed", "activeForm": "Reading"},
                    {"content": "Fix", "status": "in_progress"},
                    "junk",
                ]
            },
        },
        None,
    )
    assert [(i.text, i.status) for i in todos.todos] == [
        ("Read", "completed"),
        ("Fix", "in_progress"),
    ]
    other = tool_view({"type": "tool_use", "id": "t3", "name": "mcp__x", "input": {"q": 1}}, None)
    assert other.kind == "generic" and other.code == '{\n  "q": 1\n}'
    result = {
        "type": "tool_result",
        "tool_use_id": "t4",
        "content": [
            text("see"),
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png"},
                "bytes": 4096,
            },
        ],
    }
    shot = tool_view({"type": "tool_use", "id": "t4", "name": "Read", "input": {}}, (result, "r9"))
    assert shot.result is not None and shot.result.placeholders == ["image (image/png, 4 KB)"]
    assert shot.result.request_href == "/dashboard/requests/r9"


def test_blocks_of_a_message() -> None:
    content = [
        text("<system-reminder>\nctx\n</system-reminder>\nHi **there**"),
        {"type": "tool_result", "tool_use_id": "gone", "content": "orphan", "is_error": True},
        {"type": "tool_result", "tool_use_id": "known", "content": "paired"},
        {"type": "image", "source": {"type": "url", "url": "https://x.example/a.png"}},
        {"type": "omitted", "blocks": 7},
        {"type": "redacted_thinking"},
        {"type": "thinking", "hidden": True, "tokens": None},
        {"type": "web_search_tool_result", "content": []},
    ]
    views = block_views(content, "user", {}, {"known"}, "r1")
    assert [v.kind for v in views] == [
        "reminder",
        "text",
        "orphan_result",
        "media",
        "omitted",
        "redacted_thinking",
        "hidden_thinking",
        "other",
    ]
    assert views[0].text == "ctx" and str(views[1].html) == "<p>Hi <strong>there</strong></p>"
    assert views[2].result is not None and views[2].result.is_error
    assert views[3].text == "image (from a URL)" and views[4].tokens == 7


def test_reminders_are_split_in_one_pass() -> None:
    assert split_reminders("a<system-reminder>b</system-reminder>c<system-reminder>d") == [
        (False, "a"),
        (True, "b"),
        (False, "c"),
        (True, "d"),
    ]
    many = "<system-reminder>x</system-reminder>" * 10_000
    assert len(split_reminders(many)) == 10_000


@pytest.mark.parametrize(
    ("agent_id", "anchor"),
    [("agent-a1", "agent-agent-a1"), ("a1_B", "agent-a1_B")],
)
def test_safe_agent_ids_are_their_own_anchor(agent_id: str, anchor: str) -> None:
    assert anchor_of(agent_id) == anchor


def test_other_agent_ids_get_a_hashed_anchor() -> None:
    weird = anchor_of('x" onclick="y')
    assert weird.startswith("agent-") and len(weird) == 22 and '"' not in weird
    assert anchor_of("a b") != anchor_of("a_b")


# ---- pages and their bounds ------------------------------------------------------------------
def _long(count: int) -> dict[str, Any]:
    turns = [
        message("user" if n % 2 == 0 else "assistant", [text(f"turn {n}")], f"r{n}")
        for n in range(count)
    ]
    return {"turns": turns, "subagents": [], "auxiliary": []}


def test_a_long_thread_is_paged() -> None:
    thread = _long(PAGE_TURNS * 2 + 5)
    first = build_page(thread, "c/1")
    assert first is not None
    assert [t.anchor for t in first.turns] == [f"turn-{n}" for n in range(PAGE_TURNS)]
    assert first.next_from == PAGE_TURNS and first.total == PAGE_TURNS * 2 + 5
    assert first.more_fragment == f"/dashboard/conversations/c%2F1/turns?from={PAGE_TURNS}"
    assert first.more_page == f"/dashboard/conversations/c%2F1?from={PAGE_TURNS}"
    last = build_page(thread, "c/1", start=PAGE_TURNS * 2)
    assert last is not None and len(last.turns) == 5 and last.next_from is None
    assert last.more_fragment is None and last.side_calls == []
    past = build_page(thread, "c/1", start=10_000)
    assert past is not None and past.turns == [] and past.next_from is None


def _count(turns: list[TurnView]) -> int:
    """Turns rendered, at every level."""
    total = len(turns)
    for turn in turns:
        subs = list(turn.subagents) + [s for b in turn.blocks if b.tool for s in b.tool.subagents]
        total += sum(_count(s.turns) for s in subs)
    return total


def test_nested_subagents_share_one_budget_per_page() -> None:
    turns = []
    for n in range(PAGE_TURNS):
        call = {"type": "tool_use", "id": f"task{n}", "name": "Task", "input": {"prompt": "p"}}
        turn = message("assistant", [call], f"r{n}")
        sub_turns = [message("user", [text(f"sub {n}.{k}")]) for k in range(SUBAGENT_TURNS * 2)]
        turn["subagents"] = [agent(f"a{n}", sub_turns, f"task{n}")]
        turns.append(turn)
    page = build_page({"turns": turns}, "c")
    assert page is not None
    assert _count(page.turns) <= MAX_RENDERED
    assert len(page.turns) < PAGE_TURNS and page.next_from == len(page.turns)
    subs = [s for t in tools(page) for s in t.subagents]
    assert len(subs) == len(page.turns)  # every shown call shows its subagent's header
    assert len(subs[0].turns) == SUBAGENT_TURNS
    assert (
        subs[0].more_fragment == f"/dashboard/conversations/c/turns?agent=a0&from={SUBAGENT_TURNS}"
    )
    # The rest of a subagent's thread is its own page.
    rest = build_page({"turns": turns}, "c", agent="a0", start=SUBAGENT_TURNS)
    assert rest is not None and rest.next_from is None
    assert rest.turns[0].anchor == f"agent-a0-{SUBAGENT_TURNS}"
    # A page always shows its first turn, so paging moves on whatever the budget.
    tight = build_page({"turns": turns}, "c", budget=0)
    assert tight is not None and len(tight.turns) == 1 and tight.next_from == 1
    assert [s.turns for t in tools(tight) for s in t.subagents] == [[]]


def test_blocks_per_turn_are_bounded() -> None:
    turn = message("assistant", [text(f"b{n}") for n in range(MAX_BLOCKS + 9)])
    page = build_page({"turns": [turn]}, "c")
    assert page is not None
    assert len(page.turns[0].blocks) == MAX_BLOCKS and page.turns[0].more_blocks == 9


def test_unplaced_subagents_are_listed_on_the_first_page() -> None:
    thread = _long(3)
    thread["subagents"] = [agent("lost", [message("user", [text("hi")])], None)]
    first = build_page(thread, "c")
    later = build_page(thread, "c", start=1)
    assert first is not None and [s.agent_id for s in first.unplaced] == ["lost"]
    assert later is not None and later.unplaced == []
