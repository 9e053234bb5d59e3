"""Totals and deep offsets of the request log without counting or skipping through it.

The seed's `/api/requests?page=` and `/api/requests/summary?offset=` return a
page at an offset and the number of matching requests. `count_documents` and
`find().sort().skip(n)` read every matching document on the development
database (and every index entry before the page on MongoDB), so both grew
with the log. Every request document is counted once in the stats rollups
(`requests` per time bucket, per model in cuboid "m"), so:

- the total is the rollups' sum over the range's whole minutes (days, hours,
  quarters and minutes: stats.timebuckets.decompose), plus the ragged
  sub-minute ends counted from the log (at most a minute of it each);
- the row at an offset is found by walking those counts newest first, from
  days down to the minute that holds it; the page is then read from the log
  from that minute's end (RequestsRepo.list_page), skipping only the rows of
  that minute before it.

A page costs a few dozen rollup documents, at most a minute of log rows and
the page itself, however deep it is and however long the log. With a
retention (the TTL index on `timestamp`) the range starts at the retention's
horizon: the rollups keep counting requests the log has deleted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from stats.rollups import ROLLUPS, UNKNOWN_MODEL
from stats.timebuckets import DAY, HOUR, MINUTE, QUARTER, Tier, ceil_to, decompose, floor_to
from storage.mongo import REQUESTS, TTL_INDEX

# Nothing the log holds is older than this.
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
# Models a substring filter may resolve to (the daily rollups' model names).
MAX_MODELS = 200
# Rollup documents one tier's range returns at most: days since BEGINNING.
MAX_BUCKETS = 20_000
FINER: dict[str, Tier] = {DAY.name: HOUR, HOUR.name: QUARTER, QUARTER.name: MINUTE}


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of the range and how many matching requests it holds; `tier` is
    the rollup tier that counted it, None for a ragged end counted in the log."""

    start: datetime
    end: datetime
    count: int
    tier: Tier | None


@dataclass(frozen=True, slots=True)
class Located:
    """The range's total, and where the row at the offset is: the page is read
    from `edge` (exclusive) towards the oldest, after skipping `skip` rows.
    `edge` is None when the offset lies beyond the last row."""

    total: int
    edge: datetime | None
    skip: int


def matches_model(name: str, text: str) -> bool:
    """The seed's model filter: a case-insensitive literal substring."""
    return text.casefold() in name.casefold()


async def models_like(db: AsyncDatabase[Any], text: str | None) -> list[str] | None:
    """None for every model (no filter, or `all`); else the model names the daily
    rollups know that contain `text`, so that the log is read by exact model on
    the `model_time` index instead of a regex over every document."""
    if not text or text == "all":
        return None
    pipeline: list[dict[str, Any]] = [
        # Equalities alone first: they are what the index `(tier, cuboid, t)` serves.
        {"$match": {"tier": DAY.name, "cuboid": "m"}},
        {"$match": {"model": {"$type": "string"}}},
        {"$group": {"_id": "$model"}},
        {"$sort": {"_id": 1}},
        {"$limit": MAX_MODELS},
    ]
    rows = await (await db[ROLLUPS].aggregate(pipeline)).to_list(MAX_MODELS)
    # Rollups file a request without a model as "unknown"; the log has no such model.
    names = [r["_id"] for r in rows if r["_id"] != UNKNOWN_MODEL]
    return [name for name in names if matches_model(name, text)]


def model_conditions(models: list[str] | None) -> list[dict[str, Any]]:
    """One equality per model (each rides `model_time`), or no condition."""
    return [{}] if models is None else [{"model": m} for m in models]


async def horizon(db: AsyncDatabase[Any], now: datetime) -> datetime:
    """The oldest instant the log can hold: the retention's, when it has one."""
    for index in await (await db[REQUESTS].list_indexes()).to_list(100):
        seconds = index.get("expireAfterSeconds")
        if index.get("name") == TTL_INDEX and isinstance(seconds, int | float):
            return max(BEGINNING, now - timedelta(seconds=seconds))
    return BEGINNING


async def _bucket_counts(
    db: AsyncDatabase[Any], tier: Tier, start: datetime, end: datetime, models: list[str] | None
) -> list[Span]:
    """The rollup buckets of `tier` in [start, end) that hold requests, newest first,
    one find per model on the `(tier, cuboid[, model], t)` indexes."""
    window = {"tier": tier.name, "t": {"$gte": start, "$lt": end}}
    finds = (
        [{**window, "cuboid": ""}]
        if models is None
        else [{**window, "cuboid": "m", "model": m} for m in models]
    )
    found = await asyncio.gather(
        *(
            db[ROLLUPS]
            .find(where, {"_id": 0, "t": 1, "requests": 1})
            .limit(MAX_BUCKETS)
            .to_list(MAX_BUCKETS)
            for where in finds
        )
    )
    counts: dict[datetime, int] = {}
    for docs in found:
        for doc in docs:
            at = doc["t"] if doc["t"].tzinfo else doc["t"].replace(tzinfo=UTC)
            counts[at] = counts.get(at, 0) + int(doc.get("requests") or 0)
    step = timedelta(seconds=tier.seconds)
    return [Span(t, t + step, n, tier) for t, n in sorted(counts.items(), reverse=True) if n]


async def _log_count(
    db: AsyncDatabase[Any], start: datetime, end: datetime, models: list[str] | None
) -> int:
    """Matching requests in [start, end) (under a minute), counted in the log."""
    if start >= end:
        return 0

    async def one(where: dict[str, Any]) -> int:
        window = {**where, "timestamp": {"$gte": start, "$lt": end}}
        cursor = await db[REQUESTS].aggregate([{"$match": window}, {"$count": "n"}])
        rows = await cursor.to_list(1)
        return int(rows[0]["n"]) if rows else 0

    counts = await asyncio.gather(*(one(where) for where in model_conditions(models)))
    return sum(counts)


async def spans(
    db: AsyncDatabase[Any], start: datetime, end: datetime, models: list[str] | None
) -> list[Span]:
    """[start, end) as counted stretches, newest first: the ragged end, the
    rollup buckets of the whole minutes, the ragged start."""
    inner_start, inner_end = ceil_to(start, MINUTE), floor_to(end, MINUTE)
    if inner_start >= inner_end:  # within one minute
        return [Span(start, end, await _log_count(db, start, end, models), None)]
    tail, head, *inner = await asyncio.gather(
        _log_count(db, inner_end, end, models),
        _log_count(db, start, inner_start, models),
        *(
            _bucket_counts(db, s.tier, s.start, s.end, models)
            for s in decompose(inner_start, inner_end)
        ),
    )
    buckets = sorted((b for part in inner for b in part), key=lambda b: b.start, reverse=True)
    return [Span(inner_end, end, tail, None), *buckets, Span(start, inner_start, head, None)]


async def locate(
    db: AsyncDatabase[Any], start: datetime, end: datetime, models: list[str] | None, offset: int
) -> Located:
    """The total of [start, end), and where the row at `offset` (newest first) is."""
    stretch = [s for s in await spans(db, start, end, models) if s.count]
    total = sum(s.count for s in stretch)
    if offset >= total:
        return Located(total, None, 0)
    before = 0  # rows newer than the stretch being walked
    while True:
        for span in stretch:
            if before + span.count > offset:
                break
            before += span.count
        else:
            # The finer buckets sum to less than the coarser one said (a batch
            # is being counted right now): read on from the last one.
            return Located(total, stretch[-1].start if stretch else None, 0)
        if span.tier is None or span.tier == MINUTE:
            return Located(total, span.end, offset - before)
        stretch = await _bucket_counts(db, FINER[span.tier.name], span.start, span.end, models)
