"""The subagent tree of a rebuilt conversation (pure).

Claude Code names each subagent's requests with `X-Claude-Code-Agent-Id` and, for
a subagent started by another subagent, the starting one with
`X-Claude-Code-Parent-Agent-Id`. Each subagent's thread hangs under the assistant
turn whose Task/Agent call spawned it, in its parent's thread (the main thread when
it has no parent, or the parent is not in the log); subagents of subagents nest
the same way, `MAX_NESTING` deep (deeper ones are listed at the top, their parent
still named). A parent chain that loops (a client's mistake) is cut where it
closes, so the tree stays a tree.

Each subagent carries `totals` (its own requests) and `subtreeTotals` (its own
and those of every subagent below it): tokens and cost, like the conversation's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from conversations.text import one_line, plain_text
from conversations.turns import usage_totals

Doc = dict[str, Any]
SPAWN_TOOLS = ("Task", "Agent")
# Levels of subagents nested in one another in the thread JSON; deeper ones are
# listed at the top (each level is four levels of JSON, and serialisers have limits).
MAX_NESTING = 16
_TOTALS = (
    "requestCount",
    "inputTokens",
    "outputTokens",
    "cacheCreationTokens",
    "cacheReadTokens",
    "totalTokens",
    "cost",
    "unpricedRequests",
    "errorCount",
)


def agent_view(
    agent: str,
    parent: str | None,
    turns: list[dict[str, Any]],
    docs: list[Doc],
    started: datetime | None,
    last: datetime | None,
) -> dict[str, Any]:
    said = (t for t in turns if t.get("type") == "message" and t["role"] == "user")
    first_user = next(said, None)
    return {
        "agentId": agent,
        "parentAgentId": parent,
        "requestCount": len(docs),
        "startTime": started,
        "lastActivity": last,
        "prompt": one_line(plain_text(first_user["content"]), 300) if first_user else None,
        "toolUseId": None,
        "turns": turns,
        "totals": usage_totals(docs),
        "subtreeTotals": None,
    }


def nest(
    main_turns: list[dict[str, Any]], views: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Hang each subagent under the assistant turn whose Task/Agent call spawned it:
    the call whose `prompt` is the subagent's first message, else the latest unused
    spawning call before it started. A subagent whose parent is known but shows no
    such call is listed under the parent's own `subagents`; the ones with no parent
    and no call are returned (shown at the top)."""
    parents = _parents(views)
    depth = _depths(parents)
    used: set[str] = set()
    orphans: list[dict[str, Any]] = []
    for view in sorted(views.values(), key=lambda v: (v["startTime"], v["agentId"])):
        agent = view["agentId"]
        if depth[agent] >= MAX_NESTING:  # listed at the top, its parent still named
            orphans.append(view)
            continue
        parent = views.get(parents[agent] or "")
        turns = parent["turns"] if parent is not None else main_turns
        spawn = _spawner(turns, view, used)
        if spawn is not None:
            turn, tool_use_id = spawn
            used.add(tool_use_id)
            view["toolUseId"] = tool_use_id
            turn.setdefault("subagents", []).append(view)
        elif parent is not None:
            parent.setdefault("subagents", []).append(view)
        else:
            orphans.append(view)
    _subtree_totals(views, parents, depth)
    return orphans


def _parents(views: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """Each subagent's parent among the logged ones, None for the main thread; a
    subagent on a loop of parents (its chain comes back to it) gets none. Linear:
    each chain is walked once (a client may send thousands of nested agents)."""
    declared = {
        agent: (v["parentAgentId"] if v["parentAgentId"] in views else None)
        for agent, v in views.items()
    }
    out = dict(declared)
    state: dict[str, int] = {}  # 1: on the chain being walked, 2: done
    for agent in declared:
        path: list[str] = []
        step: str | None = agent
        while step is not None and step not in state:
            state[step] = 1
            path.append(step)
            step = declared[step]
        if step is not None and state[step] == 1:  # the walk closed a loop at `step`
            for name in path[path.index(step) :]:
                out[name] = None
        for name in path:
            state[name] = 2
    return out


def _depths(parents: dict[str, str | None]) -> dict[str, int]:
    """How many subagents stand above each one (0: started by the main thread);
    each chain walked once."""
    depth: dict[str, int] = {}
    for agent in parents:
        chain = [agent]
        while (up := parents[chain[-1]]) is not None and up not in depth:
            chain.append(up)
        base = depth[up] + 1 if up is not None else 0
        for offset, name in enumerate(reversed(chain)):
            depth[name] = base + offset
    return depth


def _subtree_totals(
    views: dict[str, dict[str, Any]], parents: dict[str, str | None], depth: dict[str, int]
) -> None:
    for view in views.values():
        view["subtreeTotals"] = {k: view["totals"][k] for k in _TOTALS}
    # Deepest first: each subagent's subtree is complete before its parent adds it.
    for agent in sorted(views, key=lambda a: -depth[a]):
        parent = parents[agent]
        if parent is not None:
            into, add = views[parent]["subtreeTotals"], views[agent]["subtreeTotals"]
            for key in _TOTALS:
                into[key] += add[key]
    for view in views.values():
        view["subtreeTotals"]["cost"] = round(view["subtreeTotals"]["cost"], 10)


def _spawner(
    turns: list[dict[str, Any]], view: dict[str, Any], used: set[str]
) -> tuple[dict[str, Any], str] | None:
    prompt = " ".join((view["prompt"] or "").rstrip("…").split())
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for turn in turns:
        if turn.get("type") != "message" or turn.get("role") != "assistant":
            continue
        if view["startTime"] is not None and turn["timestamp"] > view["startTime"]:
            continue
        for block in turn["content"]:
            if block.get("type") == "tool_use" and str(block.get("id")) not in used:
                given = block.get("input")
                if isinstance(given, dict) and isinstance(given.get("prompt"), str):
                    calls.append((turn, block))
    for turn, block in reversed(calls):
        given = " ".join(block["input"]["prompt"].split())
        if given and prompt and (given.startswith(prompt) or prompt.startswith(given[:290])):
            return turn, str(block.get("id"))
    for turn, block in reversed(calls):
        if block.get("name") in SPAWN_TOOLS:
            return turn, str(block.get("id"))
    return None
