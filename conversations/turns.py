"""The turns of a rebuilt thread, as the conversation view shows them (pure).

Shared by `conversations.thread` (the histories) and `conversations.subagents`
(the subagent tree):

- a message turn carries its role and content; `role: "system"` messages (the
  mid-conversation system messages Claude Code 2.1 sends) are turns of their own
  kind, `system`, never the user's prompt;
- thinking the API returned empty (`display: "omitted"`: only a signature) is
  shown as `{"type": "thinking", "hidden": true}`, never as an empty block; a
  reply's `thinkingTokens` come from `usage.output_tokens_details.thinking_tokens`
  and a reply's only hidden block carries them as `tokens` (several thinking
  blocks share one count, so none is given to each);
- an assistant turn carries what its request cost and which model served it:
  `model` (the model requested), `servedModel` and, after a server-side fallback,
  `fallbacks` (each `fallback` block's from/to/trigger);
- a message holding a `compaction` block is where the API restarted the history
  from a summary: `compaction_marker` stands before it.
"""

from __future__ import annotations

from typing import Any

from conversations.text import plain_text

Doc = dict[str, Any]

# Summed per conversation or subagent: (field, the usage key it sums).
USAGE_KEYS: tuple[tuple[str, str], ...] = (
    ("inputTokens", "input_tokens"),
    ("outputTokens", "output_tokens"),
    ("cacheCreationTokens", "cache_creation_input_tokens"),
    ("cacheReadTokens", "cache_read_input_tokens"),
)


def message_turn(message: dict[str, Any], doc: Doc, index: int, source: str) -> dict[str, Any]:
    role = message.get("role")
    return {
        "type": "system" if role == "system" else "message",
        "index": index,
        "role": role,
        "content": shown_content(message.get("content") or []),
        "requestId": doc["requestId"],
        "timestamp": doc["timestamp"],
        "source": source,
    }


def shown_content(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_hidden() if _omitted(b) else b for b in blocks]


def reply_turn(reply: dict[str, Any], doc: Doc, index: int) -> dict[str, Any]:
    turn = message_turn(reply, doc, index, "response")
    turn.update(request_facts(doc))
    fallbacks = [_switch(b) for b in turn["content"] if b.get("type") == "fallback"]
    if fallbacks:
        turn["fallbacks"] = fallbacks
        turn["servedModel"] = fallbacks[-1]["to"] or turn["servedModel"]
    thinking = thinking_tokens(doc)
    turn["thinkingTokens"] = thinking
    hidden = [b for b in turn["content"] if b.get("type") == "thinking"]
    if len(hidden) == 1 and hidden[0].get("hidden"):
        hidden[0]["tokens"] = thinking
    error = doc["conversation"].get("error")
    if error:  # a reply cut short (client closed, or an error mid-stream)
        turn["error"] = error
    return turn


def error_turn(doc: Doc, error: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "error",
        "error": error,
        "requestId": doc["requestId"],
        "timestamp": doc["timestamp"],
        **request_facts(doc),
    }


def request_facts(doc: Doc) -> dict[str, Any]:
    return {
        "model": doc.get("model"),
        "servedModel": _text(doc.get("servedModel"))
        or _text(doc["conversation"].get("servedModel")),
        "statusCode": doc.get("statusCode"),
        "stopReason": doc.get("stopReason"),
        "usage": doc.get("usage"),
        "tokens": doc.get("tokens") or 0,
        "cost": cost_of(doc),
        "responseTime": doc.get("responseTime"),
        "timeToFirstByte": doc.get("timeToFirstByte"),
    }


def thinking_tokens(doc: Doc) -> int | None:
    """The document's verbatim usage when it has the count, else what the
    conversation fields read from the reply (documents written before the usage
    was kept whole)."""
    usage = doc.get("usage")
    details = usage.get("output_tokens_details") if isinstance(usage, dict) else None
    count = details.get("thinking_tokens") if isinstance(details, dict) else None
    if not _count(count):
        count = doc["conversation"].get("thinkingTokens")
    return count if _count(count) else None


def has_compaction(turn: dict[str, Any] | None) -> bool:
    return turn is not None and any(b.get("type") == "compaction" for b in turn["content"])


def compaction_marker(turn: dict[str, Any], segment: int) -> dict[str, Any]:
    """Where the API dropped the history before a compaction block (server-side
    compaction): the next requests continue from its summary."""
    return {
        "type": "compaction",
        "source": "server",
        "segment": segment,
        "index": turn["index"],
        "requestId": turn["requestId"],
        "timestamp": turn["timestamp"],
    }


def boundary_kind(first: dict[str, Any] | None, continuation: str) -> tuple[str, str | None]:
    """What starts a new history: a compaction (the API's block, or Claude Code's
    own summary prompt) or anything else that rewrote its start."""
    if has_compaction(first):
        return "compaction", "server"
    if first is not None and plain_text(first["content"]).startswith(continuation):
        return "compaction", "client"
    return "new_history", None


def cost_of(doc: Doc) -> float | None:
    cost = doc.get("cost")
    value = cost.get("usd") if isinstance(cost, dict) else None
    return value if isinstance(value, int | float) else None


def usage_totals(docs: list[Doc]) -> dict[str, Any]:
    """Token and cost sums of some request documents (priced requests only)."""

    def tokens(doc: Doc, key: str) -> int:
        value = (doc.get("usage") or {}).get(key)
        return value if isinstance(value, int) else 0

    out: dict[str, Any] = {"requestCount": len(docs)}
    for name, key in USAGE_KEYS:
        out[name] = sum(tokens(d, key) for d in docs)
    out["totalTokens"] = sum(d.get("tokens") or 0 for d in docs)
    out["cost"] = round(sum(cost_of(d) or 0.0 for d in docs), 10)
    out["unpricedRequests"] = sum(1 for d in docs if d.get("unpriced"))
    out["errorCount"] = sum(1 for d in docs if (d["conversation"] or {}).get("error"))
    return out


def _omitted(block: dict[str, Any]) -> bool:
    return (
        block.get("type") == "thinking"
        and not block.get("hidden")
        and (not block.get("thinking") or block.get("display") == "omitted")
    )


def _hidden() -> dict[str, Any]:
    return {"type": "thinking", "hidden": True, "tokens": None}


def _switch(block: dict[str, Any]) -> dict[str, Any]:
    trigger = block.get("trigger")
    return {
        "from": _model(block.get("from")),
        "to": _model(block.get("to")),
        "trigger": trigger if isinstance(trigger, dict) else None,
    }


def _model(side: object) -> str | None:
    return _text(side.get("model")) if isinstance(side, dict) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
