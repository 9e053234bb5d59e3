"""Recorded sessions through the real proxy, then read back via /api/conversations*.

One proxy process and one upstream for the module: the three fixture sessions
(tests/fixtures/conversations) are replayed request by request, the upstream
answering each with its recorded reply (as SSE when the request streams), and
every test reads what the log made of them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import jsonschema
import pytest
from aiohttp import web

from tests.conftest import ProxyProcess, start_proxy, wait_recorded
from tests.conversations.session_expectations import sse_of
from tests.fake_upstream import FakeUpstream, sse_chunks
from tests.fixtures.conversations import SESSIONS, exchanges, final_thread

MAIN = "5d0c2f1a-7b9e-4c3d-8a61-2f4e9b7c1d03"
SESSION_21 = "7a1c9e4b-2f3d-4e8a-9b6c-0d5e7f1a2b3c"
LEGACY = "b7e41f09-2c5d-4a86-9e13-6f0a8d2c4b75"
MAIN_PROJECT = "/home/dev/acme-billing"
KEY = "sk-ant-api03-conversations-SECRET"


class RecordedUpstream(FakeUpstream):
    """The fake upstream, plus `x-fake: conv:SESSION:INDEX`: the recorded reply."""

    async def _dispatch(
        self, request: web.Request, scenario: str, body: bytes
    ) -> web.StreamResponse:
        if not scenario.startswith("conv:"):
            return await super()._dispatch(request, scenario, body)
        _, name, index = scenario.split(":")
        entry = exchanges(name)[int(index)]
        if entry["status"] >= 400:
            return self._error(entry["status"])
        if not json.loads(body).get("stream"):
            return web.json_response(entry["reply"], headers=self._headers())
        response = await self._start_sse(request)
        # The stream the API sends for the reply, one event per write.
        for event in sse_chunks(sse_of(entry["reply"])):
            await response.write(event)
        await response.write_eof()
        return response


@pytest.fixture(scope="module")
def recorded_upstream() -> RecordedUpstream:
    fake = RecordedUpstream()
    fake.start_in_thread()
    return fake


@pytest.fixture(scope="module")
def proxy(
    recorded_upstream: RecordedUpstream, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    handle = start_proxy(
        tmp_path_factory.mktemp("conversations"),
        {"ANTHROPIC_FORWARD_URL": recorded_upstream.url, "MONGODB_URI": mongo_uri},
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def sent(proxy: ProxyProcess) -> dict[str, list[str]]:
    """Every session replayed once through the proxy: the proxy's request id of
    each exchange, per session, once the log holds all of them."""

    async def replay() -> dict[str, list[str]]:
        ids: dict[str, list[str]] = {}
        async with aiohttp.ClientSession() as http:
            for name in SESSIONS:
                ids[name] = []
                for index, entry in enumerate(exchanges(name)):
                    headers = [(k, v) for k, v in entry["headers"]] + [("x-api-key", KEY)]
                    if entry["reply"] is not None or entry["status"] >= 400:
                        headers.append(("x-fake", f"conv:{name}:{index}"))
                    async with http.post(
                        proxy.url + entry["path"], data=json.dumps(entry["body"]), headers=headers
                    ) as resp:
                        await resp.read()
                        assert resp.status == entry["status"]
                        ids[name].append(resp.headers["x-proxy-request-id"])
            await wait_recorded(http, proxy, sum(len(v) for v in ids.values()))
            return ids

    return asyncio.run(replay())


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _get(http: aiohttp.ClientSession, proxy: ProxyProcess, path: str) -> tuple[int, Any]:
    async with http.get(proxy.url + path) as resp:
        return resp.status, await resp.json()


def _expected(message: dict[str, Any]) -> dict[str, Any]:
    """A message as the thread shows it: content as blocks, without cache markers or
    thinking signatures (written out here independently of the code under test)."""
    content = message["content"]
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    blocks = []
    for block in content:
        block = {k: v for k, v in block.items() if k not in ("cache_control", "signature")}
        if block["type"] == "tool_result" and isinstance(block["content"], str):
            block["content"] = [{"type": "text", "text": block["content"]}]
        blocks.append(block)
    return {"role": message["role"], "content": blocks}


def _messages(turns: list[dict[str, Any]], segment: int) -> list[dict[str, Any]]:
    return [
        {"role": t["role"], "content": t["content"]}
        for t in turns
        if t["type"] == "message" and t["segment"] == segment
    ]


# ---- the thread ---------------------------------------------------------------------------
async def test_thread_equals_the_conversation_as_sent(proxy, sent, http) -> None:
    status, conv = await _get(
        http, proxy, f"/api/conversations/{MAIN}?project={quote(MAIN_PROJECT)}"
    )
    assert status == 200
    entries, ids = exchanges("main_session"), sent["main_session"]
    # Before compaction: everything the compaction request sent, plus the summary.
    compaction = next(
        i
        for i, e in enumerate(entries)
        if "create a detailed summary" in json.dumps(e["body"]["messages"][-1])
    )
    assert _messages(conv["turns"], 0) == [_expected(m) for m in final_thread(entries[compaction])]
    # After it: the new history, up to the last reply.
    assert _messages(conv["turns"], 1) == [_expected(m) for m in final_thread(entries[-1])]
    kinds = [t["type"] for t in conv["turns"]]
    assert kinds.count("compaction") == 1 and kinds.count("gap") == 0
    assert conv["incomplete"] is False

    # Every reply is linked to the request that produced it, with that request's usage.
    replies = {ids[i]: e["reply"] for i, e in enumerate(entries) if e["reply"]}
    answered = [t for t in conv["turns"] if t["type"] == "message" and t["role"] == "assistant"]
    assert len({t["requestId"] for t in answered}) == len(answered)
    for turn in answered:
        usage = replies[turn["requestId"]]["usage"]
        assert turn["usage"]["input_tokens"] == usage["input_tokens"]
        assert turn["usage"]["output_tokens"] == usage["output_tokens"]
        assert turn["usage"]["cache_read_input_tokens"] == usage["cache_read_input_tokens"]
        assert turn["cost"] > 0 and turn["responseTime"] is not None
        assert turn["stopReason"] == replies[turn["requestId"]]["stop_reason"]

    # The 529 shows once, as an error before the reply of its successful retry.
    overloaded = next(i for i, e in enumerate(entries) if e["status"] == 529)
    at = next(k for k, t in enumerate(conv["turns"]) if t["type"] == "error")
    assert conv["turns"][at]["requestId"] == ids[overloaded]
    assert conv["turns"][at]["error"]["type"] == "overloaded_error"
    assert conv["turns"][at + 1]["requestId"] == ids[overloaded + 1]

    # The subagent hangs under the turn whose Task call spawned it, its own thread whole.
    spawner = next(t for t in answered if t.get("subagents"))
    task = next(b for b in spawner["content"] if b.get("name") == "Task")
    (agent,) = spawner["subagents"]
    assert agent["agentId"] == "agent-7f3e2a91" and agent["toolUseId"] == task["id"]
    last_sub = max(
        i
        for i, e in enumerate(entries)
        if ("X-Claude-Code-Agent-Id", "agent-7f3e2a91") in map(tuple, e["headers"])
    )
    assert _messages(agent["turns"], 0) == [_expected(m) for m in final_thread(entries[last_sub])]
    assert conv["subagents"] == []

    # Side calls are listed, not threaded; count_tokens is not part of the conversation.
    assert [a["prompt"] for a in conv["auxiliary"]] == [
        "quota",
        "test_parse_invoice fails with a KeyError, can you fix it?",
    ]
    assert conv["requestCount"] == sum(1 for e in entries if "count_tokens" not in e["path"])
    assert conv["projectName"] == "acme-billing" and conv["subagentRequests"] == 2
    assert conv["errorCount"] == 1


def _shown(message: dict[str, Any]) -> dict[str, Any]:
    """A message as the thread shows it after 2026: also omitted thinking hidden (its
    count checked apart) and a compaction block without its encrypted twin."""
    blocks = []
    for block in _expected(message)["content"]:
        if block["type"] == "thinking" and not block["thinking"]:
            block = {"type": "thinking", "hidden": True}
        blocks.append({k: v for k, v in block.items() if k != "encrypted_content"})
    return {"role": message["role"], "content": blocks}


def _said(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "role": t["role"],
            "content": [{k: v for k, v in b.items() if k != "tokens"} for b in t["content"]],
        }
        for t in turns
        if t["type"] in ("message", "system")
    ]


async def test_claude_code_21_session(proxy, sent, http) -> None:
    status, conv = await _get(http, proxy, f"/api/conversations/{SESSION_21}")
    assert status == 200 and conv["incomplete"] is False
    entries, ids = exchanges("claude_code_21"), sent["claude_code_21"]
    turns = conv["turns"]
    # One history: up to the reply holding the compaction block, then on from it
    # (the later requests' histories start at the block).
    compacted = next(
        i
        for i, e in enumerate(entries)
        if any(b["type"] == "compaction" for b in e["reply"]["content"])
    )
    expected = [*final_thread(entries[compacted]), *final_thread(entries[-1])[1:]]
    assert _said(turns) == [_shown(m) for m in expected]
    kinds = [t["type"] for t in turns]
    assert kinds.count("compaction") == 1 and "gap" not in kinds and "new_history" not in kinds
    marker = turns[kinds.index("compaction")]
    assert marker["source"] == "server" and marker["requestId"] == ids[compacted]
    assert turns[kinds.index("compaction") + 1]["requestId"] == ids[compacted]

    # The mid-conversation system message: its own kind, never the prompt.
    (system,) = [t for t in turns if t["type"] == "system"]
    assert system["role"] == "system" and "confirmation" in system["content"][0]["text"]
    assert conv["firstMessage"].startswith("Add per-user rate limiting")

    # Omitted thinking: hidden, with the reply's thinking tokens.
    first = turns[1]
    assert first["content"][0] == {"type": "thinking", "hidden": True, "tokens": 180}
    assert first["thinkingTokens"] == 180

    # The fallback switch: requested, served, and the block's from/to/trigger.
    (switched,) = [t for t in turns if t.get("fallbacks")]
    assert (switched["model"], switched["servedModel"]) == ("claude-fable-5", "claude-opus-5-5")
    assert switched["fallbacks"] == [
        {
            "from": "claude-fable-5",
            "to": "claude-opus-5-5",
            "trigger": {"type": "refusal", "category": "cyber"},
        }
    ]

    # The subagent and the one it started, nested; tokens add up at every level.
    (a1,) = next(t for t in turns if t.get("subagents"))["subagents"]
    (b2,) = next(t for t in a1["turns"] if t.get("subagents"))["subagents"]
    assert (a1["agentId"], b2["agentId"], b2["parentAgentId"]) == (
        "agent-a1",
        "agent-b2",
        "agent-a1",
    )
    output = {"agent-a1": 0, "agent-b2": 0}
    for entry in entries:
        agent = dict(map(tuple, entry["headers"])).get("x-claude-code-agent-id")
        if agent:
            output[agent] += entry["reply"]["usage"]["output_tokens"]
    assert b2["subtreeTotals"]["outputTokens"] == output["agent-b2"]
    assert a1["subtreeTotals"]["outputTokens"] == output["agent-a1"] + output["agent-b2"]
    assert conv["subagentRequests"] == 3
    assert conv["outputTokens"] == sum(e["reply"]["usage"]["output_tokens"] for e in entries)

    # The list agrees, and the system message is not searchable.
    _, page = await _get(http, proxy, "/api/conversations?limit=100")
    listed = next(c for c in page["conversations"] if c["id"] == SESSION_21)
    for key in ("requestCount", "outputTokens", "cost", "firstMessage", "subagentRequests"):
        assert listed[key] == conv[key], key
    _, hits = await _get(http, proxy, "/api/conversations/search?q=confirmation")
    assert hits["total"] == 0
    _, hits = await _get(http, proxy, "/api/conversations/search?q=limiter")
    assert SESSION_21 in [c["id"] for c in hits["conversations"]]


def _json_schema(value: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable` becomes a null alternative."""
    if isinstance(value, list):
        return [_json_schema(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _json_schema(v) for k, v in value.items() if k != "nullable"}
    return {"anyOf": [out, {"type": "null"}]} if value.get("nullable") else out


async def test_the_2_1_thread_matches_its_documented_schemas(proxy, sent, http) -> None:
    _, spec = await _get(http, proxy, "/openapi.json")
    schemas = _json_schema(spec["components"]["schemas"])

    def check(name: str, instance: Any) -> None:
        schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
        jsonschema.Draft202012Validator(schema).validate(instance)

    _, conv = await _get(http, proxy, f"/api/conversations/{SESSION_21}")
    check("ConversationDetail", conv)
    (a1,) = next(t for t in conv["turns"] if t.get("subagents"))["subagents"]
    (b2,) = next(t for t in a1["turns"] if t.get("subagents"))["subagents"]
    for view in (a1, b2):
        check("SubagentThread", view)
        for turn in view["turns"]:
            check("ConversationTurn", turn)
    # The checks bite: a compaction summary of the wrong type, or a hidden flag, fails.
    with pytest.raises(jsonschema.ValidationError):
        check("ConversationTurn", {"type": "message", "thinkingTokens": "many"})
    with pytest.raises(jsonschema.ValidationError):
        check("SubagentThread", {**a1, "subtreeTotals": None})


async def test_legacy_client_and_sidechain(proxy, sent, http) -> None:
    status, conv = await _get(http, proxy, f"/api/conversations/{LEGACY}")
    assert status == 200
    entries = exchanges("legacy_session")
    assert conv["projectPath"] == "/Users/dana/src/legacy-app"
    assert _messages(conv["turns"], 0) == [_expected(m) for m in final_thread(entries[-1])]
    (agent,) = next(t for t in conv["turns"] if t.get("subagents"))["subagents"]
    assert agent["agentId"].startswith("sidechain-")
    assert _messages(agent["turns"], 0) == [_expected(m) for m in final_thread(entries[1])]


async def test_sdk_history_is_filled_from_the_body(proxy, sent, http) -> None:
    status, listing = await _get(http, proxy, "/api/conversations?model=sonnet&limit=100")
    sdk = next(c for c in listing["conversations"] if c["id"] not in (MAIN, LEGACY))
    status, conv = await _get(http, proxy, f"/api/conversations/{sdk['id']}")
    assert status == 200 and conv["incomplete"] is False
    entries = exchanges("sdk_conversation")
    assert _messages(conv["turns"], 0) == [_expected(m) for m in final_thread(entries[-1])]
    # The turns the client sent ready-made are marked as such.
    assert [t["source"] for t in conv["turns"][:2]] == ["history", "history"]


# ---- lists --------------------------------------------------------------------------------
async def test_list_newest_first_with_totals(proxy, sent, http) -> None:
    status, page = await _get(http, proxy, "/api/conversations")
    assert status == 200 and page["total"] == len(SESSIONS) and page["hasMore"] is False
    items = page["conversations"]
    assert [c["lastActivity"] for c in items] == sorted(
        (c["lastActivity"] for c in items), reverse=True
    )
    main = next(c for c in items if c["id"] == MAIN)
    entries = exchanges("main_session")
    replies = [e["reply"] for e in entries if e["reply"] and "count_tokens" not in e["path"]]
    assert main["outputTokens"] == sum(r["usage"]["output_tokens"] for r in replies)
    assert main["cacheReadTokens"] == sum(r["usage"]["cache_read_input_tokens"] for r in replies)
    assert main["firstMessage"] == "test_parse_invoice fails with a KeyError, can you fix it?"
    assert main["model"] == "claude-sonnet-4-5-20250929"
    assert main["duration"] > 0 and main["projectName"] == "acme-billing"
    # The list and the thread agree.
    _, detail = await _get(http, proxy, f"/api/conversations/{MAIN}")
    for key in ("requestCount", "totalTokens", "cost", "startTime", "lastActivity", "firstMessage"):
        assert detail[key] == main[key], key

    _, first = await _get(http, proxy, "/api/conversations?limit=2")
    _, second = await _get(http, proxy, "/api/conversations?limit=2&page=2")
    assert first["hasMore"] is True and second["hasMore"] is False
    assert [c["id"] for c in first["conversations"] + second["conversations"]] == [
        c["id"] for c in items
    ]
    _, haiku = await _get(http, proxy, "/api/conversations?model=haiku")
    assert [c["id"] for c in haiku["conversations"]] == [MAIN]


async def test_project_route_matches_the_path_as_a_value(proxy, sent, http) -> None:
    status, page = await _get(
        http, proxy, f"/api/conversations/project?project={quote(MAIN_PROJECT)}"
    )
    assert status == 200 and [c["id"] for c in page["conversations"]] == [MAIN]
    assert page["project"] == MAIN_PROJECT
    status, page = await _get(
        http, proxy, "/api/conversations/project?project=..%2F..%2Fetc%2Fpasswd"
    )
    assert status == 200 and page["total"] == 0
    status, body = await _get(http, proxy, f"/api/conversations/{MAIN}?project=%2Fsomewhere%2Felse")
    assert status == 404 and body["error"] == "Conversation not found"
    assert body["details"] == f"No conversation {MAIN} in project /somewhere/else"


# ---- search -------------------------------------------------------------------------------
async def test_search_words_tools_ranking_and_filters(proxy, sent, http) -> None:
    status, hits = await _get(http, proxy, "/api/conversations/search?q=Currency")
    assert status == 200 and [c["id"] for c in hits["conversations"]] == [MAIN]
    assert "currency" in hits["conversations"][0]["snippet"].lower()
    assert hits["words"] == ["currency"]
    # A tool name, used only inside the subagent.
    _, hits = await _get(http, proxy, "/api/conversations/search?q=grep")
    assert [c["id"] for c in hits["conversations"]] == [MAIN]
    _, hits = await _get(http, proxy, "/api/conversations/search?q=babel%20loader")
    assert [c["id"] for c in hits["conversations"]] == [LEGACY]
    _, hits = await _get(
        http, proxy, f"/api/conversations/search?q=babel&project={quote(MAIN_PROJECT)}"
    )
    assert hits["total"] == 0
    # Latest match first; a page of one says another follows.
    _, hits = await _get(http, proxy, "/api/conversations/search?q=the")
    latest = [c["lastMatch"] for c in hits["conversations"]]
    assert len(latest) >= 2 and latest == sorted(latest, reverse=True)
    assert hits["total"] == len(latest) and hits["hasMore"] is False
    _, first = await _get(http, proxy, "/api/conversations/search?q=the&limit=1")
    assert [c["id"] for c in first["conversations"]] == [hits["conversations"][0]["id"]]
    assert first["hasMore"] is True and first["total"] == 1
    _, second = await _get(http, proxy, "/api/conversations/search?q=the&limit=1&page=2")
    assert [c["id"] for c in second["conversations"]] == [hits["conversations"][1]["id"]]
    _, hits = await _get(
        http, proxy, "/api/conversations/search?q=currency&start=2999-01-01T00:00:00Z"
    )
    assert hits["total"] == 0
    # Words of injected context (CLAUDE.md in a system reminder) are not searched.
    _, hits = await _get(http, proxy, "/api/conversations/search?q=claudemd")
    assert hits["total"] == 0


# ---- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/api/conversations?page=0",
        "/api/conversations?limit=0",
        "/api/conversations?limit=101",
        "/api/conversations?limit=ten",
        "/api/conversations/project",
        "/api/conversations/project?project=%01",
        "/api/conversations/search",
        "/api/conversations/search?q=%21%21",
        "/api/conversations/search?q=" + "a%20" * 11 + "b",
        "/api/conversations/search?q=" + "x" * 201,
        "/api/conversations/search?q=ok&start=soon",
        "/api/conversations/search?q=ok&start=2026-02-01&end=2026-01-01",
        "/api/conversations/" + "a" * 129,
        "/api/conversations/bad%20id",
    ],
)
async def test_bad_parameters_are_400(proxy, http, path: str) -> None:
    status, body = await _get(http, proxy, path)
    assert status == 400, body
    assert set(body) == {"error", "details"}, body
    assert body["error"].startswith("Invalid parameter '"), body
    parameter = body["error"].removeprefix("Invalid parameter '").removesuffix("'")
    assert body["details"].startswith(f"{parameter}: "), body


async def test_unknown_conversation_is_404(proxy, http) -> None:
    status, body = await _get(http, proxy, "/api/conversations/0123456789abcdef")
    assert status == 404
    assert body == {
        "error": "Conversation not found",
        "details": "No conversation 0123456789abcdef",
    }


async def test_openapi_declares_the_routes(proxy, http) -> None:
    _, spec = await _get(http, proxy, "/openapi.json")
    paths = spec["paths"]
    for path in (
        "/api/conversations",
        "/api/conversations/{id}",
        "/api/conversations/project",
        "/api/conversations/search",
    ):
        assert "get" in paths[path], path
    assert {"400", "404"} <= set(paths["/api/conversations/{id}"]["get"]["responses"])
    schemas = spec["components"]["schemas"]
    assert {"Conversation", "ConversationList", "ConversationDetail", "ConversationTurn"} <= set(
        schemas
    )
    listed = schemas["Conversation"]["properties"]
    for field in (
        "id",
        "requestCount",
        "startTime",
        "lastActivity",
        "duration",
        "firstMessage",
        "projectPath",
        "projectName",
        "model",
    ):
        assert field in listed, field
