"""A conversation's thread (the `/api/conversations/{id}` JSON) as pages of turns
for the thread view (pure).

A thread is shown a page at a time: `PAGE_TURNS` turns from a position, and a
link (a fragment for the page's script, a whole page without it) to the next.
A user turn holding only results of calls shown elsewhere in the thread is not
a turn of its own: each result is shown with its call. Subagents are nested
under the call that started them, each with its first `SUBAGENT_TURNS` turns
and a link to the rest; subagents of subagents nest the same way. One page
renders at most `MAX_RENDERED` turns over all levels (a subagent past the
budget shows its header and a link), and at most `MAX_BLOCKS` blocks of a
turn, so the work per page is bounded however long the conversation.

The thread given is one window of a long conversation (dashboard.thread_window):
`Place` says which, what the window before already showed (the results its
first request carries) and the results just after it (they answer its last
calls); the last page of a window links to the next window.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from dashboard.thread_blocks import Results, block_views, request_href
from dashboard.thread_models import (
    Facts,
    Fallback,
    SideCall,
    SubagentView,
    ThreadPage,
    Totals,
    TurnView,
)

PAGE_TURNS = 40
SUBAGENT_TURNS = 20
MAX_RENDERED = 150
MAX_BLOCKS = 100
MAX_SIDE_CALLS = 50
_SAFE_ANCHOR = re.compile(r"[A-Za-z0-9_-]{1,64}")

Json = dict[str, Any]


class Budget:
    """Turns a page may still render, over every level of nesting."""

    def __init__(self, turns: int = MAX_RENDERED) -> None:
        self.left = turns

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


@dataclass(slots=True)
class Prepared:
    """One thread's turns as shown, and its results by the call they answer."""

    turns: list[Json]
    results: Results
    calls: set[str]


def prepare(
    turns: list[Json], carried: frozenset[str] = frozenset(), extra: Results | None = None
) -> Prepared:
    """`carried`: results shown with their calls on the page before (this page's
    first turns answer them); `extra`: results after this page (they answer its
    last calls)."""
    calls: set[str] = set()
    results: Results = {}
    for turn in turns:
        for block in _content(turn):
            if block.get("type") in ("tool_use", "server_tool_use"):
                calls.add(str(block.get("id") or ""))
            elif block.get("type") == "tool_result":
                found = (block, turn.get("requestId"))
                results.setdefault(str(block.get("tool_use_id") or ""), found)
    for key, value in (extra or {}).items():
        results.setdefault(key, value)
    paired = {key: value for key, value in results.items() if key in calls}
    answered = calls | carried
    shown = [t for t in turns if not _only_paired_results(t, answered)]
    return Prepared(shown, paired, answered)


def _content(turn: Json) -> list[Json]:
    content = turn.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _only_paired_results(turn: Json, calls: set[str]) -> bool:
    if turn.get("type") != "message" or turn.get("role") != "user":
        return False
    blocks = _content(turn)
    return bool(blocks) and all(
        b.get("type") == "tool_result" and str(b.get("tool_use_id") or "") in calls for b in blocks
    )


# ---- addresses ---------------------------------------------------------------------------
def anchor_of(agent: str) -> str:
    if _SAFE_ANCHOR.fullmatch(agent):
        return f"agent-{agent}"
    return "agent-" + hashlib.sha256(agent.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _query(agent: str | None, start: int, at: str | None) -> str:
    params: dict[str, str | int] = {}
    if at is not None:
        params["at"] = at
    if agent is not None:
        params["agent"] = agent
    if start:
        params["from"] = start
    return urlencode(params)


def fragment_url(conversation_id: str, agent: str | None, start: int, at: str | None = None) -> str:
    base = f"/dashboard/conversations/{quote(conversation_id, safe='')}/turns"
    query = _query(agent, start, at)
    return f"{base}?{query}" if query else base


def page_url(conversation_id: str, agent: str | None, start: int, at: str | None = None) -> str:
    base = f"/dashboard/conversations/{quote(conversation_id, safe='')}"
    query = _query(agent, start, at)
    return f"{base}?{query}" if query else base


# ---- values ---------------------------------------------------------------------------------
def when(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None  # type: ignore[arg-type]


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def totals_of(data: object) -> Totals:
    d = data if isinstance(data, dict) else {}
    return Totals(
        requests=_int(d.get("requestCount")) or 0,
        tokens=_int(d.get("totalTokens")) or 0,
        input=_int(d.get("inputTokens")) or 0,
        output=_int(d.get("outputTokens")) or 0,
        cache_write=_int(d.get("cacheCreationTokens")) or 0,
        cache_read=_int(d.get("cacheReadTokens")) or 0,
        cost=_number(d.get("cost")) or 0.0,
        unpriced=_int(d.get("unpricedRequests")) or 0,
        errors=_int(d.get("errorCount")) or 0,
    )


def facts_of(turn: Json) -> Facts:
    usage = turn.get("usage") if isinstance(turn.get("usage"), dict) else {}
    return Facts(
        model=_str(turn.get("model")),
        served_model=_str(turn.get("servedModel")),
        status=_int(turn.get("statusCode")),
        stop_reason=_str(turn.get("stopReason")),
        tokens=_int(turn.get("tokens")) or 0,
        input=_int(usage.get("input_tokens")),
        output=_int(usage.get("output_tokens")),
        cache_write=_int(usage.get("cache_creation_input_tokens")),
        cache_read=_int(usage.get("cache_read_input_tokens")),
        cost=_number(turn.get("cost")),
        response_time=_number(turn.get("responseTime")),
        ttfb=_number(turn.get("timeToFirstByte")),
        thinking_tokens=_int(turn.get("thinkingTokens")),
    )


def error_text(error: object) -> str | None:
    if not isinstance(error, dict):
        return _str(error)
    kind, message = _str(error.get("type")), _str(error.get("message"))
    return ": ".join(p for p in (kind, message) if p) or "error"


def _fallback(item: object) -> Fallback:
    d = item if isinstance(item, dict) else {}
    trigger = d.get("trigger") if isinstance(d.get("trigger"), dict) else {}
    reason = " ".join(p for p in (_str(trigger.get("type")), _str(trigger.get("category"))) if p)
    return Fallback(_str(d.get("from")), _str(d.get("to")), reason or None)


# ---- turns ------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Context:
    conversation_id: str
    budget: Budget
    at: str | None = None  # the window the page shows (None: the first)


def _turn(turn: Json, thread: Prepared, anchor: str, ctx: _Context) -> TurnView:
    kind = str(turn.get("type") or "message")
    role = turn.get("role")
    if kind == "message":
        kind = "assistant" if role == "assistant" else "user"
    view = TurnView(
        kind=kind,
        anchor=anchor,
        time=when(turn.get("timestamp")),
        request_id=_str(turn.get("requestId")),
        request_href=request_href(turn.get("requestId")),
        source=_str(turn.get("source")) if kind == "compaction" else None,
        count=_int(turn.get("count")) or 0,
    )
    blocks = _content(turn)
    shown = blocks[:MAX_BLOCKS]
    view.more_blocks = len(blocks) - len(shown)
    view.blocks = block_views(shown, str(role or ""), thread.results, thread.calls, view.request_id)
    if kind in ("assistant", "error"):
        view.facts = facts_of(turn)
        view.error = error_text(turn.get("error"))
        view.fallbacks = [_fallback(f) for f in turn.get("fallbacks") or []]
    tools = {b.tool.id: b.tool for b in view.blocks if b.tool is not None}
    for data in turn.get("subagents") or []:
        sub = subagent_view(data, ctx)
        spawned_by = tools.get(str(data.get("toolUseId") or ""))
        (spawned_by.subagents if spawned_by is not None else view.subagents).append(sub)
    return view


def _turns(thread: Prepared, start: int, size: int, prefix: str, ctx: _Context) -> list[TurnView]:
    out = []
    for position in range(start, min(start + size, len(thread.turns))):
        # A page always shows its first turn, so paging moves on.
        if not ctx.budget.take() and out:
            break
        out.append(_turn(thread.turns[position], thread, f"{prefix}{position}", ctx))
    return out


def subagent_view(data: Json, ctx: _Context) -> SubagentView:
    agent = str(data.get("agentId") or "")
    anchor = anchor_of(agent)
    view = SubagentView(
        agent_id=agent,
        anchor=anchor,
        parent_agent_id=_str(data.get("parentAgentId")),
        prompt=_str(data.get("prompt")),
        start=when(data.get("startTime")),
        last=when(data.get("lastActivity")),
        totals=totals_of(data.get("totals")),
        subtree=totals_of(data.get("subtreeTotals") or data.get("totals")),
        own_page=page_url(ctx.conversation_id, agent, 0, ctx.at),
    )
    thread = prepare(data.get("turns") or [])
    view.total_turns = len(thread.turns)
    if ctx.budget.left > 0:
        view.turns = _turns(thread, 0, SUBAGENT_TURNS, f"{anchor}-", ctx)
    if len(view.turns) < view.total_turns:
        view.more_fragment = fragment_url(ctx.conversation_id, agent, len(view.turns), ctx.at)
        view.more_page = page_url(ctx.conversation_id, agent, len(view.turns), ctx.at)
    view.subagents = [subagent_view(s, ctx) for s in data.get("subagents") or []]
    return view


def find_agent(thread: Json, agent: str) -> Json | None:
    """The subagent `agent` anywhere in the tree (each node visited once)."""
    stack: list[Json] = list(thread.get("subagents") or [])
    stack += [s for t in thread.get("turns") or [] for s in t.get("subagents") or []]
    while stack:
        node = stack.pop()
        if node.get("agentId") == agent:
            return node
        stack += node.get("subagents") or []
        stack += [s for t in node.get("turns") or [] for s in t.get("subagents") or []]
    return None


def side_calls(thread: Json) -> list[SideCall]:
    out = []
    for call in (thread.get("auxiliary") or [])[:MAX_SIDE_CALLS]:
        out.append(
            SideCall(
                request_href=request_href(call.get("requestId")) or "",
                time=when(call.get("timestamp")),
                prompt=_str(call.get("prompt")),
                reply=_str(call.get("reply")),
                model=_str(call.get("model")),
                tokens=_int(call.get("tokens")) or 0,
                cost=_number(call.get("cost")),
                error=error_text(call.get("error")),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Place:
    """Which part of a long conversation a page shows (dashboard.thread_window)."""

    at: str | None = None  # the window's cursor (None: the first window)
    next_at: str | None = None  # the next window's, if any
    carried: frozenset[str] = frozenset()  # results answered on the page before
    extra: Results | None = None  # results just after the window


def build_page(
    thread: Json,
    conversation_id: str,
    *,
    agent: str | None = None,
    start: int = 0,
    size: int = PAGE_TURNS,
    budget: int = MAX_RENDERED,
    place: Place | None = None,
) -> ThreadPage | None:
    """One page of the main thread, or of subagent `agent` (None: no such agent),
    of one window of the conversation (the whole of it when it fits one)."""
    place = place or Place()
    ctx = _Context(conversation_id, Budget(budget), place.at)
    header: SubagentView | None = None
    if agent is None:
        turns_json = list(thread.get("turns") or [])
        if place.at is not None and turns_json and turns_json[0].get("type") == "gap":
            turns_json = turns_json[1:]  # what came before this window: earlier pages
        prepared = prepare(turns_json, place.carried, place.extra)
        prefix = "turn-" if place.at is None else f"turn-{_anchor_key(place.at)}-"
        unplaced_source = thread.get("subagents") or []
    else:
        found = find_agent(thread, agent)
        if found is None:
            return None
        prepared = prepare(found.get("turns") or [])
        unplaced_source = found.get("subagents") or []
        # The header only: its turns are this page's.
        header = subagent_view({**found, "turns": [], "subagents": []}, ctx)
        prefix = f"{header.anchor}-"
    turns = _turns(prepared, start, size, prefix, ctx)
    end = start + len(turns)
    more_here = end < len(prepared.turns)
    first_main = agent is None and start == 0
    unplaced = [subagent_view(s, ctx) for s in unplaced_source] if start == 0 else []
    if more_here:
        more = (
            fragment_url(conversation_id, agent, end, place.at),
            page_url(conversation_id, agent, end, place.at),
        )
    elif agent is None and place.next_at is not None:
        more = (
            fragment_url(conversation_id, None, 0, place.next_at),
            page_url(conversation_id, None, 0, place.next_at),
        )
    else:
        more = (None, None)
    return ThreadPage(
        turns=turns,
        start=start,
        total=len(prepared.turns),
        next_from=end if more_here else None,
        more_fragment=more[0],
        more_page=more[1],
        agent=header,
        unplaced=unplaced,
        side_calls=side_calls(thread) if first_main else [],
        side_call_count=len(thread.get("auxiliary") or []) if first_main else 0,
    )


def _anchor_key(at: str) -> str:
    """A window's short name in its turns' anchors (its first request's id)."""
    rid = at.rsplit("_", 1)[-1]
    return anchor_of(rid or at).removeprefix("agent-")[:12]
