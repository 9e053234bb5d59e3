"""The model's side of a Claude Code session, played by the fake Anthropic upstream.

Claude Code's turns depend on each other, so the answers cannot be fixed in advance:
`FakeClaude` is a responder for `FakeUpstream.respond` that reads each Messages
request and decides which turn it is. A turn is the main agent's or a subagent's (the
`x-claude-code-agent-id` header that Claude Code 2.1 sends on subagent requests), and
it either asks for a tool (the last user message holds no `tool_result`) or answers
from the tool's result. Each answer is streamed as the API streams it (`message_sse`),
with usage that a test can price itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fake_openai import FakeOpenAI
from tests.fake_upstream import Received, Script, build_script
from tests.providers.openai_chunks import Chunk

AGENT_HEADER = "x-claude-code-agent-id"
SESSION_HEADER = "x-claude-code-session-id"

# Usage per kind of turn: distinct, non-round counts, so a cost that mixed two turns
# up, or dropped a cache field, cannot come out right by accident.
USAGE: dict[str, dict[str, Any]] = {
    "main-ask": {
        "input_tokens": 2113,
        "cache_creation_input_tokens": 517,
        "cache_read_input_tokens": 11452,
        "cache_creation": {"ephemeral_5m_input_tokens": 517, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 61,
        "service_tier": "standard",
    },
    "main-answer": {
        "input_tokens": 389,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 14082,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 27,
        "service_tier": "standard",
    },
    "sub-ask": {
        "input_tokens": 1021,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 33,
    },
    "sub-answer": {
        "input_tokens": 1187,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 19,
    },
}


@dataclass(frozen=True)
class Plan:
    """One agent's part: the tool it asks for, then its final text made from the tool
    result's text (so the text proves that the tool ran and its result came back)."""

    tool: str
    input: dict[str, Any]
    answer: Callable[[str], str]


@dataclass
class Turn:
    kind: str  # main-ask, main-answer, sub-ask, sub-answer, other
    agent: str | None
    session: str | None
    model: str | None
    request: Received
    reply: dict[str, Any] | None


def header(request: Received, name: str) -> str | None:
    return next((v for k, v in request.headers if k.lower() == name), None)


def tool_result_text(block: dict[str, Any]) -> str:
    """A tool_result's text, whether its content is a string or a list of blocks."""
    content = block.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    text = content if isinstance(content, str) else ""
    return f"ERROR: {text}" if block.get("is_error") else text


def last_tool_result(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The tool_result of the last user message, if it holds one (`role: "system"`
    messages, which Claude Code 2.1 sends mid-conversation, are skipped)."""
    users = [m for m in messages if m.get("role") == "user"]
    if not users or not isinstance(users[-1].get("content"), list):
        return None
    results = [b for b in users[-1]["content"] if b.get("type") == "tool_result"]
    return results[-1] if results else None


@dataclass
class FakeClaude:
    main: Plan
    sub: Plan | None = None
    turns: list[Turn] = field(default_factory=list)
    _count: int = 0

    def __call__(self, request: Received) -> Script | None:
        agent = header(request, AGENT_HEADER)
        session = header(request, SESSION_HEADER)
        body: dict[str, Any] = {}
        if request.method == "POST" and request.path_qs.split("?")[0] == "/v1/messages":
            body = json.loads(request.body)
        plan = self.sub if agent else self.main
        if not body.get("tools") or plan is None:
            # count_tokens, model listing, side calls without tools: the default answer.
            self.turns.append(Turn("other", agent, session, body.get("model"), request, None))
            return None
        who = "sub" if agent else "main"
        self._count += 1
        result = last_tool_result(body.get("messages") or [])
        if result is None:
            kind = f"{who}-ask"
            tool_id = f"toolu_fake{self._count:04d}"
            content: list[dict[str, Any]] = [
                {"type": "text", "text": f"Using {plan.tool}."},
                {"type": "tool_use", "id": tool_id, "name": plan.tool, "input": plan.input},
            ]
            stop = "tool_use"
        else:
            kind = f"{who}-answer"
            content = [{"type": "text", "text": plan.answer(tool_result_text(result))}]
            stop = "end_turn"
        reply = {
            "id": f"msg_fake{self._count:04d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": USAGE[kind],
        }
        self.turns.append(Turn(kind, agent, session, body.get("model"), request, reply))
        return build_script(200, {}, message_sse(reply), sse=True)

    def of(self, kind: str) -> list[Turn]:
        return [t for t in self.turns if t.kind == kind]


@dataclass
class ClaudeCodeOpenAI(FakeOpenAI):
    """The fake OpenAI backend, its `auto` answer deciding on the last user or tool
    message: Claude Code 2.1 ends its requests with `role: "system"` messages (its
    environment, agent list, deferred tools), which the translation keeps as system
    messages, so the last message is rarely the user's. Keeps the chunks of each
    answer, so a test knows the usage it reported."""

    answers: list[list[Chunk]] = field(default_factory=list)

    def _auto(self, body: dict[str, Any]) -> list[Chunk]:
        messages = list(body.get("messages") or [])
        while messages and messages[-1].get("role") == "system":
            messages.pop()
        chunks = super()._auto({**body, "messages": messages})
        self.answers.append(chunks)
        return chunks


# ---- the stream the API sends for a message ----------------------------------------------
def _event(data: dict[str, Any]) -> bytes:
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {data['type']}\ndata: {raw}\n\n".encode()


def _block(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    if block["type"] == "text":
        half = len(block["text"]) // 2
        opened: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [
            {"type": "text_delta", "text": part}
            for part in (block["text"][:half], block["text"][half:])
        ]
    elif block["type"] == "tool_use":
        opened = {**block, "input": {}}
        raw = json.dumps(block["input"])
        # The first fragment may be empty, as the API sends it.
        deltas = [
            {"type": "input_json_delta", "partial_json": part}
            for part in ("", raw[: len(raw) // 2], raw[len(raw) // 2 :])
        ]
    else:
        raise AssertionError(f"no stream shape for a {block['type']!r} block")
    return [
        {"type": "content_block_start", "index": index, "content_block": opened},
        *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
        {"type": "content_block_stop", "index": index},
    ]


def message_sse(message: dict[str, Any]) -> bytes:
    """The SSE of `message`: message_start (empty content, the input-side usage and a
    placeholder output count), a ping, each block, message_delta (stop reason and the
    cumulative usage), message_stop."""
    usage = message["usage"]
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(message["content"]):
        events += _block(index, block)
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        }
    )
    events.append({"type": "message_stop"})
    return b"".join(_event(e) for e in events)
