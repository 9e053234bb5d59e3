"""The request list against a real database (SecantusDB, or MONGODB_URI's MongoDB):
keyset pages in time windows, every filter, the id search, the tail's read and
the caps of the API's list reads."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from conversations.text import words_of
from stats.rollups import ROLLUPS, fold
from storage import list_plan as lp
from storage import queries as q
from storage.mongo import REQUESTS, ensure_indexes
from storage.requests_repo import RequestsRepo

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODELS = ("claude-opus-5-5", "claude-sonnet-4-5", "claude-haiku-4-5")
STATUSES = (200, 200, 200, 429, 529, 400)
OUTCOMES = ("completed", "completed", "upstream_error", "client_closed")
PROMPTS = ("fix the migration", "write tests for the parser", "explain the migration plan")


def make_docs(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Documents with uneven gaps (seconds to months), runs of equal timestamps
    and every field a filter reads."""
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    when = NOW
    for i in range(count):
        if i % 7 != 3:  # every seventh shares the previous timestamp
            when -= rng.choice(
                (timedelta(milliseconds=1), timedelta(seconds=3), timedelta(hours=5))
                + (timedelta(days=40),) * (i % 11 == 0)
            )
        request_id = f"{rng.getrandbits(128):032x}"
        status = STATUSES[i % len(STATUSES)]
        docs.append(
            {
                "_id": request_id,
                "requestId": request_id,
                "timestamp": when,
                "model": MODELS[i % 3],
                "statusCode": status,
                "outcome": OUTCOMES[i % 4] if status == 200 else "upstream_error",
                "isStreaming": i % 2 == 0,
                "sessionId": f"{i % 5:08x}-0000-4000-8000-{i % 5:012x}",
                "organizationId": f"org-{i % 2}",
                "tokens": i,
                "cost": {"usd": i / 1000},
                "response": {"completedAt": when + timedelta(seconds=i % 13)},
                "conversation": {"words": words_of(PROMPTS[i % 3])},
                "request": {"body": "x" * 500},
            }
        )
    return docs


def order(docs: list[dict[str, Any]]) -> list[str]:
    return [d["requestId"] for d in sorted(docs, key=lp.row_key, reverse=True)]


@pytest.fixture
async def stored(db: AsyncDatabase[Any]) -> tuple[RequestsRepo, list[dict[str, Any]]]:
    await ensure_indexes(db[REQUESTS], None)
    docs = make_docs(90)
    await db[REQUESTS].insert_many([dict(d) for d in docs])
    return RequestsRepo(db), docs


async def walk(
    repo: RequestsRepo, f: q.RequestFilter, limit: int, **kwargs: Any
) -> tuple[list[str], list[q.Cursor]]:
    """Every row, page by page towards the oldest; and each page's first place."""
    ids: list[str] = []
    firsts: list[q.Cursor] = []
    cursor: q.Cursor | None = None
    for _ in range(200):
        page = await repo.list_page(f, NOW, cursor=cursor, limit=limit, **kwargs)
        assert len(page.rows) <= limit
        assert page.reached is None
        ids += [r["requestId"] for r in page.rows]
        if page.first is not None:
            firsts.append(page.first)
        if not page.more:
            return ids, firsts
        assert len(page.rows) == limit
        cursor = page.last
    raise AssertionError("the pages never ended")


async def test_pages_cover_the_log_once_in_order_across_gaps_and_ties(
    stored: tuple[RequestsRepo, list[dict[str, Any]]],
) -> None:
    repo, docs = stored
    for limit in (1, 6, 50):
        ids, _ = await walk(repo, q.RequestFilter(), limit, first_window=timedelta(seconds=2))
        assert ids == order(docs), limit


async def test_newer_pages_walk_back_to_the_newest(
    stored: tuple[RequestsRepo, list[dict[str, Any]]],
) -> None:
    repo, docs = stored
    expected = order(docs)
    _, firsts = await walk(repo, q.RequestFilter(), 7)
    # From each page's first row, the newer page is the page before it.
    for index, first in enumerate(firsts[1:], start=1):
        page = await repo.list_page(
            q.RequestFilter(), NOW, cursor=first, newest_first=False, limit=7
        )
        assert [r["requestId"] for r in page.rows] == expected[(index - 1) * 7 : index * 7]
        assert page.more == (index > 1)


@pytest.mark.parametrize(
    "f",
    [
        q.RequestFilter(model="claude-sonnet-4-5"),
        q.RequestFilter(status="5xx"),
        q.RequestFilter(status="4xx", model="claude-opus-5-5"),
        q.RequestFilter(status="error"),
        q.RequestFilter(status="429"),
        q.RequestFilter(outcome="client_closed"),
        q.RequestFilter(streaming=False, organization="org-1"),
        q.RequestFilter(organization="org-0"),
        q.RequestFilter(organization="org-0", status="5xx"),
        q.RequestFilter(organization="org-0", status="error", model="claude-opus-5-5"),
        q.RequestFilter(organization="org-1", status="429", streaming=False),
        q.RequestFilter(session="00000003-0000-4000-8000-000000000003"),
        q.RequestFilter(session_prefix="00000002"),
        q.RequestFilter(start=NOW - timedelta(days=3), end=NOW - timedelta(hours=1)),
        q.RequestFilter(words=("migration",)),
        q.RequestFilter(words=("migration", "plan"), streaming=True),
        q.RequestFilter(words=("the", "parser")),
    ],
    ids=repr,
)
async def test_each_filter_lists_exactly_its_rows(
    stored: tuple[RequestsRepo, list[dict[str, Any]]], f: q.RequestFilter
) -> None:
    repo, docs = stored
    wanted = [d for d in docs if _expected(d, f)]
    assert wanted, "the fixture must have rows for every filter"
    ids, _ = await walk(repo, f, 4)
    assert ids == order(wanted)


def _expected(doc: dict[str, Any], f: q.RequestFilter) -> bool:
    if f.words:
        if not set(f.words) <= set(doc["conversation"]["words"]):
            return False
        f = q.RequestFilter(**{**_fields(f), "words": ()})
    return q.matches(doc, f)


def _fields(f: q.RequestFilter) -> dict[str, Any]:
    return {name: getattr(f, name) for name in f.__slots__}


async def test_a_log_years_back_is_found_by_growing_windows(db: AsyncDatabase[Any]) -> None:
    await ensure_indexes(db[REQUESTS], None)
    docs = make_docs(3)
    for i, doc in enumerate(docs):
        doc["timestamp"] = NOW - timedelta(days=900 + i)
    await db[REQUESTS].insert_many(docs)
    page = await RequestsRepo(db).list_page(
        q.RequestFilter(), NOW, limit=10, first_window=timedelta(seconds=1)
    )
    assert [r["requestId"] for r in page.rows] == order(docs)
    assert page.reached is None and not page.more


async def test_a_page_out_of_windows_says_how_far_back_it_looked(
    db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await ensure_indexes(db[REQUESTS], None)
    docs = make_docs(2)
    docs[0]["timestamp"] = NOW - timedelta(minutes=1)
    docs[1]["timestamp"] = NOW - timedelta(days=300)
    await db[REQUESTS].insert_many(docs)
    monkeypatch.setattr(lp, "MAX_PROBES", 3)
    page = await RequestsRepo(db).list_page(
        q.RequestFilter(), NOW, limit=10, first_window=timedelta(minutes=2)
    )
    assert [r["requestId"] for r in page.rows] == [docs[0]["requestId"]]
    # Three windows: 2 minutes, then 8, then 32 back from now.
    assert page.reached == NOW - timedelta(minutes=42)
    monkeypatch.undo()
    rest = await RequestsRepo(db).list_page(
        q.RequestFilter(), NOW, cursor=q.Cursor(page.reached), limit=10
    )
    assert [r["requestId"] for r in rest.rows] == [docs[1]["requestId"]]


async def test_an_empty_log_is_an_empty_page(db: AsyncDatabase[Any]) -> None:
    await ensure_indexes(db[REQUESTS], None)
    page = await RequestsRepo(db).list_page(q.RequestFilter(), NOW)
    assert page.rows == [] and not page.more and page.reached is None
    assert page.first is None and page.last is None


async def test_id_prefix_search(stored: tuple[RequestsRepo, list[dict[str, Any]]]) -> None:
    repo, docs = stored
    target = docs[17]["requestId"]
    rows, more = await repo.by_id_prefix(target[:6], q.RequestFilter(), 10)
    assert target in [r["requestId"] for r in rows] and not more
    assert all(r["requestId"].startswith(target[:6]) for r in rows)
    filtered, _ = await repo.by_id_prefix(
        target[:6], q.RequestFilter(model=_other_model(docs[17])), 10
    )
    assert target not in [r["requestId"] for r in filtered]


def _other_model(doc: dict[str, Any]) -> str:
    return next(m for m in MODELS if m != doc["model"])


async def test_the_tail_reads_what_completed_since(
    stored: tuple[RequestsRepo, list[dict[str, Any]]],
) -> None:
    repo, docs = stored
    completions = sorted(d["response"]["completedAt"] for d in docs)
    since = completions[-12]
    rows = await repo.completed_since(since, 500)
    expected = sorted(
        (d for d in docs if d["response"]["completedAt"] >= since),
        key=lambda d: d["response"]["completedAt"],
    )
    assert len(expected) >= 12
    assert sorted(r["requestId"] for r in rows) == sorted(d["requestId"] for d in expected)
    times = [r["response"]["completedAt"] for r in rows]
    assert times == sorted(times)
    assert isinstance(rows[0]["response"]["completedAt"], datetime)


async def test_the_api_list_reads_are_capped(
    stored: tuple[RequestsRepo, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/api/requests/summary?limit=0` read the whole log; now the maximum."""
    repo, docs = stored
    # The API's totals are the rollups' counts (storage.request_offsets).
    await repo._db[ROLLUPS].bulk_write([delta.update() for delta in fold(docs)])
    monkeypatch.setattr(q, "MAX_SUMMARY_LIMIT", 4)
    monkeypatch.setattr(q, "MAX_LIST_LIMIT", 3)
    items, total = await repo.summaries(None, None, None, 0, 0)
    assert len(items) == 4 and total == len(docs)
    items, _ = await repo.summaries(None, None, None, 0, 10_000)
    assert len(items) == 4
    items, _ = await repo.page(1, 1000, None)
    assert len(items) == 3
    page = await repo.list_page(q.RequestFilter(), NOW, limit=1000)
    assert len(page.rows) == 3 and page.more


async def test_a_multi_word_search_reads_its_rarest_words_rows(
    stored: tuple[RequestsRepo, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "the" is in every prompt, "parser" in a third: counted in a minute of log
    next to the first window, "parser" leads the index read, whichever is longer."""
    repo, docs = stored
    seen: list[list[dict[str, Any]]] = []
    aggregate = repo._aggregate

    async def watched(pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen.append(pipeline)
        return await aggregate(pipeline)

    monkeypatch.setattr(repo, "_aggregate", watched)
    f = q.RequestFilter(words=("the", "parser"))
    page = await repo.list_page(f, NOW, limit=4, first_window=timedelta(days=400))
    assert [r["requestId"] for r in page.rows] == order([d for d in docs if _expected(d, f)])[:4]
    samples = [p for p in seen if "$count" in p[-1]]
    assert [p[0]["$match"]["conversation.words"] for p in samples] == ["the", "parser"]
    for pipeline in samples:
        window = pipeline[0]["$match"]["timestamp"]
        assert window["$lt"] - window["$gte"] <= lp.SAMPLE_SPAN
    reads = [p for p in seen if "$count" not in p[-1]]
    assert reads and all(p[0]["$match"]["conversation.words"] == "parser" for p in reads)


async def test_an_organizations_failures_wait_for_their_index(
    db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `org_outcome_time` (still building after an upgrade) the list reads
    the failed requests on `outcome_time`, never a scan; once built, its own."""
    await db[REQUESTS].create_index([("outcome", 1), ("timestamp", -1)], name="outcome_time")
    docs = make_docs(40)
    await db[REQUESTS].insert_many([dict(d) for d in docs])
    repo = RequestsRepo(db)
    seen: list[dict[str, Any]] = []
    aggregate = repo._aggregate

    async def watched(pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen.append(pipeline[0]["$match"])
        return await aggregate(pipeline)

    monkeypatch.setattr(repo, "_aggregate", watched)
    f = q.RequestFilter(organization="org-0", status="5xx")
    expected = order([d for d in docs if _expected(d, f)])[:5]
    page = await repo.list_page(f, NOW, limit=5, first_window=timedelta(days=400))
    assert [r["requestId"] for r in page.rows] == expected
    assert seen and all("organizationId" not in m and "outcome" in m for m in seen)
    await ensure_indexes(db[REQUESTS], None)
    monkeypatch.setattr(repo, "_indexes_listed", float("-inf"))  # a minute later
    seen.clear()
    page = await repo.list_page(f, NOW, limit=5, first_window=timedelta(days=400))
    assert [r["requestId"] for r in page.rows] == expected
    assert seen and all(m.get("organizationId") == "org-0" for m in seen)
