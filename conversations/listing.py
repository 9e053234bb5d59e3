"""The newest conversation summaries, read in growing ranges of `lastActivity`.

The development database reads a whole index range before it sorts and limits,
so the list never asks for "the newest n" over the whole collection: it reads a
range of last activity (on `last_activity`, or `project_last_activity` for one
project), and only if that held too few, the range before it, sized by what the
last one found (at most MAX_GROWTH times wider), at most ROUNDS ranges (the
last reaches back to the first summary). MongoDB stops each range at its limit
anyway.

Read from now, the first range ends at now plus SKEW (a summary's last activity
may be ahead of our clock) and reaches FIRST_SPAN back from the log's edge, the
newest minute the rollups counted a request in (storage.log_edge): a log quiet
for hours is not first read in ranges that hold nothing and then in one grown
four times too wide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from conversations import queries as q
from stats.rollups import ROLLUPS
from storage.log_edge import log_edge
from storage.mongo import CONVERSATIONS

FIRST_SPAN = timedelta(hours=6)
MAX_GROWTH = 4.0
ROUNDS = 16
SKEW = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Place:
    """A place in the list's order: last activity (newest first), then id."""

    at: datetime
    id: str


def first_range(upper: datetime, edge: datetime | None) -> timedelta:
    """How far back the first range from `upper` reaches: FIRST_SPAN before the
    log's edge (FIRST_SPAN when the edge is unknown or ahead of `upper`)."""
    if edge is None or edge >= upper:
        return FIRST_SPAN
    return upper - edge + FIRST_SPAN


def next_range(span: timedelta, found: int, wanted: int) -> timedelta:
    """The next range's width: MAX_GROWTH times wider after an empty one, else
    wide enough for the `wanted` rows still missing at the density just seen."""
    if found <= 0:
        return span * MAX_GROWTH
    return span * min(MAX_GROWTH, max(1.0, wanted / found))


def range_pipeline(
    scope: dict[str, Any],
    window: dict[str, Any] | datetime,
    matching: dict[str, Any],
    limit: int,
    projection: dict[str, int] | None,
) -> list[dict[str, Any]]:
    """One range's read: the index range first (scope and last activity), the
    residual filter (model) on what it found."""
    pipeline: list[dict[str, Any]] = [{"$match": {**scope, "lastActivity": window}}]
    if matching:
        pipeline.append({"$match": matching})
    pipeline += [{"$sort": dict(q.LIST_SORT)}, {"$limit": limit}]
    if projection:
        pipeline.append({"$project": projection})
    return pipeline


async def newest(
    db: AsyncDatabase[Any],
    wanted: int,
    *,
    scope: dict[str, Any] | None = None,
    matching: dict[str, Any] | None = None,
    before: Place | None = None,
    projection: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Up to `wanted` summaries in `scope` and `matching`, after `before` (from
    the newest when None), newest activity first."""
    scope, matching = scope or {}, matching or {}
    conversations = db[CONVERSATIONS]

    async def read(window: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        pipeline = range_pipeline(scope, window, matching, limit, projection)
        return await (await conversations.aggregate(pipeline)).to_list(None)

    found: list[dict[str, Any]] = []
    if before is not None:  # the rest of the rows sharing the last one's time
        pipeline = range_pipeline(
            {**scope, "_id": {"$gt": before.id}}, before.at, matching, wanted, projection
        )
        found += await (await conversations.aggregate(pipeline)).to_list(None)
        upper = before.at
        span = FIRST_SPAN
    else:
        now = datetime.now(UTC)
        upper = now + SKEW
        span = first_range(upper, await log_edge(db[ROLLUPS], now))
    for rounds in range(1, ROUNDS + 1):
        if len(found) >= wanted:
            break
        lower = upper - min(span, upper - EPOCH)
        last = rounds == ROUNDS or lower <= EPOCH
        window: dict[str, Any] = {"$lt": upper} if last else {"$gte": lower, "$lt": upper}
        docs = await read(window, wanted - len(found))
        found += docs
        if last:
            break
        # The first range's span reached across the quiet stretch; growth is
        # sized on the part that holds rows (FIRST_SPAN or less).
        width = min(span, FIRST_SPAN) if rounds == 1 else span
        span, upper = next_range(width, len(docs), wanted - len(found)), lower
    return found[:wanted]
