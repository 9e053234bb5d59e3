"""A Claude Code 2.1-style session through the real proxy (issue 14), checked in the
log, the stats and the conversation thread.

The session is tests/fixtures/conversations/claude_code_21.json: omitted thinking, a
mid-conversation system message, a subagent that starts one of its own, a server-side
fallback (Fable 5 → Opus 5.5) and a server-side compaction. Every request goes through
`python app.py` as Claude Code sends it (`stream: true`, `?beta=true`, its headers);
the fake upstream answers each with its reply serialised as the API streams it
(`sse_of`), registered as a script. The client reads every stream to its end, then the
test reads what the recorder made of them: `/api/requests/{id}`, `/api/stats*` and
`/api/conversations*`. Expectations are computed here from the fixture's usage and the
list prices, never read back from the proxy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.conftest import ProxyProcess, start_proxy, wait_recorded
from tests.fake_upstream import FakeUpstream, Received, sse_chunks
from tests.fixtures.conversations import exchanges
from tests.fixtures.conversations.claude_code import FABLE, OPUS, SESSION_21
from tests.fixtures.conversations.claude_code_21 import (
    AGENT,
    CWD,
    NESTED,
    PROMPT,
    SUMMARY_21,
    SYSTEM_NOTE,
)

KEY = "sk-ant-api03-session-e2e-SECRET"
NAME = "claude_code_21"
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


def _split(usage: dict[str, Any]) -> tuple[int, int, int, int, int]:
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
    fresh, out, five, hour, read = _split(usage)
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


# ---- the session through the proxy ------------------------------------------------------
@dataclass
class Sent:
    entries: list[dict[str, Any]]
    ids: list[str]  # x-proxy-request-id of each exchange
    streams: list[bytes]  # what the client read
    scripts: list[bytes]  # what the upstream sent
    fakes: list[str]  # the x-fake value of each exchange
    received: list[Received]  # what the upstream got, per exchange
    began: datetime


@pytest.fixture(scope="module")
def session_proxy(
    upstream: FakeUpstream, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    """A proxy of its own (its own database on `mongo_uri`), so the stats and the
    conversation list hold this session only."""
    handle = start_proxy(
        tmp_path_factory.mktemp("session_e2e"),
        {"ANTHROPIC_FORWARD_URL": upstream.url, "MONGODB_URI": mongo_uri},
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def sent(upstream: FakeUpstream, session_proxy: ProxyProcess) -> Sent:
    entries = exchanges(NAME)
    scripts = [sse_of(e["reply"]) for e in entries]
    # Unique per module run: the upstream is shared by the whole test session.
    run = f"{NAME}-{session_proxy.port}"
    fakes = [
        upstream.script(f"{run}-{i}", 200, {}, body, sse=True) for i, body in enumerate(scripts)
    ]
    began = datetime.now(UTC)

    async def replay() -> tuple[list[str], list[bytes]]:
        ids, streams = [], []
        async with aiohttp.ClientSession() as http:
            for entry, fake in zip(entries, fakes, strict=True):
                headers = [*map(tuple, entry["headers"]), ("x-api-key", KEY), ("x-fake", fake)]
                url = session_proxy.url + entry["path"]
                async with http.post(url, data=json.dumps(entry["body"]), headers=headers) as resp:
                    assert resp.status == 200
                    assert resp.headers["content-type"].startswith("text/event-stream")
                    streams.append(b"".join([c async for c in resp.content.iter_any()]))
                    ids.append(resp.headers["x-proxy-request-id"])
            await wait_recorded(http, session_proxy, len(entries))
        return ids, streams

    ids, streams = asyncio.run(replay())
    # Taken now: another module may reset the shared upstream's record later.
    by_fake = {dict(r.headers).get("x-fake"): r for r in upstream.received}
    received = [by_fake[fake] for fake in fakes]
    return Sent(entries, ids, streams, scripts, fakes, received, began)


async def _get(http: aiohttp.ClientSession, proxy: ProxyProcess, path: str) -> Any:
    async with http.get(proxy.url + path) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _logged(http: aiohttp.ClientSession, proxy: ProxyProcess, rid: str) -> dict[str, Any]:
    answer = await _get(http, proxy, f"/api/requests/{rid}")
    assert answer["fullId"] == rid
    return answer["request"]


def _by_agent(sent: Sent) -> dict[str | None, list[int]]:
    out: dict[str | None, list[int]] = {}
    for i, entry in enumerate(sent.entries):
        agent = dict(map(tuple, entry["headers"])).get("x-claude-code-agent-id")
        out.setdefault(agent, []).append(i)
    return out


def _costs(sent: Sent) -> list[float]:
    return [expected_cost(e["reply"])[0] for e in sent.entries]


# ---- the helpers themselves ---------------------------------------------------------------
def test_the_script_scenario_answers_as_registered(upstream: FakeUpstream) -> None:
    events = sse_of(exchanges(NAME)[0]["reply"])
    fake = upstream.script("e2e-probe", 529, {"retry-after": "3"}, b'{"x":1}', sse=False)
    streamed = upstream.script("e2e-probe-sse", 200, {}, events, sse=True)
    assert upstream.scripts["e2e-probe-sse"].chunks == tuple(sse_chunks(events))
    assert b"".join(sse_chunks(events)) == events and len(sse_chunks(events)) > 5

    async def call() -> None:
        async with aiohttp.ClientSession() as http:
            url = upstream.url + "/v1/messages"
            async with http.post(url, data=b"{}", headers={"x-fake": fake}) as resp:
                assert resp.status == 529 and resp.headers["retry-after"] == "3"
                assert resp.headers["request-id"].startswith("req_fake")
                assert await resp.read() == b'{"x":1}'
            async with http.post(url, data=b"{}", headers={"x-fake": streamed}) as resp:
                assert resp.headers["content-type"].startswith("text/event-stream")
                assert await resp.read() == events
            async with http.post(url, data=b"{}", headers={"x-fake": "script:nope"}) as resp:
                assert resp.status == 400

    asyncio.run(call())


def test_the_fixture_arithmetic() -> None:
    """The two special bills, written out, agree with `expected_cost`."""
    entries = exchanges(NAME)
    (fallback,) = [e["reply"] for e in entries if e["body"]["model"] == FABLE]
    (compacted,) = [
        e["reply"] for e in entries if any(b["type"] == "compaction" for b in e["reply"]["content"])
    ]
    # Fallback: Fable 5 ran 9,527 input and 4 output tokens before declining,
    # 9527 x $10 + 4 x $50 = $0.09547; Opus 5.5 answered, 9527 x $4 + 130 x $20 = $0.040708.
    usd, rows = expected_cost(fallback)
    assert [(t, m) for t, m, _ in rows] == [("message", FABLE), ("fallback_message", OPUS)]
    assert usd == pytest.approx((9527 * 10 + 4 * 50 + 9527 * 4 + 130 * 20) / MTOK)
    # Compaction, both attempts on Opus 5.5: the summary read 152,000 and wrote 540
    # tokens, the answer 3,200 and 16: (152000 + 3200) x $4 + (540 + 16) x $20 = $0.63192.
    usd, rows = expected_cost(compacted)
    assert [(t, m) for t, m, _ in rows] == [("compaction", OPUS), ("message", OPUS)]
    assert usd == pytest.approx(((152000 + 3200) * 4 + (540 + 16) * 20) / MTOK)
    # A plain turn: 10 x $4 + 8,200 5-minute writes x $5 + 240 x $20 = $0.04584.
    assert expected_cost(entries[0]["reply"])[0] == pytest.approx(
        (10 * 4 + 8200 * 5 + 240 * 20) / MTOK
    )


# ---- the wire -----------------------------------------------------------------------------
def test_every_stream_reaches_the_client_and_the_upstream_unchanged(sent: Sent) -> None:
    assert sent.streams == sent.scripts
    for entry, got in zip(sent.entries, sent.received, strict=True):
        assert got.path_qs == "/v1/messages?beta=true"
        assert json.loads(got.body) == entry["body"]
        for name, value in entry["headers"]:
            assert (name, value) in got.headers, name
        assert ("x-api-key", KEY) in got.headers


# ---- the log ------------------------------------------------------------------------------
async def test_each_request_is_logged_with_its_usage_cost_and_message(
    session_proxy: ProxyProcess, sent: Sent, http: aiohttp.ClientSession
) -> None:
    for entry, rid in zip(sent.entries, sent.ids, strict=True):
        doc = await _logged(http, session_proxy, rid)
        reply = entry["reply"]
        # Every usage field the upstream sent, verbatim (iterations, the thinking
        # split, service_tier), message_delta's cumulative counts never summed.
        assert doc["usage"] == reply["usage"]
        fresh, out, five, hour, read = _split(reply["usage"])
        assert doc["tokens"] == fresh + out + five + hour + read
        assert doc["response"]["body"] == folded(reply)
        assert doc["model"] == entry["body"]["model"]
        assert doc["servedModel"] == served_by(reply)
        assert doc["sessionId"] == SESSION_21 and doc["query"] == "beta=true"
        assert doc["isStreaming"] is True and doc["outcome"] == "completed"
        assert doc["stopReason"] == reply["stop_reason"]
        assert doc["unpriced"] is False and doc["costIncomplete"] is False

        usd, rows = expected_cost(reply)
        cost = doc["cost"]
        assert cost["usd"] == pytest.approx(usd, rel=1e-9)
        assert sum(cost["breakdown"].values()) == pytest.approx(usd, rel=1e-9)
        assert cost["incomplete"] is False and cost["modifiers"] == {}
        if rows:
            assert [(r["type"], r["model"]) for r in cost["iterations"]] == [
                (t, m) for t, m, _ in rows
            ]
            for row, (_, _, part) in zip(cost["iterations"], rows, strict=True):
                assert row["usd"] == pytest.approx(part, rel=1e-9) and not row["unpriced"]
        else:
            assert cost["iterations"] is None
            assert cost["pricedAs"] == served_by(reply)
        stored = {name.lower(): value for name, value in doc["request"]["headers"]}
        assert stored["x-api-key"].startswith("sha256:") and KEY not in json.dumps(doc)


async def test_the_fallback_turn_names_both_models(
    session_proxy: ProxyProcess, sent: Sent, http: aiohttp.ClientSession
) -> None:
    (index,) = [i for i, e in enumerate(sent.entries) if e["body"]["model"] == FABLE]
    doc = await _logged(http, session_proxy, sent.ids[index])
    assert (doc["model"], doc["originalModel"], doc["servedModel"]) == (FABLE, FABLE, OPUS)
    # Billed per attempt: the declining Fable attempt and the Opus answer.
    assert [r["model"] for r in doc["cost"]["iterations"]] == [FABLE, OPUS]
    assert doc["response"]["body"]["model"] == OPUS


# ---- the stats ----------------------------------------------------------------------------
def _expected_sums(sent: Sent, indices: list[int]) -> dict[str, Any]:
    """What a stats row must say for these requests: top-level counts summed (the
    thinking split is part of output, not added to tokens), their bills summed."""
    sums = dict.fromkeys(("input", "output", "five", "hour", "read", "thinking"), 0)
    for i in indices:
        usage = sent.entries[i]["reply"]["usage"]
        fresh, out, five, hour, read = _split(usage)
        sums["input"] += fresh
        sums["output"] += out
        sums["five"] += five
        sums["hour"] += hour
        sums["read"] += read
        sums["thinking"] += (usage.get("output_tokens_details") or {}).get("thinking_tokens", 0)
    costs = _costs(sent)
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
        "cost_usd": pytest.approx(sum(costs[i] for i in indices), abs=1e-8),
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


def _per_model(sent: Sent) -> dict[str, list[int]]:
    # A request is counted under the model it asked for (the routed one): the
    # fallback turn under Fable 5, with its whole bill (the Opus attempt included).
    out: dict[str, list[int]] = {}
    for i, entry in enumerate(sent.entries):
        out.setdefault(entry["body"]["model"], []).append(i)
    return out


async def test_stats_totals_are_the_sums_over_the_session(
    session_proxy: ProxyProcess, sent: Sent, http: aiohttp.ClientSession
) -> None:
    stats = await _get(http, session_proxy, "/api/stats")
    whole = _expected_sums(sent, list(range(len(sent.entries))))
    assert stats["total_requests"] == whole["requests"] == 9
    for name in SUMMED:
        assert stats[f"total_{name}"] == whole[name], name
    assert stats["unpriced_requests"] == 0 and stats["cost_incomplete_requests"] == 0

    per_model = _per_model(sent)
    assert set(stats["requests_by_model"]) == set(per_model) == {OPUS, FABLE}
    for model, indices in per_model.items():
        want = _expected_sums(sent, indices)
        got = stats["requests_by_model"][model]
        assert got["request_count"] == want["requests"], model
        for name in SUMMED:
            assert got[name] == want[name], (model, name)


async def test_stats_per_model_rows_over_the_session_range(
    session_proxy: ProxyProcess, sent: Sent, http: aiohttp.ClientSession
) -> None:
    start = int((sent.began - timedelta(minutes=1)).timestamp() * 1000)
    end = int((datetime.now(UTC) + timedelta(minutes=1)).timestamp() * 1000)
    rows = (await _get(http, session_proxy, f"/api/stats/models?start={start}&end={end}"))[
        "modelStats"
    ]
    per_model = _per_model(sent)
    assert sorted(r["model"] for r in rows) == sorted(per_model)
    for row in rows:
        want = _expected_sums(sent, per_model[row["model"]])
        assert {k: row[k] for k in want} == want, row["model"]
        assert row["status_2xx"] == want["requests"]
    # The daily series adds up to the same totals.
    daily = await _get(http, session_proxy, f"/api/stats/dashboard?start={start}&end={end}")
    whole = _expected_sums(sent, list(range(len(sent.entries))))
    for name in ("requests", "tokens", "thinking_tokens", "cost_usd"):
        assert sum(d[name] for d in daily["dailyStats"]) == whole[name], name


# ---- the conversation ---------------------------------------------------------------------
async def test_one_conversation_with_every_level_counted(
    session_proxy: ProxyProcess, sent: Sent, http: aiohttp.ClientSession
) -> None:
    page = await _get(http, session_proxy, "/api/conversations")
    assert page["total"] == 1
    (listed,) = page["conversations"]
    detail = await _get(http, session_proxy, f"/api/conversations/{SESSION_21}")
    whole = _expected_sums(sent, list(range(len(sent.entries))))
    subagent_requests = sum(len(v) for k, v in _by_agent(sent).items() if k)
    for view in (listed, detail):
        assert view["id"] == SESSION_21
        assert view["requestCount"] == len(sent.entries)
        assert view["subagentRequests"] == subagent_requests == 3
        # The prompt, never the mid-conversation system message.
        assert view["firstMessage"] == PROMPT
        assert view["projectPath"] == CWD
        assert view["inputTokens"] == whole["input_tokens"]
        assert view["outputTokens"] == whole["output_tokens"]
        assert view["cacheCreationTokens"] == whole["cache_creation_tokens"]
        assert view["cacheReadTokens"] == whole["cache_read_tokens"]
        assert view["totalTokens"] == whole["tokens"]
        assert view["cost"] == pytest.approx(sum(_costs(sent)), abs=1e-9)
        assert view["unpricedRequests"] == 0 and view["errorCount"] == 0


def _turn_of(turns: list[dict[str, Any]], request_id: str, role: str) -> dict[str, Any]:
    (turn,) = [
        t
        for t in turns
        if t["type"] == "message" and t["role"] == role and t["requestId"] == request_id
    ]
    return turn


async def test_the_thread_shows_system_compaction_fallback_and_hidden_thinking(
    session_proxy: ProxyProcess, sent: Sent, http: aiohttp.ClientSession
) -> None:
    conv = await _get(http, session_proxy, f"/api/conversations/{SESSION_21}")
    assert conv["incomplete"] is False
    turns, ids, entries = conv["turns"], sent.ids, sent.entries
    kinds = [t["type"] for t in turns]
    assert "gap" not in kinds and "new_history" not in kinds

    # The mid-conversation system message: a system turn of the request that sent it,
    # right after the tool result it followed.
    (system,) = [t for t in turns if t["type"] == "system"]
    at = turns.index(system)
    assert system["role"] == "system" and system["requestId"] == ids[1]
    assert system["content"] == [{"type": "text", "text": SYSTEM_NOTE}]
    assert turns[at - 1]["content"][0]["type"] == "tool_result"
    assert turns[at + 1] is _turn_of(turns, ids[1], "assistant")

    # The compaction: a marker where the API restarted from the summary, before the
    # reply holding the block; the history goes on from it (requests after it sent
    # only the block and what followed).
    (compacted,) = [
        i for i, e in enumerate(entries) if e["reply"]["content"][0]["type"] == "compaction"
    ]
    (marker,) = [t for t in turns if t["type"] == "compaction"]
    at = turns.index(marker)
    assert marker["source"] == "server" and marker["requestId"] == ids[compacted]
    holder = turns[at + 1]
    assert holder["requestId"] == ids[compacted] and holder["role"] == "assistant"
    assert holder["content"][0]["type"] == "compaction"
    assert holder["content"][0]["content"] == SUMMARY_21
    # Each later request adds its user message and gets its reply.
    after = [(t["requestId"], t["role"]) for t in turns[at + 2 :] if t["type"] == "message"]
    assert after == [
        (ids[i], role) for i in range(compacted + 1, len(entries)) for role in ("user", "assistant")
    ]
    resumed = entries[compacted + 1]["body"]["messages"]
    assert resumed[0]["content"][0]["type"] == "compaction"  # the client restarted at it
    assert holder["cost"] == pytest.approx(expected_cost(entries[compacted]["reply"])[0])

    # The fallback switch on its turn: asked Fable 5, served by Opus 5.5.
    (fell,) = [i for i, e in enumerate(entries) if e["body"]["model"] == FABLE]
    switched = _turn_of(turns, ids[fell], "assistant")
    assert (switched["model"], switched["servedModel"]) == (FABLE, OPUS)
    (block,) = [b for b in entries[fell]["reply"]["content"] if b["type"] == "fallback"]
    assert switched["fallbacks"] == [
        {"from": block["from"]["model"], "to": block["to"]["model"], "trigger": block["trigger"]}
    ]
    assert [t for t in turns if t.get("fallbacks")] == [switched]
    assert switched["cost"] == pytest.approx(expected_cost(entries[fell]["reply"])[0])

    # Hidden thinking, with the reply's thinking-token count, on every main-thread
    # reply whose thinking came back empty.
    main = _by_agent(sent)[None]
    hidden = [i for i in main if entries[i]["reply"]["content"][0]["type"] == "thinking"]
    assert len(hidden) == 3
    for i in hidden:
        turn = _turn_of(turns, ids[i], "assistant")
        count = entries[i]["reply"]["usage"]["output_tokens_details"]["thinking_tokens"]
        assert turn["content"][0] == {"type": "thinking", "hidden": True, "tokens": count}
        assert turn["thinkingTokens"] == count
    # Every main-thread reply carries its own bill.
    for i in main:
        turn = _turn_of(turns, ids[i], "assistant")
        assert turn["cost"] == pytest.approx(expected_cost(entries[i]["reply"])[0])
        assert turn["usage"] == entries[i]["reply"]["usage"]


def _spawn_id(reply: dict[str, Any]) -> str:
    (call,) = [b for b in reply["content"] if b["type"] == "tool_use" and b["name"] == "Task"]
    return call["id"]


async def test_subagents_nest_under_their_task_calls(
    session_proxy: ProxyProcess, sent: Sent, http: aiohttp.ClientSession
) -> None:
    conv = await _get(http, session_proxy, f"/api/conversations/{SESSION_21}")
    ids, entries = sent.ids, sent.entries
    agents = _by_agent(sent)
    assert conv["subagents"] == []  # none left unplaced

    # The main-thread reply whose Task call started agent-a1 holds it.
    (spawner,) = [
        i
        for i in agents[None]
        if entries[i]["reply"]["stop_reason"] == "tool_use"
        and any(b.get("name") == "Task" for b in entries[i]["reply"]["content"])
    ]
    turn = _turn_of(conv["turns"], ids[spawner], "assistant")
    (a1,) = turn["subagents"]
    assert (a1["agentId"], a1["parentAgentId"]) == (AGENT, None)
    assert a1["toolUseId"] == _spawn_id(entries[spawner]["reply"])

    # agent-a1's reply whose Task call started agent-b2 holds it, one level down.
    (inner,) = [i for i in agents[AGENT] if entries[i]["reply"]["stop_reason"] == "tool_use"]
    (b2,) = _turn_of(a1["turns"], ids[inner], "assistant")["subagents"]
    assert (b2["agentId"], b2["parentAgentId"]) == (NESTED, AGENT)
    assert b2["toolUseId"] == _spawn_id(entries[inner]["reply"])
    assert [t["requestId"] for t in b2["turns"] if t["role"] == "assistant"] == [
        ids[i] for i in agents[NESTED]
    ]

    # Own totals, and subtree totals that include the agent below.
    costs = _costs(sent)
    for view, own, below in ((a1, agents[AGENT], agents[NESTED]), (b2, agents[NESTED], [])):
        mine = _expected_sums(sent, own)
        tree = _expected_sums(sent, own + below)
        assert view["totals"]["requestCount"] == len(own)
        assert view["totals"]["outputTokens"] == mine["output_tokens"]
        assert view["totals"]["cost"] == pytest.approx(sum(costs[i] for i in own), abs=1e-9)
        assert view["subtreeTotals"]["requestCount"] == len(own + below)
        assert view["subtreeTotals"]["totalTokens"] == tree["tokens"]
        assert view["subtreeTotals"]["cost"] == pytest.approx(
            sum(costs[i] for i in own + below), abs=1e-9
        )
