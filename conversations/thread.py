"""A conversation's thread rebuilt from its logged requests (pure).

Each request stores only what it added (`conversations.fields`): the
messages after the last assistant message it sent, at their positions in the
history, and the reply at the next position. Replaying the requests in order
rebuilds every history ("segment": requests sharing the same first message)
without duplicates:

- a message already held at its position is kept (a retry, or Claude Code
  resending it with the cache marker moved, changes nothing);
- a different message at a held position means the client rewrote history from
  there (a rewind or an edited prompt): the newer version wins from that position on;
- a reply fills its position; failed attempts stay as error turns before it;
- a request that starts past the end of what is held (the log missed requests, or
  a client sent a ready-made history) leaves a gap, reported in `missing` so the
  caller can load that one request's body and rebuild with `fills`.

A new segment (compaction rewrote the start) follows the previous one after a
boundary turn. Subagent threads are rebuilt the same way and nested under the
assistant turn whose tool call spawned them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conversations.fields import CONTINUATION, project_name
from conversations.text import fingerprint, one_line, plain_text

Doc = dict[str, Any]
SPAWN_TOOLS = ("Task", "Agent")


@dataclass
class _Slot:
    turn: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Segment:
    first: datetime
    first_request: str
    slots: list[_Slot] = field(default_factory=list)


class _History:
    """One agent's histories (the main thread's, or one subagent's)."""

    def __init__(self) -> None:
        self.segments: dict[str, _Segment] = {}
        self.requests = 0
        self.started: datetime | None = None
        self.last: datetime | None = None

    def add(self, doc: Doc, fills: dict[str, list[dict[str, Any]]], missing: set[str]) -> None:
        conv = doc["conversation"]
        self.requests += 1
        self.started = self.started or doc["timestamp"]
        self.last = doc["timestamp"]
        seg = self.segments.setdefault(
            conv["segment"], _Segment(doc["timestamp"], doc["requestId"])
        )
        slots = seg.slots
        start, tail = conv["start"], conv["turns"]
        if start > len(slots):
            history = fills.get(doc["requestId"])
            if history is not None and len(history) >= start:
                for p in range(len(slots), start):
                    slots.append(_Slot(_message(history[p], doc, p, "history")))
            else:
                missing.add(doc["requestId"])
                slots.extend(_Slot() for _ in range(len(slots), start))
        for offset, message in enumerate(tail):
            position = start + offset
            if position < len(slots):
                held = slots[position].turn
                if held is None:
                    slots[position].turn = _message(message, doc, position, "request")
                    continue
                if _same(held, message):
                    continue
                del slots[position:]  # history rewritten from here: the newer one wins
            slots.append(_Slot(_message(message, doc, position, "request")))
        answer_at = start + len(tail)
        del slots[answer_at + 1 :]  # a retry or a rewind asks for this position again
        if len(slots) == answer_at:
            slots.append(_Slot())
        slot = slots[answer_at]
        if conv.get("reply"):
            slot.turn = _reply(conv["reply"], doc, answer_at)
        elif conv.get("error"):
            slot.errors.append(_error_turn(doc, conv["error"]))

    def turns(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        ordered = sorted(self.segments.values(), key=lambda s: (s.first, s.first_request))
        for number, seg in enumerate(ordered):
            if number:
                out.append({**_boundary(seg), "segment": number})
            gap: dict[str, Any] | None = None
            for position, slot in enumerate(seg.slots):
                for error in slot.errors:
                    out.append({**error, "segment": number, "index": position})
                if slot.turn is None:
                    if not slot.errors:
                        if gap is None:
                            gap = {"type": "gap", "segment": number, "index": position, "count": 0}
                            out.append(gap)
                        gap["count"] += 1
                    continue
                gap = None
                out.append({**slot.turn, "segment": number})
        return out


def rebuild(
    docs: list[Doc], fills: dict[str, list[dict[str, Any]]] | None = None
) -> tuple[dict[str, Any], set[str]]:
    """The thread of one conversation, and the ids of requests whose body would
    fill a gap (empty when nothing is missing or `fills` already covered it)."""
    fills = fills or {}
    missing: set[str] = set()
    main = _History()
    agents: dict[str, _History] = {}
    parents: dict[str, str | None] = {}
    auxiliary: list[dict[str, Any]] = []
    for doc in sorted(docs, key=order_key):
        conv = doc["conversation"]
        if conv["thread"] == "auxiliary":
            auxiliary.append(_auxiliary(doc))
        elif conv["thread"] == "subagent" and conv.get("agentId"):
            agents.setdefault(conv["agentId"], _History()).add(doc, fills, missing)
            parents.setdefault(conv["agentId"], conv.get("parentAgentId"))
        else:
            main.add(doc, fills, missing)
    turns = main.turns()
    views = {agent: _agent_view(agent, parents[agent], h) for agent, h in agents.items()}
    orphans = _nest(turns, views)
    return {"turns": turns, "subagents": orphans, "auxiliary": auxiliary}, missing


def order_key(doc: Doc) -> tuple[Any, ...]:
    # Log timestamps have millisecond precision; within one history the message
    # count only grows, which orders two requests started in the same millisecond.
    return (doc["timestamp"], doc.get("messageCount") or 0, doc["requestId"])


def summary(docs: list[Doc]) -> dict[str, Any]:
    """The list view's fields of one conversation, from its requests (the same
    rules as `conversations.queries`): the first prompt and the latest model
    of the main thread (of any request when there is none), the project path
    stated (the greatest, should a session state several)."""
    ordered = sorted(docs, key=order_key)
    main = [d for d in ordered if d["conversation"]["thread"] == "main"] or ordered
    paths = [
        d["conversation"]["projectPath"] for d in ordered if d["conversation"].get("projectPath")
    ]
    project = max(paths) if paths else None
    start, end = ordered[0]["timestamp"], max(_end(d) for d in ordered)
    out = {
        "id": ordered[0]["conversation"]["id"],
        "requestCount": len(ordered),
        "startTime": start,
        "lastActivity": end,
        "duration": duration_ms(start, end),
        "firstMessage": main[0]["conversation"].get("prompt"),
        "projectPath": project,
        "projectName": project_name(project),
        "model": main[-1].get("model"),
    }
    out.update(totals(ordered))
    return out


def totals(docs: list[Doc]) -> dict[str, Any]:
    def tokens(doc: Doc, key: str) -> int:
        usage = doc.get("usage") or {}
        value = usage.get(key)
        return value if isinstance(value, int) else 0

    return {
        "inputTokens": sum(tokens(d, "input_tokens") for d in docs),
        "outputTokens": sum(tokens(d, "output_tokens") for d in docs),
        "cacheCreationTokens": sum(tokens(d, "cache_creation_input_tokens") for d in docs),
        "cacheReadTokens": sum(tokens(d, "cache_read_input_tokens") for d in docs),
        "totalTokens": sum(d.get("tokens") or 0 for d in docs),
        "cost": round(sum(_cost(d) or 0.0 for d in docs), 10),
        "unpricedRequests": sum(1 for d in docs if d.get("unpriced")),
        "errorCount": sum(1 for d in docs if (d["conversation"] or {}).get("error")),
        "subagentRequests": sum(1 for d in docs if d["conversation"]["thread"] == "subagent"),
    }


def duration_ms(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


# ---- turns --------------------------------------------------------------------------------
def _message(message: dict[str, Any], doc: Doc, index: int, source: str) -> dict[str, Any]:
    return {
        "type": "message",
        "index": index,
        "role": message.get("role"),
        "content": message.get("content") or [],
        "requestId": doc["requestId"],
        "timestamp": doc["timestamp"],
        "source": source,
    }


def _reply(reply: dict[str, Any], doc: Doc, index: int) -> dict[str, Any]:
    turn = _message(reply, doc, index, "response")
    turn.update(_request_facts(doc))
    error = doc["conversation"].get("error")
    if error:  # a reply cut short (client closed, or an error mid-stream)
        turn["error"] = error
    return turn


def _error_turn(doc: Doc, error: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "error",
        "error": error,
        "requestId": doc["requestId"],
        "timestamp": doc["timestamp"],
        **_request_facts(doc),
    }


def _request_facts(doc: Doc) -> dict[str, Any]:
    return {
        "model": doc.get("model"),
        "statusCode": doc.get("statusCode"),
        "stopReason": doc.get("stopReason"),
        "usage": doc.get("usage"),
        "tokens": doc.get("tokens") or 0,
        "cost": _cost(doc),
        "responseTime": doc.get("responseTime"),
        "timeToFirstByte": doc.get("timeToFirstByte"),
    }


def _boundary(seg: _Segment) -> dict[str, Any]:
    first = seg.slots[0].turn if seg.slots else None
    text = plain_text(first["content"]) if first else ""
    return {
        "type": "compaction" if text.startswith(CONTINUATION) else "new_history",
        "requestId": seg.first_request,
        "timestamp": seg.first,
    }


def _auxiliary(doc: Doc) -> dict[str, Any]:
    conv = doc["conversation"]
    reply = plain_text(conv["reply"]["content"]) if conv.get("reply") else ""
    return {
        "requestId": doc["requestId"],
        "timestamp": doc["timestamp"],
        "prompt": conv.get("prompt"),
        "reply": one_line(reply, 300) if reply else None,
        "error": conv.get("error"),
        **_request_facts(doc),
    }


def _same(turn: dict[str, Any], message: dict[str, Any]) -> bool:
    return fingerprint([turn.get("role"), turn.get("content")]) == fingerprint(
        [message.get("role"), message.get("content")]
    )


def _cost(doc: Doc) -> float | None:
    cost = doc.get("cost")
    value = cost.get("usd") if isinstance(cost, dict) else None
    return value if isinstance(value, int | float) else None


def _end(doc: Doc) -> datetime:
    completed = (doc.get("response") or {}).get("completedAt")
    return completed if isinstance(completed, datetime) else doc["timestamp"]


# ---- subagents ----------------------------------------------------------------------------
def _agent_view(agent: str, parent: str | None, history: _History) -> dict[str, Any]:
    turns = history.turns()
    first_user = next((t for t in turns if t.get("role") == "user"), None)
    return {
        "agentId": agent,
        "parentAgentId": parent,
        "requestCount": history.requests,
        "startTime": history.started,
        "lastActivity": history.last,
        "prompt": one_line(plain_text(first_user["content"]), 300) if first_user else None,
        "toolUseId": None,
        "turns": turns,
    }


def _nest(
    main_turns: list[dict[str, Any]], views: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Hang each subagent under the assistant turn whose Task/Agent call spawned it:
    the call whose `prompt` is the subagent's first message, else the latest unused
    spawning call before it started. Returns the subagents no call could be found for."""
    used: set[str] = set()
    orphans: list[dict[str, Any]] = []
    for view in sorted(views.values(), key=lambda v: (v["startTime"], v["agentId"])):
        parent = views.get(view["parentAgentId"] or "")
        turns = parent["turns"] if parent is not None else main_turns
        spawn = _spawner(turns, view, used)
        if spawn is None:
            orphans.append(view)
            continue
        turn, tool_use_id = spawn
        used.add(tool_use_id)
        view["toolUseId"] = tool_use_id
        turn.setdefault("subagents", []).append(view)
    return orphans


def _spawner(
    turns: list[dict[str, Any]], view: dict[str, Any], used: set[str]
) -> tuple[dict[str, Any], str] | None:
    prompt = " ".join((view["prompt"] or "").rstrip("…").split())
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for turn in _all_turns(turns):
        if turn.get("role") != "assistant" or turn["timestamp"] > view["startTime"]:
            continue
        for block in turn["content"]:
            if block.get("type") == "tool_use" and str(block.get("id")) not in used:
                given = (
                    (block.get("input") or {}).get("prompt")
                    if isinstance(block.get("input"), dict)
                    else None
                )
                if isinstance(given, str):
                    calls.append((turn, block))
    for turn, block in reversed(calls):
        given = " ".join(block["input"]["prompt"].split())
        if given and prompt and (given.startswith(prompt) or prompt.startswith(given[:290])):
            return turn, str(block.get("id"))
    for turn, block in reversed(calls):
        if block.get("name") in SPAWN_TOOLS:
            return turn, str(block.get("id"))
    return None


def _all_turns(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in turns if t.get("type") == "message"]
