"""Every read the dashboard and `/api/*` make of the request log is bounded and
index-backed: watched at the driver (command monitoring) while every read path
runs over a realistic log (bench.stats_data's Claude Code traffic, stored the
way the recorder stores it)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from bench.session_traffic import ConversationTraffic
from bench.stats_data import dashboard_documents
from conversations.repo import ConversationsRepo
from dashboard.detail_store import body_text, find_document
from dashboard.requests_page import filter_options
from recording.quarantine import Quarantine
from recording.store import RecordStore
from stats.derived_writer import BatchTag
from storage import queries as q
from storage.mongo import REQUESTS, ensure_all_indexes
from storage.requests_repo import RequestsRepo

COUNT = 600
NOW = datetime.now(UTC)
# The largest page any read may ask for (the API's summary maximum), and the
# most rows a deep offset reads beyond its page (a minute of this log).
MAX_ROWS = q.MAX_SUMMARY_LIMIT + 1
# A `$count` may only count a ragged end of a range: under a minute of log.
MAX_COUNTED = timedelta(minutes=1)


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.seen.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def on_requests(self) -> list[tuple[str, dict[str, Any]]]:
        return [(name, cmd) for name, cmd in self.seen if cmd.get(name) == REQUESTS]


@pytest.fixture
async def logged(
    db: AsyncDatabase[Any], tmp_path: Path
) -> tuple[AsyncDatabase[Any], ConversationTraffic, list[dict[str, Any]]]:
    await ensure_all_indexes(db, None)
    traffic = ConversationTraffic(7, COUNT)
    docs = list(dashboard_documents(COUNT, NOW - timedelta(days=3), timedelta(days=3), 7, traffic))
    store = RecordStore(db, Quarantine(tmp_path, 1 << 26))
    recorder = secrets.token_hex(8)
    for seq, start in enumerate(range(0, COUNT, 200), start=1):
        await store.store([dict(d) for d in docs[start : start + 200]], BatchTag(recorder, seq))
    return db, traffic, docs


@pytest.fixture
async def watched(
    mongo_uri: str, logged: tuple[AsyncDatabase[Any], ConversationTraffic, list[dict[str, Any]]]
) -> tuple[AsyncDatabase[Any], Commands, ConversationTraffic, list[dict[str, Any]]]:
    db, traffic, docs = logged
    commands = Commands()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[commands]
    )
    yield client[db.name], commands, traffic, docs
    await client.close()


async def every_read_path(
    db: AsyncDatabase[Any], traffic: ConversationTraffic, docs: list[dict[str, Any]]
) -> None:
    """What the dashboard's pages and the `/api/*` routes read, each once."""
    requests = RequestsRepo(db)
    word = traffic.vocab.words[3]
    sample = docs[COUNT // 2]
    for f in (
        q.RequestFilter(),
        q.RequestFilter(model=sample["model"], status="error"),
        q.RequestFilter(organization="org-beta", streaming=True, outcome="completed"),
        q.RequestFilter(session=sample["sessionId"]),
        q.RequestFilter(session_prefix=sample["sessionId"][:8]),
        q.RequestFilter(words=(word,)),
        q.RequestFilter(words=(word, traffic.vocab.words[0]), start=NOW - timedelta(days=1)),
    ):
        page = await requests.list_page(f, NOW, limit=200)
        await requests.list_page(f, NOW, cursor=page.last, limit=25)
        if page.first is not None:
            await requests.list_page(f, NOW, cursor=page.first, newest_first=False)
    await requests.by_id_prefix(sample["requestId"][:6], q.RequestFilter(), 50)
    await requests.completed_since(NOW - timedelta(hours=2), 200)
    await requests.page(1, 1000, None)
    await requests.page(7, 50, "SONNET")
    await requests.summaries(None, None, None, 0, 0)
    await requests.summaries("haiku", NOW - timedelta(hours=30, seconds=7), NOW, 150, 100)
    await requests.latest_date()
    await requests.get(sample["requestId"])
    found = await find_document(db, traffic.large_ids[0])
    assert found is not None
    await body_text(db, found, "request", 64 * 1024)
    await filter_options(db)
    conversations = ConversationsRepo(db)
    await conversations.page(1, 100)
    await conversations.search([word], None, None, None, 1, 20)
    await conversations.search([word], sample["conversation"]["projectPath"], None, None, 2, 5)
    assert traffic.long_id is not None
    await conversations.get(traffic.long_id, None)


def _stages(command: dict[str, Any]) -> list[dict[str, Any]]:
    return list(command.get("pipeline") or [])


def _bounded(name: str, command: dict[str, Any]) -> bool:
    if name == "find":
        return 0 < int(command.get("limit") or 0) <= MAX_ROWS
    if name == "aggregate":
        stages = _stages(command)
        limits = [s["$limit"] for s in stages if "$limit" in s]
        if limits:
            return 0 < min(limits) <= MAX_ROWS
        if stages and "$count" in stages[-1]:
            window = stages[0].get("$match", {}).get("timestamp", {})
            low, high = window.get("$gte"), window.get("$lt")
            return low is not None and high is not None and high - low <= MAX_COUNTED
    return name in ("getMore", "killCursors", "listIndexes")


async def test_every_read_of_the_log_is_bounded_and_never_a_count_or_a_regex(
    watched: tuple[AsyncDatabase[Any], Commands, ConversationTraffic, list[dict[str, Any]]],
) -> None:
    db, commands, traffic, docs = watched
    await every_read_path(db, traffic, docs)
    reads = commands.on_requests()
    assert len(reads) > 40, "the paths must have read the log"
    unbounded = [(n, c) for n, c in reads if not _bounded(n, c)]
    assert unbounded == [], json.dumps(unbounded, default=str)[:2000]
    assert not [n for n, _ in reads if n in ("count", "distinct")]
    text = json.dumps([c for _, c in reads], default=str)
    assert "$regex" not in text and "$where" not in text and "$skip" not in text


async def test_the_bound_catches_an_unbounded_read(
    watched: tuple[AsyncDatabase[Any], Commands, ConversationTraffic, list[dict[str, Any]]],
) -> None:
    """The listener sees what the rule forbids (so the test above can fail)."""
    db, commands, _, _ = watched
    await db[REQUESTS].find({}).to_list(None)
    await db[REQUESTS].count_documents({})
    await (await db[REQUESTS].aggregate([{"$match": {}}, {"$count": "n"}])).to_list(None)
    assert [_bounded(n, c) for n, c in commands.on_requests()] == [False, False, False]
