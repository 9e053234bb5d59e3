"""Reads of the request log for the dashboard and the API: the request list in
time windows (storage.list_plan), the API's offset pages and totals through the
rollups (storage.request_offsets), one request by id."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from stats.rollups import ROLLUPS
from stats.timebuckets import MINUTE, ceil_to
from storage import list_plan as lp
from storage import queries as q
from storage import request_offsets as ro
from storage.bodies import delete_all_bodies, load_bodies
from storage.list_pace import Pace, word_counts
from storage.mongo import CONVERSATIONS, REQUESTS


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of the request list. `rows` are newest first. `more`: there are
    rows beyond the page in the direction it was read. `reached`: the read
    stopped there (its time or window budget spent) without covering the rest;
    None when it covered everything it was asked for."""

    rows: list[dict[str, Any]]
    more: bool
    reached: datetime | None
    first: q.Cursor | None = None  # the newest row's place
    last: q.Cursor | None = None  # the oldest row's place


INDEX_RECHECK_SECONDS = 60.0


class RequestsRepo:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self._db = db
        self._requests = db[REQUESTS]
        # The log's index names, listed again every INDEX_RECHECK_SECONDS: one
        # added by an upgrade is planned on once it is built (storage.list_plan.plan).
        self._indexes: frozenset[str] = frozenset()
        self._indexes_listed = -math.inf
        self._pace = Pace(db[ROLLUPS])

    async def page(
        self, page: int, limit: int, model: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        """The seed's `/api/requests` page (1-based, `limit` rows) and the total."""
        limit = q.capped_limit(limit, q.MAX_LIST_LIMIT)
        return await self._offset_page(model, None, None, (page - 1) * limit, limit)

    async def summaries(
        self,
        model: str | None,
        start: datetime | None,
        end: datetime | None,
        offset: int,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """The seed's `/api/requests/summary`: `limit` rows from `offset` and the total."""
        limit = q.capped_limit(limit, q.MAX_SUMMARY_LIMIT)
        return await self._offset_page(model, start, end, offset, limit)

    async def _offset_page(
        self,
        model: str | None,
        start: datetime | None,
        end: datetime | None,
        offset: int,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """Rows `offset`.. of the log newest first, with the total, found through
        the rollups (storage.request_offsets): never counted or skipped in the log."""
        now = datetime.now(UTC)
        models = await ro.models_like(self._db, model)
        if models == []:
            return [], 0  # no logged model contains the text
        lower = max(start or ro.BEGINNING, await ro.horizon(self._db, now))
        upper = end or ceil_to(now, MINUTE) + timedelta(minutes=1)
        if lower >= upper:
            return [], 0
        found = await ro.locate(self._db, lower, upper, models, offset)
        if found.edge is None:
            return [], found.total
        reads = await asyncio.gather(
            *(
                self.read(
                    q.RequestFilter(model=name, start=lower, end=end),
                    now,
                    cursor=q.Cursor(found.edge),
                    limit=found.skip + limit,
                    maximum=found.skip + limit,
                    projection=q.SUMMARY_PROJECTION,
                    budget=q.API_BUDGET_SECONDS,
                )
                for name in (models if models is not None else [None])
            )
        )
        rows = sorted((r for read in reads for r in read.rows), key=lp.row_key, reverse=True)
        return [_public(r) for r in rows[found.skip : found.skip + limit]], found.total

    async def latest_date(self) -> datetime | None:
        """The newest request's time: the list's first row (never a sort of the log)."""
        page = await self.read(q.RequestFilter(), datetime.now(UTC), limit=1)
        return page.first.timestamp if page.first is not None else None

    async def get(self, request_id: str) -> dict[str, Any] | None:
        matches = await self._requests.find(q.id_filter(request_id)).limit(2).to_list(None)
        if len(matches) != 1:
            return None  # unknown, or a short id that is ambiguous
        return _public(await load_bodies(self._db, matches[0]), full=True)

    async def list_page(
        self,
        f: q.RequestFilter,
        now: datetime,
        *,
        cursor: q.Cursor | None = None,
        newest_first: bool = True,
        limit: int = 50,
        budget: float = lp.LIST_BUDGET_SECONDS,
        first_window: timedelta | None = None,
    ) -> ListPage:
        """Up to `limit` rows from `cursor` on (older ones when `newest_first`,
        else newer ones), read in growing time windows (storage.list_plan), the
        first one sized from the log's pace unless `first_window` is given."""
        page = await self.read(
            f,
            now,
            cursor=cursor,
            newest_first=newest_first,
            limit=limit,
            budget=budget,
            first_window=first_window,
        )
        return replace(page, rows=[_public(r) for r in page.rows])

    async def read(
        self,
        f: q.RequestFilter,
        now: datetime,
        *,
        cursor: q.Cursor | None = None,
        newest_first: bool = True,
        limit: int = 50,
        budget: float = lp.LIST_BUDGET_SECONDS,
        first_window: timedelta | None = None,
        maximum: int | None = None,
        projection: dict[str, int] = q.LIST_PROJECTION,
    ) -> ListPage:
        """`list_page` with the rows as stored (datetimes kept), `projection`'s
        fields, and at most `maximum` rows (MAX_LIST_LIMIT by default): the
        bounded, index-backed way to read many rows of the log newest first."""
        limit = q.capped_limit(limit, q.MAX_LIST_LIMIT if maximum is None else maximum)
        deadline = time.monotonic() + budget
        rows: list[dict[str, Any]] = []
        edge = cursor.timestamp if cursor else (f.end if newest_first else f.start)
        indexes = await self._index_names()
        p = lp.plan(f, indexes=indexes)
        if not p.windowed:  # a prefix's index range is read whole: one window
            span, quiet = now - lp.OLDEST + timedelta(days=1), timedelta(0)
        else:
            from_now = newest_first and edge is None
            span, quiet = (
                (first_window, timedelta(0))
                if first_window is not None
                else await self._pace.first_window(f, now, limit + 1, from_now)
            )
            sample = lp.sample_window(f, edge, quiet, now, newest_first)
            if len(f.words) > 1 and p.index == "conversation_words_time" and sample:
                p = lp.plan(f, await word_counts(self._aggregate, f.words, *sample), indexes)
        reached: datetime | None = None
        for probe in range(lp.MAX_PROBES):
            # The first window also spans the quiet stretch before now (nothing
            # there); the next ones grow from the pace alone.
            lower, upper, last = _window(f, edge, span + quiet, now, newest_first)
            quiet = timedelta(0)
            if lower is not None and upper is not None and lower >= upper:
                break  # the cursor lies outside the filter's time range
            wanted = limit + 1 - len(rows)
            pipelines = [
                lp.window_pipeline(
                    p,
                    lower,
                    upper,
                    newest_first=newest_first,
                    cursor=cursor,
                    limit=wanted,
                    projection=projection,
                    lead=lead,
                )
                for lead in p.leads
            ]
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                with pymongo.timeout(remaining):
                    found = await self._aggregate_all(pipelines)
            except (TimeoutError, PyMongoError) as exc:
                if isinstance(exc, PyMongoError) and not exc.timeout:
                    raise
                reached = edge if probe else None
                if not probe:
                    raise TimeoutError("the first window of the request list timed out") from exc
                break
            rows += found
            edge = lower if newest_first else upper
            if len(rows) > limit or last:
                break
            span = lp.next_span(span, len(found), limit + 1 - len(rows))
        else:
            reached = edge
        rows.sort(key=lp.row_key, reverse=newest_first)
        more = len(rows) > limit
        if more and rows[limit - 1]["timestamp"] == rows[limit]["timestamp"]:
            at = rows[limit]["timestamp"]
            rows = await self._with_ties(p, rows, at, newest_first, cursor, projection)
        page = rows[:limit]
        if not newest_first:
            page.reverse()
        first, last = (_place(page[0]), _place(page[-1])) if page else (None, None)
        return ListPage(page, more, reached, first, last)

    async def by_id_prefix(
        self, prefix: str, f: q.RequestFilter, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` requests whose id starts with `prefix`, newest first, and
        whether there are more."""
        limit = q.capped_limit(limit, q.MAX_LIST_LIMIT)
        rows = await self._aggregate(lp.id_prefix_pipeline(prefix, f, limit + 1))
        return [_public(r) for r in rows[:limit]], len(rows) > limit

    async def completed_since(self, since: datetime, limit: int) -> list[dict[str, Any]]:
        """Requests completed at or after `since` (the live tail), oldest first,
        with their `completedAt` kept as a datetime for the next poll."""
        limit = q.capped_limit(limit, q.MAX_LIST_LIMIT)
        return await self._aggregate(q.tail_pipeline(since, limit))

    async def _index_names(self) -> frozenset[str]:
        if time.monotonic() - self._indexes_listed < INDEX_RECHECK_SECONDS:
            return self._indexes
        try:
            listed = await (await self._requests.list_indexes()).to_list(None)
        except PyMongoError:
            return self._indexes  # as last seen (none before the first listing)
        self._indexes = frozenset(str(ix["name"]) for ix in listed)
        self._indexes_listed = time.monotonic()
        return self._indexes

    async def _aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await (await self._requests.aggregate(pipeline)).to_list(None)

    async def _aggregate_all(self, pipelines: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The rows of every pipeline (a plan's leads hold disjoint rows), together."""
        if len(pipelines) == 1:
            return await self._aggregate(pipelines[0])
        found = await asyncio.gather(*(self._aggregate(pipeline) for pipeline in pipelines))
        return [row for rows in found for row in rows]

    async def _with_ties(
        self,
        p: lp.Plan,
        rows: list[dict[str, Any]],
        at: datetime,
        newest_first: bool,
        cursor: q.Cursor | None,
        projection: dict[str, int],
    ) -> list[dict[str, Any]]:
        """`rows` with every row at timestamp `at`, in the list's order."""
        ties = await self._aggregate_all(
            [
                lp.ties_pipeline(
                    p,
                    at,
                    newest_first=newest_first,
                    cursor=cursor,
                    limit=lp.MAX_TIES,
                    projection=projection,
                    lead=lead,
                )
                for lead in p.leads
            ]
        )
        merged = {r["requestId"]: r for r in rows if r["timestamp"] != at}
        merged.update((r["requestId"], r) for r in ties)
        return sorted(merged.values(), key=lp.row_key, reverse=newest_first)

    async def delete_all(self) -> int:
        result = await self._requests.delete_many({})
        await delete_all_bodies(self._db)
        # The stats and the conversation summaries were derived from them.
        await self._db[ROLLUPS].delete_many({})
        await self._db[CONVERSATIONS].delete_many({})
        return result.deleted_count


def _window(
    f: q.RequestFilter,
    edge: datetime | None,
    span: timedelta,
    now: datetime,
    newest_first: bool,
) -> tuple[datetime | None, datetime | None, bool]:
    """The next window from `edge` (None: from the newest or the oldest end), cut
    to the filter's range, and whether it is the last one there can be."""
    if newest_first:
        base = edge or now
        lower = lp.OLDEST if span >= base - lp.OLDEST else base - span
        cut_lower, upper = lp.clamp_window(f, lower, edge)
        return cut_lower, upper, cut_lower is not None and cut_lower <= (f.start or lp.OLDEST)
    start = edge or lp.OLDEST
    # The newest window stays open: workers' and the recorder's clocks may differ.
    end = None if span >= now - start else start + span
    lower, cut_upper = lp.clamp_window(f, start, end)
    return lower, cut_upper, cut_upper is None or (f.end is not None and cut_upper >= f.end)


def _place(row: dict[str, Any]) -> q.Cursor:
    return q.Cursor(row["timestamp"], row["requestId"])


def _public(document: dict[str, Any], full: bool = False) -> dict[str, Any]:
    """JSON-ready: datetimes as ISO 8601, stored body text parsed back to JSON."""
    document.pop("_id", None)
    out = _jsonable(document)
    if full:
        for part in ("request", "response"):
            section = out.get(part)
            if isinstance(section, dict) and section.get("bodyEncoding") == "utf-8":
                try:
                    section["body"] = json.loads(section["body"])
                except (TypeError, ValueError):
                    pass  # not JSON: keep the text
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
