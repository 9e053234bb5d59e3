"""Conversation summaries kept by the log writer: equal to the grouping of the
request log they replace, exactly-once under replays and retried batches,
rebuilt from the log, and read through their indexes."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, BulkWriteError

from conversations import queries as q
from conversations.repo import ConversationsRepo, _jsonable
from conversations.summaries import fold
from conversations.summary_writer import summary_writer
from conversations.thread import summary
from recording.quarantine import Quarantine
from recording.rebuild_rollups import rebuild_conversations
from recording.store import RecordStore
from stats.derived_writer import BatchTag
from storage.mongo import CONVERSATIONS, REQUESTS, ensure_conversation_indexes, ensure_indexes
from storage.requests_repo import RequestsRepo
from tests.conversations.helpers import T0, documents_of
from tests.fixtures.conversations import SESSIONS, exchanges

MAIN = "5d0c2f1a-7b9e-4c3d-8a61-2f4e9b7c1d03"
SESSION_21 = "7a1c9e4b-2f3d-4e8a-9b6c-0d5e7f1a2b3c"
LEGACY = "b7e41f09-2c5d-4a86-9e13-6f0a8d2c4b75"
SIDE_ONLY = "side-calls-only"


def _docs() -> list[dict[str, Any]]:
    """The recorded sessions an hour apart, plus a conversation made only of side
    calls to a model without a price (no main thread: first prompt and model come
    from any request; its requests are unpriced)."""
    out: list[dict[str, Any]] = []
    for hour, name in enumerate(SESSIONS):
        out += documents_of(exchanges(name), T0 + timedelta(hours=hour))
    side = [d for d in out if d["conversation"] and d["conversation"]["thread"] == "auxiliary"]
    for number, doc in enumerate(side):
        extra = copy.deepcopy(doc)
        extra["_id"] = extra["requestId"] = f"side-{number}"
        extra["timestamp"] += timedelta(hours=5)
        extra["response"]["completedAt"] += timedelta(hours=5)
        extra.update(model=f"vendor-Model.{number}", cost=None, unpriced=True)
        extra["conversation"]["id"] = SIDE_ONLY
        out.append(extra)
    assert len(side) >= 2
    return out


def _expected(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    with_conversation = [d for d in docs if d["conversation"]]
    ids = {d["conversation"]["id"] for d in with_conversation}
    return {
        cid: _jsonable(summary([d for d in with_conversation if d["conversation"]["id"] == cid]))
        for cid in ids
    }


def _assert_same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert set(got) == set(expected), got["id"]
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value), (got["id"], key)
        else:
            assert got[key] == value, (got["id"], key)


class _Batches:
    """The recorder's store, fed numbered batches the way the recorder does."""

    def __init__(self, db: AsyncDatabase[Any], tmp_path: Path) -> None:
        self.store = RecordStore(db, Quarantine(tmp_path / "quarantine", 1 << 20))
        self.seq = 0

    async def insert_documents(
        self, documents: list[dict[str, Any]], *, redo: bool = False
    ) -> None:
        if not redo:
            self.seq += 1
        await self.store.store(documents, BatchTag("5ca1ab1e0000", self.seq))


async def _writer(db: AsyncDatabase[Any], tmp_path: Path) -> _Batches:
    await ensure_indexes(db[REQUESTS], None)
    await ensure_conversation_indexes(db[CONVERSATIONS])
    return _Batches(db, tmp_path)


async def _listed(db: AsyncDatabase[Any]) -> dict[str, dict[str, Any]]:
    items, total = await ConversationsRepo(db).page(1, 100)
    assert total == len(items)
    return {item["id"]: item for item in items}


async def test_writer_summaries_equal_the_grouped_request_log(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    docs = _docs()
    writer = await _writer(db, tmp_path)
    # In an order unlike the log's and in several batches: the updates commute.
    shuffled = docs[::-1]
    for start in range(0, len(shuffled), 4):
        await writer.insert_documents(copy.deepcopy(shuffled[start : start + 4]))
    listed = await _listed(db)
    expected = _expected(docs)
    assert set(listed) == set(expected) and len(expected) == len(SESSIONS) + 1
    # The grouping the list ran before (and search still runs on the request log).
    grouped = {s["id"]: s for s in await ConversationsRepo(db)._summaries(list(expected))}
    for cid, item in listed.items():
        _assert_same(item, expected[cid])
        _assert_same(item, grouped[cid])
    assert listed[MAIN]["subagentRequests"] and listed[MAIN]["errorCount"]
    side = listed[SIDE_ONLY]
    assert side["unpricedRequests"] == side["requestCount"] >= 2 and side["cost"] == 0
    assert side["model"] == f"vendor-Model.{side['requestCount'] - 1}"
    assert [i["id"] for i in (await ConversationsRepo(db).page(1, 2))[0]] == [
        SIDE_ONLY,
        SESSION_21,  # the newest recorded session
    ]


async def test_redone_batches_are_not_counted_twice(db: AsyncDatabase[Any], tmp_path: Path) -> None:
    docs = _docs()
    writer = await _writer(db, tmp_path)
    await writer.insert_documents(copy.deepcopy(docs[:12]))
    # A recorder restarted after storing it redoes the same batch, same number.
    await writer.insert_documents(copy.deepcopy(docs[:12]), redo=True)
    await writer.insert_documents(copy.deepcopy(docs[12:]))
    listed = await _listed(db)
    for cid, item in _expected(docs).items():
        _assert_same(listed[cid], item)


class _Flaky:
    """The summaries collection, with its next `bulk_write` failing on the
    network: before the server saw it, or (`landed`) after it applied it."""

    def __init__(self, collection: AsyncCollection[Any], *, landed: bool = False) -> None:
        self._collection = collection
        self.landed = landed
        self.fail = True

    async def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail:
            self.fail = False
            if self.landed:
                await self._collection.bulk_write(*args, **kwargs)
            raise AutoReconnect("connection reset")
        return await self._collection.bulk_write(*args, **kwargs)


@pytest.mark.parametrize("landed", [False, True])
async def test_a_failed_update_raises_and_its_retry_counts_once(
    db: AsyncDatabase[Any], landed: bool
) -> None:
    docs = [d for d in _docs() if d["conversation"]]
    writer = summary_writer(_Flaky(db[CONVERSATIONS], landed=landed))  # type: ignore[arg-type]
    tag = BatchTag("5ca1ab1e0000", 1)
    with pytest.raises(AutoReconnect):
        await writer.apply(docs, tag)
    assert await writer.apply(docs, tag) == (0 if landed else len(SESSIONS) + 1)
    assert await writer.apply(docs, tag) == 0
    listed = await _listed(db)
    for cid, item in _expected(docs).items():
        _assert_same(listed[cid], item)


async def test_an_update_the_server_refuses_raises_and_the_retry_completes_the_batch(
    db: AsyncDatabase[Any],
) -> None:
    docs = [d for d in _docs() if d["conversation"]]
    writer = summary_writer(db[CONVERSATIONS])
    await writer.apply(docs, BatchTag("5ca1ab1e0000", 1))
    listed = await _listed(db)
    # A corrupt summary refuses its update: the others land, the batch raises.
    await db[CONVERSATIONS].update_one({"_id": LEGACY}, {"$set": {"requestCount": "x"}})
    again = [d for d in docs if d["conversation"]["id"] in (MAIN, LEGACY)]
    tag = BatchTag("5ca1ab1e0000", 2)
    with pytest.raises(BulkWriteError):
        await writer.apply(again, tag)
    await db[CONVERSATIONS].delete_one({"_id": LEGACY})
    # The retry of the same batch writes only the summary it had missed.
    assert await writer.apply(again, tag) == 1
    main = await db[CONVERSATIONS].find_one({"_id": MAIN})
    assert main is not None and main["requestCount"] == 2 * listed[MAIN]["requestCount"]
    legacy = await db[CONVERSATIONS].find_one({"_id": LEGACY})
    assert legacy is not None and legacy["requestCount"] == listed[LEGACY]["requestCount"]


async def test_rebuild_reproduces_the_summaries(db: AsyncDatabase[Any], tmp_path: Path) -> None:
    docs = _docs()
    writer = await _writer(db, tmp_path)
    await writer.insert_documents(copy.deepcopy(docs))
    kept = await _listed(db)
    await db[CONVERSATIONS].insert_one({"_id": "stale", "lastActivity": T0})
    read, written = await rebuild_conversations(db, batch=2)
    assert read == sum(1 for d in docs if d["conversation"]) and written == len(kept)
    rebuilt = await _listed(db)
    assert set(rebuilt) == set(kept)
    for cid, item in kept.items():
        _assert_same(rebuilt[cid], item)


async def test_model_filter_is_a_case_insensitive_literal_substring(
    db: AsyncDatabase[Any], tmp_path: Path
) -> None:
    writer = await _writer(db, tmp_path)
    await writer.insert_documents(_docs())
    repo = ConversationsRepo(db)

    async def ids(model: str) -> tuple[list[str], int]:
        items, total = await repo.page(1, 10, model=model)
        return [i["id"] for i in items], total

    assert await ids("HAIKU") == ([MAIN], 1)  # only its side calls used haiku
    assert await ids("model.1") == ([SIDE_ONLY], 1)
    assert await ids("model.*1") == ([], 0)  # regex syntax stays literal
    assert (await ids("all"))[1] == len(SESSIONS) + 1


async def test_list_queries_use_the_summary_indexes(db: AsyncDatabase[Any]) -> None:
    await ensure_conversation_indexes(db[CONVERSATIONS])
    await db[CONVERSATIONS].bulk_write([d.update() for d in fold(_docs()).values()])

    async def plan(where: dict[str, Any]) -> str:
        explained = await db.command(
            "explain",
            {
                "find": CONVERSATIONS,
                "filter": where,
                "sort": dict(q.LIST_SORT),
                "skip": 1,
                "limit": 2,
            },
        )
        return json.dumps(explained["queryPlanner"]["winningPlan"], default=str)

    everything = await plan(q.list_filter(None))
    assert '"last_activity"' in everything and "COLLSCAN" not in everything
    project = await plan(q.list_project_filter("/home/dev/acme-billing"))
    assert "project_last_activity" in project and "COLLSCAN" not in project


async def test_indexes_retention_and_delete_all(db: AsyncDatabase[Any], tmp_path: Path) -> None:
    async def ttl() -> Any:
        indexes = await (await db[CONVERSATIONS].list_indexes()).to_list(None)
        return next(
            (ix.get("expireAfterSeconds") for ix in indexes if ix["name"] == "last_activity_ttl"),
            None,
        )

    writer = await _writer(db, tmp_path)
    await ensure_conversation_indexes(db[CONVERSATIONS], 30)
    assert await ttl() == 30 * 86400
    await ensure_conversation_indexes(db[CONVERSATIONS], None)
    assert await ttl() is None
    await writer.insert_documents(_docs())
    assert await db[CONVERSATIONS].count_documents({}) == len(SESSIONS) + 1
    await RequestsRepo(db).delete_all()
    assert await db[CONVERSATIONS].count_documents({}) == 0
    assert await ConversationsRepo(db).page(1, 10) == ([], 0)
