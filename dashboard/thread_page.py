"""The thread view (`/dashboard/conversations/<id>`) and its fragments.

The page shows the conversation's totals (its summary, by `_id`) and the first
page of its thread. A long conversation is read a window of requests at a time
(dashboard.thread_window), each window rebuilt with the conversation service's
own rules (conversations.thread.rebuild) and shown a page of turns at a time
(dashboard.thread_view); "load more" goes on within the window, then into the
next one (`?at=`). `?agent=` shows one subagent's thread of the window, `?from=`
a later page of turns. `/dashboard/conversations/<id>/turns` answers the same
parameters with the turns alone, an HTML fragment the page's script appends,
rendered by the same autoescaping templates as the page.

Reading by windows keeps every page to a bounded number of request documents
however long the conversation. A window shows the history as its requests
logged it: a later request that rewrote earlier turns (a rewind) shows its
version where it was sent, while the earlier version stays on the page before
(the API's whole thread keeps only the newer one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from pymongo.errors import PyMongoError
from sanic import Request
from sanic.response import HTTPResponse

from conversations.queries import ID_PATTERN
from conversations.summaries import list_item
from conversations.text import one_line
from conversations.thread import rebuild, summary
from dashboard.conversations_page import project_href
from dashboard.render import render
from dashboard.thread_blocks import Results
from dashboard.thread_models import ThreadPage, Totals
from dashboard.thread_view import Place, build_page, page_url, totals_of, when
from dashboard.thread_window import Cursor, read_window
from storage.mongo import CONVERSATIONS

logger = logging.getLogger("proxy.dashboard")

AGENT_CHARS = 256
MAX_FROM = 100_000
TITLE_CHARS = 160


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    href: str
    title: str
    project_path: str | None
    project_name: str | None
    project_href: str | None
    totals: Totals
    subagent_requests: int
    start: datetime | None
    last: datetime | None
    duration: float | None
    models: list[str]
    incomplete: bool


def conversation_of(data: dict[str, Any], models: list[str]) -> Conversation:
    project = data.get("projectPath") if isinstance(data.get("projectPath"), str) else None
    first = data.get("firstMessage")
    latest = data.get("model")
    if isinstance(latest, str) and latest not in models:
        models = [*models, latest]
    return Conversation(
        id=str(data["id"]),
        href=page_url(str(data["id"]), None, 0),
        title=one_line(first, TITLE_CHARS) if isinstance(first, str) and first.strip() else "",
        project_path=project,
        project_name=data.get("projectName") or project,
        project_href=project_href(project) if project else None,
        totals=totals_of(data),
        subagent_requests=data.get("subagentRequests") or 0,
        start=when(data.get("startTime")),
        last=when(data.get("lastActivity")),
        duration=data.get("duration"),
        models=sorted(models),
        incomplete=bool(data.get("incomplete")),
    )


class PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Wanted:
    conversation_id: str
    agent: str | None
    start: int
    at: Cursor | None


def parse_wanted(raw_id: str, args: dict[str, str]) -> Wanted:
    # Sanic hands the path parameter over still percent-encoded: `a%3Ab` is `a:b`.
    conversation_id = unquote(raw_id)
    if not ID_PATTERN.match(conversation_id):
        raise PageError(400, "A conversation id is 1 to 128 letters, digits, '.', '_', ':' or '-'.")
    agent = args.get("agent") or None
    if agent is not None and len(agent) > AGENT_CHARS:
        raise PageError(400, f"agent: at most {AGENT_CHARS} characters")
    raw_from = args.get("from", "").strip()
    if raw_from and (not raw_from.isdigit() or int(raw_from) > MAX_FROM):
        raise PageError(400, f"from: a turn number from 0 to {MAX_FROM:,}")
    at = None
    if args.get("at"):
        at = Cursor.parse(args["at"])
        if at is None:
            raise PageError(400, "at: a place in the conversation as its links give it")
    return Wanted(conversation_id, agent, int(raw_from or 0), at)


@dataclass(frozen=True, slots=True)
class Loaded:
    conversation: Conversation
    page: ThreadPage
    at: Cursor | None  # the window shown (None: the first)
    window_start: datetime | None


def _results(doc: dict[str, Any] | None) -> Results:
    """The tool results a request sent, by the call they answer."""
    out: Results = {}
    for turn in ((doc or {}).get("conversation") or {}).get("turns") or []:
        for block in turn.get("content") or []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                out[str(block.get("tool_use_id") or "")] = (block, doc.get("requestId"))  # type: ignore[union-attr]
    return out


async def load(request: Request, wanted: Wanted) -> Loaded:
    db = getattr(request.app.ctx, "db", None)
    if db is None:
        raise PageError(503, "The request log is off (REQUEST_LOG=false) or not configured.")
    cid = wanted.conversation_id
    try:
        summary_doc = await db[CONVERSATIONS].find_one({"_id": cid})
        window = await read_window(db, cid, summary_doc, wanted.at)
    except PyMongoError as exc:
        logger.warning("conversation %s could not be read: %s", cid, exc)
        raise PageError(503, "The database did not answer in time; try again.") from exc
    if not window.docs:
        where = " at this place" if wanted.at is not None else ""
        raise PageError(404, f"No conversation with id {cid}{where}.")
    thread, missing = rebuild(window.docs)
    mains = [d for d in window.docs if (d.get("conversation") or {}).get("thread") == "main"]
    expected: set[str] = set()
    carried: frozenset[str] = frozenset()
    if wanted.at is not None and mains:
        # A later window starts inside a history: its first request answers the
        # calls shown on the page before, and starts after what those pages hold.
        expected = {mains[0]["requestId"]}
        carried = frozenset(_results(mains[0]))
    place = Place(
        at=wanted.at.text() if wanted.at is not None else None,
        next_at=window.next.text() if window.next is not None else None,
        carried=carried,
        extra=_results(window.lookahead),
    )
    page = build_page(thread, cid, agent=wanted.agent, start=wanted.start, place=place)
    if page is None:
        raise PageError(404, f"No subagent {wanted.agent} in this part of the conversation.")
    data = list_item(summary_doc) if summary_doc is not None else summary(window.docs)
    data.update(id=cid, incomplete=bool(missing - expected))
    models = sorted(m for m in (summary_doc or {}).get("models") or [] if isinstance(m, str))
    start = window.docs[0].get("timestamp")
    return Loaded(conversation_of(data, models), page, wanted.at, start)


def _args(request: Request) -> dict[str, str]:
    return {name: values[0] for name, values in request.args.items() if values}


async def thread_page(request: Request, raw_id: str) -> HTTPResponse:
    try:
        loaded = await load(request, parse_wanted(raw_id, _args(request)))
    except PageError as exc:
        return render(
            request, "thread.html", status=exc.status, problem=exc.message, conv=None, page=None
        )
    return render(
        request,
        "thread.html",
        problem=None,
        conv=loaded.conversation,
        page=loaded.page,
        later_part=loaded.at is not None,
        window_start=loaded.window_start,
    )


async def thread_fragment(request: Request, raw_id: str) -> HTTPResponse:
    """The turns of one page alone, for the page's script to append."""
    try:
        loaded = await load(request, parse_wanted(raw_id, _args(request)))
    except PageError as exc:
        return render(request, "thread_problem.html", status=exc.status, problem=exc.message)
    return render(request, "thread_turns.html", conv=loaded.conversation, page=loaded.page)
