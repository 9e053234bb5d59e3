"""What the request list reads before its first window: the log's recent pace and
where it ends (the rollups), and how common each searched word is (a minute of
log). The list's plan and windows (storage.list_plan) are built from these.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from stats.timebuckets import aware
from storage import list_plan as lp
from storage import queries as q


class Pace:
    """The first window of a read, from the quarter-hour rollups' recent counts.

    One instance serves one repository; the rollups a filter's pace is read from
    are kept for the `now` they were read at, so a read that goes on in several
    calls with the same `now` (a conversation search reading its hits in chunks)
    reads them once."""

    def __init__(self, rollups: AsyncCollection[Any]) -> None:
        self._rollups = rollups
        self._read: tuple[tuple[str, str, datetime], list[dict[str, Any]]] | None = None

    async def first_window(
        self, f: q.RequestFilter, now: datetime, wanted: int, from_now: bool
    ) -> tuple[timedelta, timedelta]:
        """(window, quiet stretch): a window wide enough for `wanted` rows at the
        recent pace (a hundred small documents) and, read from now, the quiet
        stretch since the newest counted minute (the minute rollups of the newest
        counted quarter). The default window when the rollups cannot be read."""
        where, counter = lp.pace_query(f, now)
        try:
            docs = await self._quarters(where, counter, now)
            quarters = [aware(d["t"]) for d in docs if lp.counted(d, counter) > 0]
            span = lp.paced_window(sum(lp.counted(d, counter) for d in docs), wanted)
            if not from_now or not quarters:
                return span, timedelta(0)
            minutes = (
                await self._rollups.find(
                    lp.minutes_query(where, max(quarters)), {"_id": 0, "t": 1, counter: 1}
                )
                .limit(16)
                .to_list(None)
            )
        except PyMongoError:
            return lp.FIRST_WINDOW, timedelta(0)
        counted = [aware(d["t"]) for d in minutes if lp.counted(d, counter) > 0]
        if counted:
            return span, lp.quiet_stretch(counted, now, timedelta(minutes=1))
        return span, lp.quiet_stretch(quarters, now)

    async def _quarters(
        self, where: dict[str, Any], counter: str, now: datetime
    ) -> list[dict[str, Any]]:
        key = (repr(sorted(where.items())), counter, now)
        if self._read is not None and self._read[0] == key:
            return self._read[1]
        docs = (
            await self._rollups.find(where, {"_id": 0, "t": 1, counter: 1})
            .limit(lp.PACE_DOCS)
            .to_list(None)
        )
        self._read = (key, docs)
        return docs


Aggregate = Callable[[list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]


async def word_counts(
    aggregate: Aggregate, words: tuple[str, ...], lower: datetime, upper: datetime
) -> dict[str, int] | None:
    """Each word's rows in [lower, upper) (at most a minute of log, counted by
    `aggregate` on the log), None when they cannot be counted (the plan then
    anchors on the longest word)."""
    try:
        found = await asyncio.gather(
            *(aggregate(lp.sample_pipeline(w, lower, upper)) for w in words)
        )
    except PyMongoError:
        return None
    return {w: int(rows[0]["n"]) if rows else 0 for w, rows in zip(words, found, strict=True)}
