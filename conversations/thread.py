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

Server-side compaction: the API returns a `compaction` block and ignores what
came before it on the next requests, so a client may drop that part and start the
history at the block. Such a history (`resumes` names the block) goes on at the
position where the block was returned, in the same segment: one history, with a
compaction marker where the block stands. A new segment (the start rewritten any
other way, e.g. Claude Code's own summary prompt) follows the previous one after a
boundary turn. Subagent threads are rebuilt the same way and nested under the
assistant turn whose tool call spawned them (`conversations.subagents`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conversations.fields import CONTINUATION, project_name
from conversations.subagents import agent_view, nest
from conversations.text import fingerprint, one_line, plain_text
from conversations.turns import (
    boundary_kind,
    compaction_marker,
    error_turn,
    has_compaction,
    message_turn,
    reply_turn,
    request_facts,
    usage_totals,
)

Doc = dict[str, Any]


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
        # A segment that starts at a compaction block, continuing another one:
        # its key → (the segment it continues, the block's position there).
        self.aliases: dict[str, tuple[_Segment, int]] = {}
        self.compactions: dict[str, tuple[_Segment, int]] = {}
        self.docs: list[Doc] = []
        self.started: datetime | None = None
        self.last: datetime | None = None

    def _place(self, doc: Doc) -> tuple[_Segment, int]:
        conv = doc["conversation"]
        key = conv["segment"]
        if key in self.aliases:
            return self.aliases[key]
        if key not in self.segments:
            found = self.compactions.get(conv.get("resumes") or "")
            if found is not None and found[1] < len(found[0].slots):
                self.aliases[key] = found
                return found
            self.segments[key] = _Segment(doc["timestamp"], doc["requestId"])
        return self.segments[key], 0

    def add(self, doc: Doc, fills: dict[str, list[dict[str, Any]]], missing: set[str]) -> None:
        conv = doc["conversation"]
        self.docs.append(doc)
        self.started = self.started or doc["timestamp"]
        self.last = doc["timestamp"]
        seg, offset = self._place(doc)
        slots = seg.slots
        start, tail = offset + conv["start"], conv["turns"]
        if start > len(slots):
            history = fills.get(doc["requestId"])
            if history is not None and len(history) >= start - offset:
                for p in range(len(slots), start):
                    slots.append(_Slot(message_turn(history[p - offset], doc, p, "history")))
            else:
                missing.add(doc["requestId"])
                slots.extend(_Slot() for _ in range(len(slots), start))
        for i, message in enumerate(tail):
            position = start + i
            if position < len(slots):
                held = slots[position].turn
                if held is None:
                    slots[position].turn = message_turn(message, doc, position, "request")
                    continue
                # The block a resumed history starts at is the reply held there,
                # resent as the client keeps it (maybe without what followed it).
                if _same(held, message) or (offset and position == offset and has_compaction(held)):
                    continue
                del slots[position:]  # history rewritten from here: the newer one wins
            slots.append(_Slot(message_turn(message, doc, position, "request")))
        answer_at = start + len(tail)
        del slots[answer_at + 1 :]  # a retry or a rewind asks for this position again
        if len(slots) == answer_at:
            slots.append(_Slot())
        slot = slots[answer_at]
        if conv.get("reply"):
            slot.turn = reply_turn(conv["reply"], doc, answer_at)
            for key in conv.get("compactions") or []:
                self.compactions[key] = (seg, answer_at)
        elif conv.get("error"):
            slot.errors.append(error_turn(doc, conv["error"]))

    def turns(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        ordered = sorted(self.segments.values(), key=lambda s: (s.first, s.first_request))
        for number, seg in enumerate(ordered):
            marked = False
            if number:
                kind, source = boundary_kind(seg.slots[0].turn if seg.slots else None, CONTINUATION)
                out.append(_boundary(seg, kind, source, number))
                marked = source == "server"
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
                if has_compaction(slot.turn) and not (marked and position == 0):
                    out.append(compaction_marker(slot.turn, number))
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
    views = {
        agent: agent_view(agent, parents[agent], h.turns(), h.docs, h.started, h.last)
        for agent, h in agents.items()
    }
    # Only assistant turns with a tool call that gives a prompt can have spawned a
    # subagent; `nest` scans its turns once per subagent, so it gets those alone
    # (the same turn objects: what it hangs on them shows in `turns`).
    orphans = nest([t for t in turns if _may_spawn(t)], views) if views else []
    return {"turns": turns, "subagents": orphans, "auxiliary": auxiliary}, missing


def _may_spawn(turn: dict[str, Any]) -> bool:
    if turn.get("type") != "message" or turn.get("role") != "assistant":
        return False
    return any(
        isinstance(b, dict)
        and b.get("type") == "tool_use"
        and isinstance(b.get("input"), dict)
        and isinstance(b["input"].get("prompt"), str)
        for b in turn.get("content") or []
    )


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
    """Every request of the conversation counts, its subagents' at any depth too
    (they share its id)."""
    out = usage_totals(docs)
    del out["requestCount"]
    out["subagentRequests"] = sum(1 for d in docs if d["conversation"]["thread"] == "subagent")
    return out


def duration_ms(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


def _boundary(seg: _Segment, kind: str, source: str | None, number: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": kind,
        "requestId": seg.first_request,
        "timestamp": seg.first,
        "segment": number,
    }
    if source is not None:
        out["source"] = source
    return out


def _auxiliary(doc: Doc) -> dict[str, Any]:
    conv = doc["conversation"]
    reply = plain_text(conv["reply"]["content"]) if conv.get("reply") else ""
    return {
        "requestId": doc["requestId"],
        "timestamp": doc["timestamp"],
        "prompt": conv.get("prompt"),
        "reply": one_line(reply, 300) if reply else None,
        "error": conv.get("error"),
        **request_facts(doc),
    }


def _same(turn: dict[str, Any], message: dict[str, Any]) -> bool:
    return fingerprint([turn.get("role"), _raw(turn.get("content"))]) == fingerprint(
        [message.get("role"), message.get("content")]
    )


def _raw(content: object) -> object:
    """A held turn's content as stored: omitted thinking shown hidden compares as
    the empty thinking block it was stored as."""
    if not isinstance(content, list):
        return content
    return [{"type": "thinking", "thinking": ""} if b.get("hidden") else b for b in content]


def _end(doc: Doc) -> datetime:
    completed = (doc.get("response") or {}).get("completedAt")
    return completed if isinstance(completed, datetime) else doc["timestamp"]
