"""The subagent tree of a rebuilt thread: nesting by parent agent id at any depth,
loops cut, and each subagent's own and subtree totals (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conversations.subagents import MAX_NESTING
from conversations.thread import rebuild, totals
from tests.conversations.helpers import documents_of
from tests.conversations.thread_helpers import doc, reply, text, u
from tests.fixtures.conversations import exchanges


def _spawn(tool_id: str, prompt: str, output: int = 5) -> dict[str, Any]:
    call = {"type": "tool_use", "id": tool_id, "name": "Agent", "input": {"prompt": prompt}}
    return reply(call, stop="tool_use", usage={"input_tokens": 10, "output_tokens": output})


def _agent(agent: str, parent: str | None = None) -> list[list[str]]:
    out = [["x-claude-code-agent-id", agent]]
    if parent:
        out.append(["x-claude-code-parent-agent-id", parent])
    return out


def _chain() -> list[dict[str, Any]]:
    """main → a1 → b2 → c3, each spawning the next; then b2 goes on with c3's result."""
    b2_spawn = _spawn("toolu_3", "Deepest", 4)
    return [
        doc([u("fix it")], _spawn("toolu_1", "Find the bug", 1), 0),
        doc([u("Find the bug")], _spawn("toolu_2", "Look deeper", 2), 1, headers=_agent("a1")),
        doc([u("Look deeper")], b2_spawn, 2, headers=_agent("b2", "a1")),
        doc(
            [u("Deepest")],
            reply(text("found"), usage={"input_tokens": 10, "output_tokens": 8}),
            3,
            headers=_agent("c3", "b2"),
        ),
        doc(
            [u("Look deeper"), {"role": "assistant", "content": b2_spawn["content"]}, u("found")],
            reply(text("again"), usage={"input_tokens": 10, "output_tokens": 16}),
            4,
            headers=_agent("b2", "a1"),
        ),
    ]


def test_subagents_of_subagents_nest_under_their_spawning_calls() -> None:
    thread, _ = rebuild(_chain())
    (a1,) = thread["turns"][1]["subagents"]
    (b2,) = a1["turns"][1]["subagents"]
    (c3,) = b2["turns"][1]["subagents"]
    assert [(v["agentId"], v["toolUseId"]) for v in (a1, b2, c3)] == [
        ("a1", "toolu_1"),
        ("b2", "toolu_2"),
        ("c3", "toolu_3"),
    ]
    assert thread["subagents"] == []


def test_each_subagent_totals_itself_and_its_subtree() -> None:
    docs = _chain()
    thread, _ = rebuild(docs)
    (a1,) = thread["turns"][1]["subagents"]
    (b2,) = a1["turns"][1]["subagents"]
    (c3,) = b2["turns"][1]["subagents"]
    assert (b2["requestCount"], b2["totals"]["requestCount"]) == (2, 2)
    assert [v["totals"]["outputTokens"] for v in (a1, b2, c3)] == [2, 4 + 16, 8]
    assert [v["subtreeTotals"]["outputTokens"] for v in (a1, b2, c3)] == [2 + 20 + 8, 20 + 8, 8]
    assert a1["subtreeTotals"]["requestCount"] == 4
    cost = sum(d["cost"]["usd"] for d in docs[1:])
    assert a1["subtreeTotals"]["cost"] == pytest.approx(cost) and cost > 0
    # The conversation counts every level.
    whole = totals(docs)
    assert whole["outputTokens"] == 1 + 30 and whole["subagentRequests"] == 4


def test_a_known_parent_without_a_spawning_call_keeps_its_child() -> None:
    docs = [
        doc([u("fix it")], _spawn("toolu_1", "Find the bug"), 0),
        doc([u("Find the bug")], reply(text("no spawn here")), 1, headers=_agent("a1")),
        doc([u("Side quest")], reply(text("done")), 2, headers=_agent("b2", "a1")),
        doc([u("Orphan")], reply(text("lost")), 3, headers=_agent("z9", "not-logged")),
    ]
    thread, _ = rebuild(docs)
    (a1,) = thread["turns"][1]["subagents"]
    assert [v["agentId"] for v in a1["subagents"]] == ["b2"]
    # A parent the log does not hold: shown at the top level.
    assert [v["agentId"] for v in thread["subagents"]] == ["z9"]


@pytest.mark.parametrize(
    "parents",
    [
        {"x1": "y1", "y1": "x1"},  # two naming each other
        {"x1": "x1", "y1": "x1"},  # one naming itself
        {"x1": "y1", "y1": "z1", "z1": "y1"},  # a loop above a subagent
    ],
)
def test_a_loop_of_parents_is_cut(parents: dict[str, str]) -> None:
    docs = [
        doc([u(f"task {agent}")], reply(text(agent)), i, headers=_agent(agent, parent))
        for i, (agent, parent) in enumerate(parents.items())
    ]
    thread, _ = rebuild(docs)
    json.dumps(thread, default=str)  # a tree: serialisable, no reference cycle

    def agents(views: list[dict[str, Any]]) -> list[str]:
        return [v["agentId"] for v in views] + [
            a for v in views for a in agents(v.get("subagents") or [])
        ]

    assert sorted(agents(thread["subagents"])) == sorted(parents)


def test_the_2_1_sessions_nested_subagent() -> None:
    docs = [d for d in documents_of(exchanges("claude_code_21")) if d["conversation"]]
    thread, missing = rebuild(docs)
    assert missing == set()
    spawner = next(t for t in thread["turns"] if t.get("subagents"))
    (a1,) = spawner["subagents"]
    nested_at = next(t for t in a1["turns"] if t.get("subagents"))
    (b2,) = nested_at["subagents"]
    assert (a1["agentId"], b2["agentId"], b2["parentAgentId"]) == (
        "agent-a1",
        "agent-b2",
        "agent-a1",
    )
    outputs = {d["conversation"]["agentId"]: 0 for d in docs}
    for d in docs:
        outputs[d["conversation"]["agentId"]] += d["usage"]["output_tokens"]
    assert b2["subtreeTotals"]["outputTokens"] == outputs["agent-b2"]
    assert a1["subtreeTotals"]["outputTokens"] == outputs["agent-a1"] + outputs["agent-b2"]


def test_nesting_stops_at_max_nesting_and_totals_still_count_every_level() -> None:
    count = MAX_NESTING + 5
    docs = [doc([u("start")], _spawn("toolu_0", "agent 0"), 0)]
    for level in range(count):
        parent = f"g{level - 1}" if level else None
        docs.append(
            doc(
                [u(f"agent {level}")],
                _spawn(f"toolu_{level + 1}", f"agent {level + 1}"),
                level + 1,
                headers=_agent(f"g{level}", parent),
            )
        )
    thread, _ = rebuild(docs)
    depth, view = 0, thread["turns"][1]["subagents"][0]
    while view["turns"][1].get("subagents"):
        depth, view = depth + 1, view["turns"][1]["subagents"][0]
    assert depth == MAX_NESTING - 1  # g0 … g15 nested
    top = [v["agentId"] for v in thread["subagents"]]
    assert top == [f"g{level}" for level in range(MAX_NESTING, count)]
    assert thread["subagents"][0]["parentAgentId"] == f"g{MAX_NESTING - 1}"
    g0 = thread["turns"][1]["subagents"][0]
    assert g0["subtreeTotals"]["requestCount"] == count
    json.dumps(thread, default=str)
