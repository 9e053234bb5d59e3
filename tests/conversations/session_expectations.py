"""The expectations of the Claude Code 2.1 session test (test_session_e2e.py),
computed from the fixture alone: list prices and each reply's cost (with its
server-side fallback), the reply serialised as the API streams it (`sse_of`), and
the message a stream of it folds into."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fixtures.conversations.claude_code import FABLE, OPUS

MTOK = 1_000_000


# ---- prices ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Rates:
    """USD per million tokens."""

    input: float
    output: float
    write_5m: float
    write_1h: float
    read: float


# List prices (platform.claude.com/docs/en/about-claude/pricing and the model pages
# models/opus-5-5/overview, models/fable-5/overview, checked 2026-12):
# Opus 5.5 $4 in / $20 out, cache writes $5 (5 min) / $8 (1 h), reads $0.20 (0.05x);
# Fable 5 $10 / $50, writes $12.50 / $20, reads $1.
RATES = {
    OPUS: Rates(input=4, output=20, write_5m=5, write_1h=8, read=0.20),
    FABLE: Rates(input=10, output=50, write_5m=12.50, write_1h=20, read=1.00),
}


def split_usage(usage: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """input, output, 5-minute writes, 1-hour writes, reads of one usage object (an
    unsplit write counts as 5-minute)."""
    written = usage.get("cache_creation_input_tokens") or 0
    split = usage.get("cache_creation") or {}
    hour = split.get("ephemeral_1h_input_tokens") or 0
    return (
        usage.get("input_tokens") or 0,
        usage.get("output_tokens") or 0,
        written - hour,
        hour,
        usage.get("cache_read_input_tokens") or 0,
    )


def _usd(usage: dict[str, Any], model: str) -> float:
    fresh, out, five, hour, read = split_usage(usage)
    r = RATES[model]
    return (
        fresh * r.input + out * r.output + five * r.write_5m + hour * r.write_1h + read * r.read
    ) / MTOK


def served_by(reply: dict[str, Any]) -> str:
    """The model that answered: the last `fallback` block's target (a stream's
    message_start names the requested model), else the message's `model`."""
    switches = [b["to"]["model"] for b in reply["content"] if b["type"] == "fallback"]
    return switches[-1] if switches else reply["model"]


def expected_cost(reply: dict[str, Any]) -> tuple[float, list[tuple[str, str, float]]]:
    """The bill of one reply, and its attempts as (type, model, usd) when the usage
    lists `iterations`: then the top-level counts are only the last attempt's, and the
    bill is the sum over the attempts, each at the model that ran it (an entry without
    a model ran on the model that answered)."""
    usage = reply["usage"]
    served = served_by(reply)
    if "iterations" not in usage:
        return _usd(usage, served), []
    rows = []
    for attempt in usage["iterations"]:
        # A refusal before any output is free; this session has none (checked here so
        # the arithmetic below stays the documented one).
        assert attempt["output_tokens"] > 0
        model = attempt.get("model") or served
        rows.append((attempt["type"], model, _usd(attempt, model)))
    return sum(usd for _, _, usd in rows), rows


# ---- the stream the API sends for a reply -----------------------------------------------
def _event(data: dict[str, Any]) -> bytes:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {data['type']}\ndata: {body}\n\n".encode()


# Usage fields that only the final message_delta carries in a real stream.
_LATE_USAGE = ("output_tokens_details", "iterations")
_CUMULATIVE = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)


def _block_events(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    kind = block["type"]
    deltas: list[dict[str, Any]]
    if kind == "text":
        opened = {"type": "text", "text": ""}
        half = len(block["text"]) // 2
        deltas = [
            {"type": "text_delta", "text": block["text"][:half]},
            {"type": "text_delta", "text": block["text"][half:]},
        ]
    elif kind == "thinking":
        opened = {"type": "thinking", "thinking": "", "signature": ""}
        # Omitted thinking (display "omitted") streams its signature only.
        said = [{"type": "thinking_delta", "thinking": block["thinking"]}]
        deltas = [
            *(said if block["thinking"] else []),
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    elif kind == "compaction":
        # One delta carrying the whole summary (build-with-claude/compaction, Streaming).
        opened = {"type": "compaction", "content": None, "encrypted_content": None}
        deltas = [
            {
                "type": "compaction_delta",
                "content": block["content"],
                "encrypted_content": block["encrypted_content"],
            }
        ]
    elif kind == "fallback":
        opened, deltas = block, []  # arrives whole in its start event
    elif kind == "tool_use":
        opened = {**block, "input": {}}
        raw = json.dumps(block["input"])
        third = len(raw) // 3
        # The first fragment may be empty, as the API sends it.
        deltas = [
            {"type": "input_json_delta", "partial_json": part}
            for part in ("", raw[:third], raw[third:])
        ]
    else:
        raise AssertionError(f"no stream shape for a {kind!r} block")
    return [
        {"type": "content_block_start", "index": index, "content_block": opened},
        *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
        {"type": "content_block_stop", "index": index},
    ]


def sse_of(reply: dict[str, Any]) -> bytes:
    """The SSE the Messages API streams for `reply`: message_start (empty content, the
    usage known up front and a placeholder output count), a ping, each block's start,
    deltas and stop, then message_delta with the cumulative counts plus the late
    fields (thinking split, iterations), then message_stop."""
    usage = reply["usage"]
    early = {k: v for k, v in usage.items() if k not in _LATE_USAGE}
    early["output_tokens"] = 1
    start = {**reply, "content": [], "stop_reason": None, "stop_sequence": None, "usage": early}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "ping"},
    ]
    for index, block in enumerate(reply["content"]):
        events += _block_events(index, block)
    late = {k: usage[k] for k in (*_CUMULATIVE, *_LATE_USAGE) if k in usage}
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply["stop_reason"], "stop_sequence": None},
            "usage": late,
        }
    )
    events.append({"type": "message_stop"})
    return b"".join(_event(e) for e in events)


def folded(reply: dict[str, Any]) -> dict[str, Any]:
    """The message a stream of `reply` amounts to: the reply itself, except that after
    a server-side fallback the non-streaming message names the model that answered
    (build-with-claude/refusals-and-fallback), which only the fallback block says."""
    return {**reply, "model": served_by(reply)}


# ---- what the stats and the conversation must say --------------------------------
def indices_by_agent(entries: list[dict[str, Any]]) -> dict[str | None, list[int]]:
    out: dict[str | None, list[int]] = {}
    for i, entry in enumerate(entries):
        agent = dict(map(tuple, entry["headers"])).get("x-claude-code-agent-id")
        out.setdefault(agent, []).append(i)
    return out


def bills_of(entries: list[dict[str, Any]]) -> list[float]:
    return [expected_cost(e["reply"])[0] for e in entries]


def expected_sums(entries: list[dict[str, Any]], indices: list[int]) -> dict[str, Any]:
    """What a stats row must say for these requests: top-level counts summed (the
    thinking split is part of output, not added to tokens), their bills summed."""
    sums = dict.fromkeys(("input", "output", "five", "hour", "read", "thinking"), 0)
    for i in indices:
        usage = entries[i]["reply"]["usage"]
        fresh, out, five, hour, read = split_usage(usage)
        sums["input"] += fresh
        sums["output"] += out
        sums["five"] += five
        sums["hour"] += hour
        sums["read"] += read
        sums["thinking"] += (usage.get("output_tokens_details") or {}).get("thinking_tokens", 0)
    bills = bills_of(entries)
    return {
        "requests": len(indices),
        "input_tokens": sums["input"],
        "output_tokens": sums["output"],
        "cache_creation_tokens": sums["five"] + sums["hour"],
        "cache_creation_5m_tokens": sums["five"],
        "cache_creation_1h_tokens": sums["hour"],
        "cache_read_tokens": sums["read"],
        "thinking_tokens": sums["thinking"],
        "tokens": sums["input"] + sums["output"] + sums["five"] + sums["hour"] + sums["read"],
        "cost_usd": pytest.approx(sum(bills[i] for i in indices), abs=1e-8),
        "unpriced_requests": 0,
        "cost_incomplete_requests": 0,
        "errors": 0,
    }


# The fields `/api/stats` gives as totals and per model.
SUMMED = (
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "thinking_tokens",
    "tokens",
    "cost_usd",
)


def indices_by_model(entries: list[dict[str, Any]]) -> dict[str, list[int]]:
    # A request is counted under the model it asked for (the routed one): the
    # fallback turn under Fable 5, with its whole bill (the Opus attempt included).
    out: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        out.setdefault(entry["body"]["model"], []).append(i)
    return out
