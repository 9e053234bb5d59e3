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
from tests.conversations.session_expectations import (
    MTOK,
    SUMMED,
    bills_of,
    expected_cost,
    expected_sums,
    folded,
    indices_by_agent,
    indices_by_model,
    served_by,
    split_usage,
    sse_of,
)
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
        fresh, out, five, hour, read = split_usage(reply["usage"])
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
async def test_stats_totals_are_the_sums_over_the_session(
    session_proxy: ProxyProcess, sent: Sent, http: aiohttp.ClientSession
) -> None:
    stats = await _get(http, session_proxy, "/api/stats")
    whole = expected_sums(sent.entries, list(range(len(sent.entries))))
    assert stats["total_requests"] == whole["requests"] == 9
    for name in SUMMED:
        assert stats[f"total_{name}"] == whole[name], name
    assert stats["unpriced_requests"] == 0 and stats["cost_incomplete_requests"] == 0

    per_model = indices_by_model(sent.entries)
    assert set(stats["requests_by_model"]) == set(per_model) == {OPUS, FABLE}
    for model, indices in per_model.items():
        want = expected_sums(sent.entries, indices)
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
    per_model = indices_by_model(sent.entries)
    assert sorted(r["model"] for r in rows) == sorted(per_model)
    for row in rows:
        want = expected_sums(sent.entries, per_model[row["model"]])
        assert {k: row[k] for k in want} == want, row["model"]
        assert row["status_2xx"] == want["requests"]
    # The daily series adds up to the same totals.
    daily = await _get(http, session_proxy, f"/api/stats/dashboard?start={start}&end={end}")
    whole = expected_sums(sent.entries, list(range(len(sent.entries))))
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
    whole = expected_sums(sent.entries, list(range(len(sent.entries))))
    subagent_requests = sum(len(v) for k, v in indices_by_agent(sent.entries).items() if k)
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
        assert view["cost"] == pytest.approx(sum(bills_of(sent.entries)), abs=1e-9)
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
    main = indices_by_agent(sent.entries)[None]
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
    agents = indices_by_agent(sent.entries)
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
    costs = bills_of(sent.entries)
    for view, own, below in ((a1, agents[AGENT], agents[NESTED]), (b2, agents[NESTED], [])):
        mine = expected_sums(sent.entries, own)
        tree = expected_sums(sent.entries, own + below)
        assert view["totals"]["requestCount"] == len(own)
        assert view["totals"]["outputTokens"] == mine["output_tokens"]
        assert view["totals"]["cost"] == pytest.approx(sum(costs[i] for i in own), abs=1e-9)
        assert view["subtreeTotals"]["requestCount"] == len(own + below)
        assert view["subtreeTotals"]["totalTokens"] == tree["tokens"]
        assert view["subtreeTotals"]["cost"] == pytest.approx(
            sum(costs[i] for i in own + below), abs=1e-9
        )
