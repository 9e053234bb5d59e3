"""The seed's offset pages (`/api/requests`, `/api/requests/summary`) against a real
database: the same rows and totals as sorting, skipping and counting the log, found
through the rollups, with the log never counted nor skipped through."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from stats.rollups import ROLLUPS, fold
from storage import list_plan as lp
from storage import request_offsets as ro
from storage.mongo import REQUESTS, ensure_indexes, ensure_rollup_indexes
from storage.requests_repo import RequestsRepo

MODELS = ("claude-opus-5-5", "claude-sonnet-4-5", "claude-haiku-4-5")
NOW = datetime.now(UTC).replace(microsecond=0)


def make_docs(count: int, seed: int = 3) -> list[dict[str, Any]]:
    """Requests over the last days with gaps from a millisecond to hours, runs
    sharing one timestamp, and several per minute."""
    rng = random.Random(seed)
    when = NOW - timedelta(minutes=3)
    docs = []
    for i in range(count):
        if i % 5 != 2:
            when -= rng.choice(
                (timedelta(milliseconds=1), timedelta(seconds=7), timedelta(seconds=50))
                + (timedelta(hours=9),) * (i % 13 == 0)
            )
        request_id = f"{rng.getrandbits(128):032x}"
        docs.append(
            {
                "_id": request_id,
                "requestId": request_id,
                "timestamp": when,
                "model": MODELS[rng.randrange(3)],
                "organizationId": "org-1",
                "statusCode": 200,
                "outcome": "completed",
                "tokens": i,
                "request": {"body": "x" * 200},
            }
        )
    return docs


async def store(db: AsyncDatabase[Any], docs: list[dict[str, Any]]) -> RequestsRepo:
    """The documents and their rollups, as the recorder stores them."""
    await ensure_indexes(db[REQUESTS], None)
    await ensure_rollup_indexes(db[ROLLUPS])
    await db[REQUESTS].insert_many([dict(d) for d in docs])
    await db[ROLLUPS].bulk_write([delta.update() for delta in fold(docs)])
    return RequestsRepo(db)


def expected(
    docs: list[dict[str, Any]], model: str | None, start: datetime | None, end: datetime | None
) -> list[str]:
    kept = [
        d
        for d in docs
        if (model is None or model.casefold() in d["model"].casefold())
        and (start is None or d["timestamp"] >= start)
        and (end is None or d["timestamp"] < end)
    ]
    return [d["requestId"] for d in sorted(kept, key=lp.row_key, reverse=True)]


DOCS = make_docs(160)
# A range inside one minute, around a logged request.
_AT = DOCS[40]["timestamp"]
_IN_MINUTE = (_AT.replace(second=0, microsecond=0), _AT + timedelta(milliseconds=1))


@pytest.fixture
async def stored(db: AsyncDatabase[Any]) -> tuple[RequestsRepo, list[dict[str, Any]]]:
    return await store(db, DOCS), DOCS


RANGES = [
    (None, None, None),
    ("SONNET", None, None),
    ("claude-opus-5-5", None, None),
    ("4-5", None, None),
    # Ragged ends: mid-minute, mid-second.
    (None, NOW - timedelta(hours=20, seconds=17), NOW - timedelta(minutes=41, seconds=3.5)),
    ("haiku", NOW - timedelta(days=2), NOW - timedelta(hours=1, milliseconds=250)),
    (None, *_IN_MINUTE),
]


@pytest.mark.parametrize(("model", "start", "end"), RANGES)
async def test_offset_pages_are_the_rows_of_sorting_and_skipping_the_log(
    stored: tuple[RequestsRepo, list[dict[str, Any]]],
    model: str | None,
    start: datetime | None,
    end: datetime | None,
) -> None:
    repo, docs = stored
    wanted = expected(docs, model, start, end)
    assert wanted, "every range must hold rows"
    for offset in (0, 1, 6, len(wanted) // 2, len(wanted) - 1, len(wanted), len(wanted) + 9):
        items, total = await repo.summaries(model, start, end, offset, 7)
        assert total == len(wanted)
        assert [i["requestId"] for i in items] == wanted[offset : offset + 7], offset


async def test_pages_walk_the_whole_log_once(
    stored: tuple[RequestsRepo, list[dict[str, Any]]],
) -> None:
    repo, docs = stored
    seen: list[str] = []
    for page in range(1, 40):
        items, total = await repo.page(page, 9, None)
        assert total == len(docs)
        if not items:
            break
        seen += [i["requestId"] for i in items]
    assert seen == expected(docs, None, None, None)


async def test_a_model_no_request_names_reads_nothing(
    stored: tuple[RequestsRepo, list[dict[str, Any]]],
) -> None:
    repo, _ = stored
    assert await repo.page(1, 10, "gpt-9") == ([], 0)
    assert await repo.summaries("all", None, None, 0, 1) != ([], 0)


class Reads:
    """Every read of the request log: (operation, filter or pipeline, rows returned)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, int]] = []


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    log = Reads()
    aggregate, count = AsyncCollection.aggregate, AsyncCollection.count_documents

    async def counted(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> Any:
        if self.name == REQUESTS:
            log.calls.append(("count_documents", args, 0))
        return await count(self, *args, **kwargs)

    async def recorded(self: AsyncCollection[Any], pipeline: Any, *args: Any, **kw: Any) -> Any:
        cursor = await aggregate(self, pipeline, *args, **kw)
        if self.name != REQUESTS:
            return cursor
        rows = await cursor.to_list(None)
        log.calls.append(("aggregate", pipeline, len(rows)))

        class Done:
            async def to_list(self, _length: int | None = None) -> list[Any]:
                return rows

        return Done()

    monkeypatch.setattr(AsyncCollection, "aggregate", recorded)
    monkeypatch.setattr(AsyncCollection, "count_documents", counted)
    return log


async def test_a_deep_page_reads_a_minute_of_the_log_not_what_it_skips(
    db: AsyncDatabase[Any], reads: Reads
) -> None:
    # One request every 10 s for two hours: six per minute.
    docs = make_docs(1)
    docs = [
        {**docs[0], "_id": f"{i:032x}", "requestId": f"{i:032x}", "timestamp": t}
        for i, t in enumerate(NOW - timedelta(seconds=10 * n + 5) for n in range(720))
    ]
    repo = await store(db, docs)
    reads.calls.clear()
    items, total = await repo.summaries(None, None, None, 600, 5)
    assert total == 720
    assert [i["requestId"] for i in items] == expected(docs, None, None, None)[600:605]
    assert all(op != "count_documents" for op, _, _ in reads.calls)
    assert not any("$skip" in stage for _, pipeline, _ in reads.calls for stage in pipeline)
    # The minute holding row 600 (at most six rows before it) and the page.
    assert sum(rows for _, _, rows in reads.calls) <= 6 + 5 + 1


async def test_the_total_starts_at_the_retention_horizon(db: AsyncDatabase[Any]) -> None:
    docs = make_docs(30)
    repo = await store(db, docs)
    # Counts of requests the log already deleted (their rollups stay).
    old = [{**d, "timestamp": NOW - timedelta(days=45, minutes=i)} for i, d in enumerate(docs)]
    await db[ROLLUPS].bulk_write([delta.update() for delta in fold(old)])
    assert (await repo.page(1, 1, None))[1] == 60
    await ensure_indexes(db[REQUESTS], retention_days=30)
    assert (await repo.page(1, 1, None))[1] == 30


async def test_the_latest_date_is_the_newest_row(db: AsyncDatabase[Any]) -> None:
    repo = await store(db, make_docs(1))
    await db[REQUESTS].delete_many({})
    assert await repo.latest_date() is None
    docs = make_docs(25)
    docs[7]["timestamp"] = NOW + timedelta(hours=2)  # a clock ahead of ours
    await db[REQUESTS].insert_many(docs)
    assert await repo.latest_date() == docs[7]["timestamp"]


def test_the_model_filter_is_a_case_insensitive_literal_substring() -> None:
    assert ro.matches_model("claude-Sonnet-4-5", "sonnet")
    assert ro.matches_model("claude-opus-5-5", "opus-5.5") is False  # no regex
    assert ro.matches_model("claude-opus-5-5", "")
