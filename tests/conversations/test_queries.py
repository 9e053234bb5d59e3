"""Conversation queries: as data, then run against the test database."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from sanic.helpers import json_dumps

from conversations import queries as q
from conversations import search as cs
from conversations.repo import ConversationsRepo, json_default
from conversations.summary_writer import summary_writer
from conversations.thread import summary
from storage import bodies
from storage.bodies import offload_bodies
from storage.mongo import CONVERSATIONS, REQUESTS, ensure_conversation_indexes, ensure_indexes
from tests.conversations.helpers import T0, documents_of
from tests.fixtures.conversations import SESSIONS, exchanges, final_thread

SESSION_21 = "7a1c9e4b-2f3d-4e8a-9b6c-0d5e7f1a2b3c"
MAIN = "5d0c2f1a-7b9e-4c3d-8a61-2f4e9b7c1d03"
LEGACY = "b7e41f09-2c5d-4a86-9e13-6f0a8d2c4b75"


def _docs() -> list[dict[str, Any]]:
    """The recorded sessions, an hour apart (main first, the Claude Code 2.1 one last)."""
    out: list[dict[str, Any]] = []
    for hour, name in enumerate(SESSIONS):
        out += documents_of(exchanges(name), T0 + timedelta(hours=hour))
    return out


# ---- as data ------------------------------------------------------------------------------
def test_queries_start_from_indexed_fields() -> None:
    # The lists read the summaries on (projectPath,) lastActivity: see the indexes below.
    assert q.list_filter("all") == {} and q.list_filter(None) == {}
    assert q.list_filter("a.b") == {"models": {"$regex": r"a\.b", "$options": "i"}}
    assert q.list_project_filter("/p") == {"projectPath": "/p"}
    assert q.LIST_SORT == [("lastActivity", -1), ("_id", 1)]
    assert q.summary_pipeline(["a"])[0] == {"$match": {"conversation.id": {"$in": ["a"]}}}


def test_project_is_a_value_and_search_is_word_based() -> None:
    # Regex and path syntax in a project stay literal characters of one value.
    assert q.project_filter("/a/.*/../b") == {"conversation.projectPath": "/a/.*/../b"}
    words = q.query_words("KeyError in parse_invoice")
    assert words == ["keyerror", "in", "parse_invoice", "parse", "invoice"]
    assert (
        q.ID_PATTERN.match(MAIN) and not q.ID_PATTERN.match("../x") and not q.ID_PATTERN.match("")
    )


# ---- against the database -----------------------------------------------------------------
@pytest.fixture
async def loaded(db: AsyncDatabase[Any]) -> AsyncDatabase[Any]:
    await ensure_indexes(db[REQUESTS], None)
    await ensure_conversation_indexes(db[CONVERSATIONS])
    docs = _docs()
    await db[REQUESTS].insert_many(docs)
    assert await summary_writer(db[CONVERSATIONS]).apply(docs)  # what the log writer does
    return db


async def _run(db: AsyncDatabase[Any], pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return await (await db[REQUESTS].aggregate(pipeline)).to_list(None)


async def test_pages_newest_activity_first(loaded: AsyncDatabase[Any]) -> None:
    repo = ConversationsRepo(loaded)
    items, total = await repo.page(1, 3)
    ids = [item["id"] for item in items]
    assert ids[0] == SESSION_21 and ids[2:] == [LEGACY] and total == len(SESSIONS)
    items, _ = await repo.page(2, 3)
    assert [item["id"] for item in items] == [MAIN]
    items, total = await repo.page(1, 10, model="haiku")
    assert [item["id"] for item in items] == [MAIN] and total == 1
    items, total = await repo.page(1, 10, project="/Users/dana/src/legacy-app")
    assert [item["id"] for item in items] == [LEGACY] and total == 1


async def test_pipeline_summaries_match_the_python_summary(loaded: AsyncDatabase[Any]) -> None:
    repo = ConversationsRepo(loaded)
    items, total = await repo.page(1, 10)
    assert total == len(SESSIONS)
    docs = [d for d in _docs() if d["conversation"]]
    for item in items:
        expected = summary([d for d in docs if d["conversation"]["id"] == item["id"]])
        for key, value in expected.items():
            got = item[key]
            if hasattr(value, "isoformat"):
                value = value.isoformat().replace("+00:00", "Z")
            if isinstance(value, float):
                assert got == pytest.approx(value), key
            else:
                assert got == value, (item["id"], key)


async def test_search_lists_conversations_by_latest_match(loaded: AsyncDatabase[Any]) -> None:
    async def search(words: list[str], **kw: Any) -> list[str]:
        found = await cs.search(loaded, words, limit=10, **kw)
        return [h.conversation_id for h in found.hits]

    assert await search(["currency"]) == [MAIN]
    hits = (await cs.search(loaded, ["the"], limit=10)).hits
    assert [h.last_match for h in hits] == sorted((h.last_match for h in hits), reverse=True)
    assert len(hits) >= 2 and hits[0].conversation_id == SESSION_21  # logged last
    assert await search(["currency", "babel"]) == []  # every word must be in one request
    assert await search(["babel"], project="/Users/dana/src/legacy-app") == [LEGACY]
    assert await search(["babel"], project="/home/dev/acme-billing") == []
    assert await search(["currency"], start=T0 + timedelta(hours=1)) == []
    assert await search(["currency"], end=T0 + timedelta(hours=1)) == [MAIN]


async def test_queries_use_the_conversation_indexes(loaded: AsyncDatabase[Any]) -> None:
    async def plan(pipeline: list[dict[str, Any]]) -> str:
        explained = await loaded.command("aggregate", REQUESTS, pipeline=pipeline, explain=True)
        return json.dumps(explained, default=str)

    assert "conversation_time" in await plan([{"$match": q.thread_filter(MAIN)}])
    assert "conversation_time" in await plan(q.summary_pipeline([MAIN, LEGACY]))
    project = q.project_filter("/home/dev/acme-billing")
    assert "conversation_project_time" in await plan([{"$match": project}])


async def test_repo_fills_gaps_from_bodies_in_gridfs(
    db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bodies, "LARGE_BODY_BYTES", 10)  # every body goes to GridFS
    entries = exchanges("sdk_conversation")
    docs = documents_of(entries)
    await db[REQUESTS].insert_many([await offload_bodies(db, d) for d in docs])
    conv = await ConversationsRepo(db).get(docs[0]["conversation"]["id"], None)
    assert conv is not None and conv["incomplete"] is False
    shown = [{"role": t["role"], "content": t["content"]} for t in conv["turns"]]
    assert [m["role"] for m in shown] == [m["role"] for m in final_thread(entries[-1])]
    assert shown[1]["content"] == [{"type": "text", "text": "Bonjour."}]
    assert await ConversationsRepo(db).get(docs[0]["conversation"]["id"], "/elsewhere") is None
    assert await ConversationsRepo(db).get("unknown-id", None) is None


async def test_subagents_at_every_depth_count_in_the_conversation(
    loaded: AsyncDatabase[Any],
) -> None:
    docs = [d for d in _docs() if d["conversation"] and d["conversation"]["id"] == SESSION_21]
    nested = [d for d in docs if d["conversation"]["parentAgentId"]]
    assert nested and all(d["conversation"]["thread"] == "subagent" for d in nested)
    repo = ConversationsRepo(loaded)
    listed = next(i for i in (await repo.page(1, 10))[0] if i["id"] == SESSION_21)
    (grouped,) = await repo._summaries([SESSION_21])
    for item in (listed, grouped):
        assert item["requestCount"] == len(docs)
        assert item["subagentRequests"] == sum(
            1 for d in docs if d["conversation"]["thread"] == "subagent"
        )
        assert item["outputTokens"] == sum(d["usage"]["output_tokens"] for d in docs)
        assert item["cost"] == pytest.approx(sum(d["cost"]["usd"] for d in docs))
        # The first prompt is the user's, never the mid-conversation system message.
        assert item["firstMessage"] == (
            "Add per-user rate limiting to POST /upload: at most 10 uploads a minute."
        )
    thread = await repo.get(SESSION_21, "/home/dev/orbit-api")
    assert thread is not None and thread["incomplete"] is False
    turns = thread["turns"]
    # One history across the compaction: what the projection reads is enough to join it.
    assert [t["type"] for t in turns].count("compaction") == 1
    assert {t["segment"] for t in turns} == {0}
    switched = next(t for t in turns if t.get("fallbacks"))
    assert (switched["model"], switched["servedModel"]) == ("claude-fable-5", "claude-opus-5-5")
    assert turns[1]["content"][0] == {"type": "thinking", "hidden": True, "tokens": 180}
    assert thread["outputTokens"] == listed["outputTokens"]


async def test_a_thread_encodes_as_the_api_answers_it(loaded: AsyncDatabase[Any]) -> None:
    """The handler encodes `thread` once with `json_default` (by Sanic's encoder,
    ujson or json): the same JSON as `get`, which converts every datetime first."""
    repo = ConversationsRepo(loaded)
    raw = await repo.thread(SESSION_21, None)
    assert raw is not None and isinstance(raw["startTime"], datetime)
    expected = await repo.get(SESSION_21, None)
    assert expected is not None and expected["startTime"].endswith("Z")
    assert json.loads(json.dumps(raw, default=json_default)) == expected
    assert json.loads(json_dumps(raw, default=json_default)) == expected
    with pytest.raises(TypeError):
        json_default(object())
