"""Conversation search: the newest matching requests, grouped by conversation.

A search reads the requests holding every word newest first, in time windows on
`conversation_words_time` (storage.requests_repo's `read`: one word looked up,
the others and the project checked on what it found), and collects distinct
conversations in the order of their latest match until it has one more than the
page shows or has read `max_docs` requests. So a search costs at most `max_docs`
request documents whatever the word: the development database decodes every
document it reads (~17 KB each), and a common word is held by most of the log.

Conversations are ranked by their latest match, newest first. The next page
starts where this one stopped (a keyset `Cursor` on the request order), so a
page never re-reads the pages before it; a conversation whose matches straddle
that place can show again on an older page, with its older matches. `matches`
counts a conversation's matching requests within the page's stretch of the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from conversations import queries as q
from conversations.text import snippet
from storage.list_plan import LIST_BUDGET_SECONDS
from storage.mongo import REQUESTS
from storage.queries import Cursor, RequestFilter, from_epoch_ms
from storage.requests_repo import RequestsRepo

# Requests one page of results may read: ~150 documents is what the development
# database decodes within the dashboard's 100 ms (it costs ~0.25 ms each).
PAGE_DOCS = 150
# What one search reads of a matching request.
HIT_PROJECTION: dict[str, int] = {"_id": 0, "requestId": 1, "timestamp": 1, "conversation.id": 1}
# A search cursor's text: the place of the last request the page covered
# (`<epoch ms>_<request id>`), or the time its read stopped at (`<epoch ms>`).
_CURSOR = re.compile(r"^(\d{1,15})(?:_([A-Za-z0-9._:-]{1,128}))?$")
# How much further than the conversations still wanted a next read reaches, at
# the density of distinct conversations seen so far.
_MARGIN = 1.5


@dataclass(frozen=True, slots=True)
class Hit:
    """One conversation found: how many of its requests matched in the stretch
    read, its latest match and that request's id (the excerpt's)."""

    conversation_id: str
    matches: int
    last_match: datetime
    request_id: str


@dataclass(frozen=True, slots=True)
class SearchPage:
    """`hits` latest match first. `following`: where the next (older) page starts,
    None when nothing older matches. `read`: matching requests read. `stopped`:
    the page ended because it read `max_docs` requests (or its time budget) before
    it found a full page."""

    hits: list[Hit]
    following: Cursor | None
    read: int
    stopped: bool


def cursor_text(cursor: Cursor) -> str:
    ms = round(cursor.timestamp.timestamp() * 1000)
    return f"{ms}_{cursor.request_id}" if cursor.request_id else str(ms)


def parse_cursor(text: str) -> Cursor | None:
    found = _CURSOR.match(text)
    at = from_epoch_ms(found.group(1)) if found else None
    return Cursor(at, found.group(2)) if found and at else None


async def search(
    db: AsyncDatabase[Any],
    words: list[str],
    *,
    project: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    before: Cursor | None = None,
    limit: int,
    max_docs: int = PAGE_DOCS,
) -> SearchPage:
    """Up to `limit` conversations with a request holding every word, from
    `before` back (the newest matches when None), latest match first, reading at
    most `max_docs` matching requests."""
    f = RequestFilter(words=tuple(words), project=project, start=start, end=end)
    repo = RequestsRepo(db)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    firsts: list[int] = []  # where each distinct conversation first shows in `rows`
    seen: set[str] = set()
    place = before
    reached: Cursor | None = None
    exhausted = False
    wanted = limit + 1  # one more than the page shows tells where the next one starts
    chunk = min(max_docs, wanted)
    while True:
        page = await repo.read(
            f,
            now,
            cursor=place,
            limit=chunk,
            maximum=chunk,
            projection=HIT_PROJECTION,
            budget=LIST_BUDGET_SECONDS,
        )
        for row in page.rows:
            cid = _conversation(row)
            if cid is not None and cid not in seen:
                seen.add(cid)
                firsts.append(len(rows))
            rows.append(row)
        if page.reached is not None:  # out of windows or time: the next page goes on there
            reached = Cursor(_aware(page.reached))
            break
        if not page.more:
            exhausted = True
            break
        if len(firsts) >= wanted or len(rows) >= max_docs:
            break
        place = page.last
        # The next read reaches as far as the conversations still wanted need at
        # the density seen so far (with a margin), within what is left to read.
        still = wanted - len(firsts)
        per_hit = len(rows) / max(1, len(firsts))
        chunk = max(1, min(max_docs - len(rows), max(still, round(still * per_hit * _MARGIN))))
    if len(firsts) > limit:  # a full page: the next one starts at the first left out
        cut = firsts[limit]
        return SearchPage(_hits(rows[:cut]), _place(rows[cut - 1]), len(rows[:cut]), False)
    following = None if exhausted else reached or (_place(rows[-1]) if rows else before)
    return SearchPage(_hits(rows), following, len(rows), following is not None)


def _hits(rows: list[dict[str, Any]]) -> list[Hit]:
    """The conversations of `rows` (newest first) in the order of their latest
    match, with their count of matching requests among `rows`."""
    first: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for row in rows:
        cid = _conversation(row)
        if cid is None:
            continue
        counts[cid] = counts.get(cid, 0) + 1
        first.setdefault(cid, row)
    return [
        Hit(cid, counts[cid], _aware(row["timestamp"]), str(row["requestId"]))
        for cid, row in first.items()
    ]


async def excerpts(
    db: AsyncDatabase[Any], request_ids: list[str], words: list[str]
) -> dict[str, str | None]:
    """An excerpt around the words for each request (one read by `requestId`)."""
    if not request_ids:
        return {}
    docs = await (
        db[REQUESTS]
        .find({"requestId": {"$in": request_ids}}, q.SNIPPET_PROJECTION)
        .limit(len(request_ids))
        .to_list(None)
    )
    out: dict[str, str | None] = {}
    for doc in docs:
        conv = doc.get("conversation") or {}
        content = [b for t in conv.get("turns") or [] for b in t.get("content") or []]
        if conv.get("reply"):
            content += conv["reply"].get("content") or []
        out[doc["requestId"]] = snippet(content, words)
    return out


def _conversation(row: dict[str, Any]) -> str | None:
    cid = (row.get("conversation") or {}).get("id")
    return cid if isinstance(cid, str) else None


def _place(row: dict[str, Any]) -> Cursor:
    return Cursor(_aware(row["timestamp"]), str(row["requestId"]))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
