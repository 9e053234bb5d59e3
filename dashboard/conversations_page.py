"""The Conversations list (`/dashboard/conversations`): Claude Code sessions,
newest activity first, per project and searchable.

The URL holds the whole view (`q`, `project`, `limit`, and the page: `before`,
the place of the last row of the page before, or for a search the place in the
log the page before stopped at), so a list can be bookmarked and Back returns to
it. Every read is bounded and index-backed (dashboard.conversations_data): one
page of at most `MAX_LIMIT` summaries, or one page of search hits read from at
most `conversations.search.PAGE_DOCS` matching requests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from pymongo.errors import PyMongoError
from sanic import Request
from sanic.response import HTTPResponse

from conversations.queries import MAX_QUERY_WORDS, query_words
from conversations.search import parse_cursor
from dashboard.conversations_data import (
    ListCursor,
    Row,
    list_page,
    project_options,
    search_page,
)
from dashboard.render import render
from storage.queries import Cursor

logger = logging.getLogger("proxy.dashboard")

PAGE_SIZES = (25, 50, 100)
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
QUERY_CHARS = 200
PROJECT_CHARS = 1024
MODELS_SHOWN = 3


class ListError(ValueError):
    """A parameter the list cannot use; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    q: str | None
    words: list[str]
    project: str | None
    limit: int
    before: ListCursor | None  # of the list
    matches_before: Cursor | None = None  # of a search: where its page starts


def _integer(values: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = values.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ListError(f"{name}: a whole number from {low} to {high:,}")
    return int(raw)


def parse_list_query(values: dict[str, str]) -> ListQuery:
    limit = _integer(values, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    text = values.get("q", "").strip() or None
    words: list[str] = []
    if text is not None:
        if len(text) > QUERY_CHARS:
            raise ListError(f"q: at most {QUERY_CHARS} characters")
        words = query_words(text)
        if not words:
            raise ListError("q: needs a word of at least 2 letters or digits")
        if len(words) > MAX_QUERY_WORDS:
            raise ListError(f"q: at most {MAX_QUERY_WORDS} words")
    project = values.get("project") or None
    if project is not None and len(project) > PROJECT_CHARS:
        raise ListError(f"project: at most {PROJECT_CHARS} characters")
    before = None
    matches_before = None
    if values.get("before") and words:
        # A search pages through the log, by the place of a request.
        matches_before = parse_cursor(values["before"])
        if matches_before is None:
            raise ListError("before: a place in the results as their links give it")
    elif values.get("before"):
        before = ListCursor.parse(values["before"])
        if before is None:
            raise ListError("before: a place in the list as its links give it")
    return ListQuery(text, words, project, limit, before, matches_before)


# ---- rows -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RowView:
    id: str
    href: str
    last_activity: datetime | None
    project_path: str | None
    project_name: str | None
    project_href: str | None
    first_message: str | None
    requests: int | None
    subagent_requests: int
    tokens: int | None
    cost: float | None
    unpriced: int
    errors: int
    duration: float | None
    models: list[str]
    more_models: int
    matches: int | None
    snippet: str | None


def thread_href(conversation_id: str) -> str:
    return f"/dashboard/conversations/{quote(conversation_id, safe='')}"


def project_href(project: str) -> str:
    return "/dashboard/conversations?" + urlencode({"project": project})


def row_view(row: Row) -> RowView:
    models: list[str] = row.get("models") or []
    latest = row.get("model")
    if isinstance(latest, str) and latest in models:  # the latest model first
        models = [latest] + [m for m in models if m != latest]
    project = row.get("projectPath")
    return RowView(
        id=row["id"],
        href=thread_href(row["id"]),
        last_activity=row.get("lastActivity"),
        project_path=project,
        project_name=row.get("projectName") or project,
        project_href=project_href(project) if project else None,
        first_message=row.get("firstMessage"),
        requests=row.get("requestCount"),
        subagent_requests=row.get("subagentRequests") or 0,
        tokens=row.get("totalTokens"),
        cost=row.get("cost"),
        unpriced=row.get("unpricedRequests") or 0,
        errors=row.get("errorCount") or 0,
        duration=row.get("duration"),
        models=models[:MODELS_SHOWN],
        more_models=max(0, len(models) - MODELS_SHOWN),
        matches=row.get("matches"),
        snippet=row.get("snippet"),
    )


# ---- the page -------------------------------------------------------------------------
def _values(request: Request) -> dict[str, str]:
    return {name: values[0] for name, values in request.args.items() if values}


async def conversations_page(request: Request) -> HTTPResponse:
    values = _values(request)
    context: dict[str, Any] = {
        "values": values,
        "page_sizes": PAGE_SIZES,
        "default_limit": DEFAULT_LIMIT,
        "projects": [],
        "rows": [],
        "lq": None,
        "older": None,
        "search_read": 0,
        "search_stopped": False,
    }
    try:
        lq = parse_list_query(values)
    except ListError as exc:
        return render(request, "conversations.html", status=400, problem=str(exc), **context)
    context["lq"] = lq
    db = getattr(request.app.ctx, "db", None)
    if db is None:
        problem = "The request log is off (REQUEST_LOG=false) or its database is not configured."
        return render(request, "conversations.html", status=503, problem=problem, **context)
    try:
        context["projects"] = await project_options(db)
        if lq.words:
            found = await search_page(db, lq.words, lq.project, lq.matches_before, lq.limit)
            rows = found.rows
            context.update(
                older=found.following, search_read=found.read, search_stopped=found.stopped
            )
        else:
            rows, following = await list_page(db, lq.project, lq.before, lq.limit)
            context["older"] = following.text() if following is not None else None
    except PyMongoError as exc:
        logger.warning("the conversation list could not be read: %s", exc)
        problem = "The database did not answer in time; try again."
        return render(request, "conversations.html", status=503, problem=problem, **context)
    context["rows"] = [row_view(r) for r in rows]
    return render(request, "conversations.html", problem=None, **context)
