"""The API's conversation list (`/api/conversations`) and search read bounded,
index-backed ranges: a page reads the summaries before it and its own, the
total is a count, and a search reads its newest matching requests in windows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from conversations import repo as conversations_repo
from conversations.repo import ConversationsRepo
from storage.mongo import CONVERSATIONS, REQUESTS, ensure_all_indexes
from tests.aggregate_counter import count_aggregate_rows

NOW = datetime.now(UTC).replace(microsecond=0)
PROJECTS = ("/src/alpha", "/src/beta", "/src/gamma")


def summaries(count: int) -> list[dict[str, Any]]:
    """Summaries whose last activity spreads from minutes to two years back, some
    sharing one instant."""
    rng = random.Random(11)
    out = []
    for i in range(count):
        back = timedelta(minutes=rng.choice((1, 30, 600, 20_000, 400_000)) * rng.random())
        at = (NOW - back).replace(microsecond=0) if i % 9 else NOW - timedelta(hours=3)
        out.append(
            {
                "_id": f"conv-{i:04d}",
                "requestCount": 1 + i % 5,
                "startTime": at - timedelta(minutes=5),
                "lastActivity": at,
                "projectPath": PROJECTS[i % 3],
                "models": ["claude-sonnet-4-5"] if i % 2 else ["claude-haiku-4-5"],
                "first": {"at": at, "n": 1, "rid": "r", "prompt": f"prompt {i}"},
                "last": {"at": at, "n": 1, "rid": "r", "model": "claude-sonnet-4-5"},
                "totalTokens": i,
                "cost": 0.0,
            }
        )
    return out


def newest_first(docs: list[dict[str, Any]]) -> list[str]:
    return [
        d["_id"] for d in sorted(docs, key=lambda d: (-d["lastActivity"].timestamp(), d["_id"]))
    ]


@pytest.fixture
async def listed(db: AsyncDatabase[Any]) -> tuple[ConversationsRepo, list[dict[str, Any]]]:
    await ensure_all_indexes(db, None)
    docs = summaries(160)
    await db[CONVERSATIONS].insert_many([dict(d) for d in docs])
    return ConversationsRepo(db), docs


@pytest.mark.parametrize(
    ("model", "project"),
    [(None, None), (None, "/src/beta"), ("HAIKU", None), ("opus", None)],
)
async def test_pages_are_the_summaries_newest_first(
    listed: tuple[ConversationsRepo, list[dict[str, Any]]],
    model: str | None,
    project: str | None,
) -> None:
    repo, docs = listed
    kept = [
        d
        for d in docs
        if (project is None or d["projectPath"] == project)
        and (model is None or any(model.lower() in m for m in d["models"]))
    ]
    expected = newest_first(kept)
    seen: list[str] = []
    for page in range(1, 40):
        items, total = await repo.page(page, 7, model=model, project=project)
        assert total == len(expected)
        if not items:
            break
        seen += [i["id"] for i in items]
    assert seen == expected


async def test_a_page_reads_the_summaries_before_it_not_all_of_them(
    listed: tuple[ConversationsRepo, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = listed
    read = count_aggregate_rows(monkeypatch, CONVERSATIONS)
    items, total = await repo.page(3, 5)
    assert len(items) == 5 and total == 160
    assert sum(read) <= 15  # the first three pages' summaries, not 160


async def test_search_lists_latest_matches_first_within_its_budget(
    db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await ensure_all_indexes(db, None)
    docs = [
        {
            "_id": f"{i:032x}",
            "requestId": f"{i:032x}",
            "timestamp": NOW - timedelta(hours=i),
            "conversation": {
                "id": f"conv-{i % 4}",
                "projectPath": PROJECTS[i % 2],
                "words": ["currency", "parser"] if i % 3 else ["currency"],
            },
        }
        for i in range(60)
    ]
    await db[REQUESTS].insert_many(docs)
    repo = ConversationsRepo(db)
    matching = [d for d in docs if "parser" in d["conversation"]["words"]]  # newest first
    newest: dict[str, str] = {}
    for d in matching:
        newest.setdefault(d["conversation"]["id"], d["requestId"])
    items, total, more = await repo.search(["currency", "parser"], None, None, None, 1, 10)
    assert [(i["id"], i["matchedRequestId"]) for i in items] == list(newest.items())
    assert sum(i["matches"] for i in items) == len(matching) and (total, more) == (4, False)
    first, total, more = await repo.search(["currency", "parser"], None, None, None, 1, 3)
    assert [i["id"] for i in first] == list(newest)[:3] and (total, more) == (3, True)
    second, total, more = await repo.search(["currency", "parser"], None, None, None, 2, 3)
    assert [i["id"] for i in second] == list(newest)[3:] and (total, more) == (4, False)
    # Only the newest API_SEARCH_DOCS matching requests count.
    monkeypatch.setattr(conversations_repo, "API_SEARCH_DOCS", 5)
    capped, total, more = await repo.search(["currency"], "/src/alpha", None, None, 1, 10)
    assert sum(i["matches"] for i in capped) == 5 and (total, more) == (len(capped), False)
    assert {i["id"] for i in capped} <= {"conv-0", "conv-2"}
