"""Request documents of small hand-written histories, built through the real
`recording.document.build_document`, for the thread tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from recording.document import build_document
from tests.conversations.helpers import PRICES, T0, exchange_of

SESSION = [["x-claude-code-session-id", "thread-2026"]]
TOOLS = [{"name": "Bash", "input_schema": {"type": "object"}}]


def reply(
    *blocks: dict[str, Any],
    model: str = "claude-opus-5-5",
    usage: dict[str, Any] | None = None,
    stop: str = "end_turn",
) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(blocks),
        "stop_reason": stop,
        "usage": usage or {"input_tokens": 10, "output_tokens": 5},
    }


def doc(
    messages: list[dict[str, Any]],
    answer: dict[str, Any] | None,
    at: float,
    *,
    headers: list[list[str]] | None = None,
    model: str = "claude-opus-5-5",
    status: int = 200,
) -> dict[str, Any]:
    entry = {
        "path": "/v1/messages",
        "headers": [*SESSION, *(headers or [])],
        "body": {"model": model, "max_tokens": 9, "messages": messages, "tools": TOOLS},
        "status": status,
        "reply": answer,
    }
    return build_document(exchange_of(entry, T0 + timedelta(seconds=at)), PRICES)


def u(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def a(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def compaction(summary: str) -> dict[str, Any]:
    return {"type": "compaction", "content": summary}


def kinds(turns: list[dict[str, Any]]) -> list[str]:
    """Each turn as `type`, or `type:role` for messages."""
    return [f"message:{t['role']}" if t["type"] == "message" else t["type"] for t in turns]


def said(turns: list[dict[str, Any]]) -> list[str]:
    """The text of each message turn, in order."""
    return [
        " ".join(b.get("text") or b.get("content") or b["type"] for b in t["content"])
        for t in turns
        if t["type"] in ("message", "system")
    ]
