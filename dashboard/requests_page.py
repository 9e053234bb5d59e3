"""The Requests page: the request log, newest first, filtered, searched and paged
by keyset (storage.queries), with the live tail's switch.

The page's work is bounded: one page of rows (at most 200) read in index-backed
time windows with a time budget, plus the models and organizations known to the
daily rollups for the filter menus (a few documents per day). The page never
counts the log: it links to the next page when there is one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from sanic import Request
from sanic.response import HTTPResponse, redirect

from dashboard.render import render
from dashboard.requests_filters import (
    PAGE_SIZES,
    PRESETS,
    FilterError,
    ListQuery,
    format_cursor,
    parse_list_query,
)
from dashboard.requests_rows import RowView, row_view
from stats.rollups import ROLLUPS
from stats.timebuckets import zone
from storage import queries as q
from storage.requests_repo import RequestsRepo

logger = logging.getLogger("proxy.dashboard")

# Menu entries read from the daily rollups, at most.
MAX_OPTIONS = 200
# Query parameters the live tail honours (the rest concern paging and search).
TAIL_PARAMS = ("model", "status", "outcome", "stream", "org", "session")
OUTCOME_LABELS = {
    "completed": "completed",
    "upstream_error": "upstream error",
    "client_closed": "client closed",
    "proxy_error": "proxy error",
}
STATUS_LABELS = {
    "2xx": "2xx success",
    "3xx": "3xx",
    "4xx": "4xx client error",
    "5xx": "5xx server error",
    "error": "any error",
}


@dataclass(frozen=True, slots=True)
class Pager:
    newest: str | None
    newer: str | None
    older: str | None
    search_older: str | None  # the page stopped looking back there


@dataclass(frozen=True, slots=True)
class Options:
    models: list[str]
    organizations: list[str]


def first_values(request: Request) -> dict[str, str]:
    return {name: values[0] for name, values in request.args.items() if values}


def options_pipeline(field: str, cuboid: str) -> list[dict[str, Any]]:
    """The distinct `field` values of the daily rollups of `cuboid`. The first
    `$match` holds only equalities on the index `(tier, cuboid, t)`'s leading
    fields: with the `$type` test in it, the development database looked up
    `tier` alone and read every cuboid's daily documents, histograms included."""
    return [
        {"$match": {"tier": "d", "cuboid": cuboid}},
        {"$match": {field: {"$type": "string"}}},
        {"$group": {"_id": f"${field}"}},
        {"$sort": {"_id": 1}},
        {"$limit": MAX_OPTIONS},
    ]


async def filter_options(db: AsyncDatabase[Any] | None) -> Options:
    """The models and organizations the daily rollups have seen (a few documents
    per day of log, on `(tier, cuboid, t)`)."""
    if db is None:
        return Options([], [])
    found: dict[str, list[str]] = {}
    for field, cuboid in (("model", "m"), ("org", "o")):
        try:
            cursor = await db[ROLLUPS].aggregate(options_pipeline(field, cuboid))
            rows = await cursor.to_list(MAX_OPTIONS)
        except PyMongoError as exc:
            logger.warning("could not read the %s list for the filters: %s", field, exc)
            rows = []
        found[field] = [row["_id"] for row in rows]
    return Options(found["model"], found["org"])


def tail_url(lq: ListQuery) -> str:
    params = {k: lq.values[k] for k in TAIL_PARAMS if k in lq.values}
    if lq.search is not None and lq.search.kind == "session":
        params["q"] = lq.search.text
    elif lq.search is not None and lq.search.kind == "model":
        params["model"] = lq.search.text
    query = urlencode(params)
    return "/dashboard/requests/tail" + (f"?{query}" if query else "")


def _link(request: Request, **changes: str | None) -> str:
    """This page's URL with `changes` (None removes a parameter)."""
    kept = [(k, v) for k, values in request.args.items() for v in values if k not in changes]
    kept += [(k, v) for k, v in changes.items() if v]
    query = urlencode(kept)
    return request.path + (f"?{query}" if query else "")


def pager(request: Request, lq: ListQuery, page: Any) -> Pager:
    first, last = page.first, page.last
    older_exists = (lq.newest_first and page.more) or (not lq.newest_first and last is not None)
    newer_exists = (lq.cursor is not None and lq.newest_first) or (
        not lq.newest_first and page.more
    )
    return Pager(
        newest=_link(request, before=None, after=None) if lq.cursor is not None else None,
        newer=(
            _link(request, before=None, after=format_cursor(first))
            if newer_exists and first is not None
            else None
        ),
        older=(
            _link(request, after=None, before=format_cursor(last))
            if older_exists and last is not None
            else None
        ),
        search_older=(
            _link(request, after=None, before=format_cursor(q.Cursor(page.reached)))
            if page.reached is not None
            else None
        ),
    )


async def load_rows(
    repo: RequestsRepo, lq: ListQuery, now: datetime
) -> tuple[Any, list[RowView], str | None]:
    """The page, its rows and how the search was matched (None without one)."""
    search = lq.search
    if search is not None and search.kind == "id":
        rows, more = await repo.by_id_prefix(search.text.lower(), lq.filter, lq.limit)
        if rows or not search.words:
            found = _IdPage(rows, more)
            return found, [row_view(r) for r in rows], "request id prefix"
        # Hex that names no request may be a word ("cafe", "deadbeef").
        words_filter = replace(lq.filter, words=search.words)
        page = await repo.list_page(
            words_filter, now, cursor=lq.cursor, newest_first=lq.newest_first, limit=lq.limit
        )
        return page, [row_view(r) for r in page.rows], "words (no request id starts so)"
    page = await repo.list_page(
        lq.filter, now, cursor=lq.cursor, newest_first=lq.newest_first, limit=lq.limit
    )
    matched = None
    if search is not None:
        matched = {"session": "session id prefix", "model": "model", "words": "words"}[search.kind]
    return page, [row_view(r) for r in page.rows], matched


@dataclass(frozen=True, slots=True)
class _IdPage:
    """An id search's answer in the shape of a list page: one page, no paging."""

    rows: list[dict[str, Any]]
    more: bool
    reached: datetime | None = None
    first: q.Cursor | None = None
    last: q.Cursor | None = None


def _context(lq: ListQuery | None, options: Options, values: dict[str, str]) -> dict[str, Any]:
    return {
        "lq": lq,
        "values": values,
        "options": options,
        "presets": list(PRESETS),
        "page_sizes": PAGE_SIZES,
        "statuses": STATUS_LABELS,
        "outcomes": OUTCOME_LABELS,
        "local_from": _local(lq, lq.filter.start) if lq else "",
        "local_to": _local(lq, lq.filter.end) if lq else "",
    }


def _local(lq: ListQuery, instant: datetime | None) -> str:
    """A `datetime-local` input's value in the page's zone."""
    if instant is None:
        return ""
    return instant.astimezone(zone(lq.tz_name)).strftime("%Y-%m-%dT%H:%M")


async def requests_page(request: Request) -> HTTPResponse:
    db = getattr(request.app.ctx, "db", None)
    repo: RequestsRepo | None = getattr(request.app.ctx, "requests_repo", None)
    options = await filter_options(db)
    values = first_values(request)
    now = datetime.now(UTC)
    try:
        lq = parse_list_query(values, now, frozenset(options.models))
    except FilterError as exc:
        context = _context(None, options, values)
        return render(request, "requests.html", status=400, problem=str(exc), **_empty(context))
    context = _context(lq, options, values)
    if repo is None:
        problem = "The request log is off (REQUEST_LOG=false) or its database is not configured."
        return render(request, "requests.html", status=503, problem=problem, **_empty(context))
    try:
        page, rows, matched = await load_rows(repo, lq, now)
    except (PyMongoError, TimeoutError) as exc:
        logger.warning("the request list could not be read: %s", exc)
        problem = "The database did not answer in time; try again, or narrow the filters."
        return render(request, "requests.html", status=503, problem=problem, **_empty(context))
    if not lq.newest_first and not page.more and len(rows) < lq.limit:
        # Nothing newer beyond this page: it is the newest page, shown whole.
        return redirect(_link(request, after=None, before=None), status=303)
    return render(
        request,
        "requests.html",
        problem=None,
        rows=rows,
        pager=pager(request, lq, page),
        matched=matched,
        reached=page.reached,
        filtered=_filtered(values),
        tail_url=tail_url(lq),
        tail_allowed=lq.tail_allowed,
        **context,
    )


def _filtered(values: dict[str, str]) -> bool:
    return any(
        k in values for k in ("model", "status", "outcome", "stream", "org", "session", "q")
    ) or any(k in values for k in ("range", "from", "to"))


def _empty(context: dict[str, Any]) -> dict[str, Any]:
    return {
        **context,
        "rows": [],
        "pager": Pager(None, None, None, None),
        "matched": None,
        "reached": None,
        "filtered": True,
        "tail_url": "",
        "tail_allowed": False,
    }
