"""The reads behind the Conversations list, each bounded and index-backed.

- A page of the list reads the conversation summaries (one document per
  conversation, kept by the recorder) newest activity first, by keyset: from a
  place (`before`: the last row of the page before) back in time, in growing
  ranges of `lastActivity` (conversations.listing). The list is never counted.
- A search runs the conversation search (conversations.search: the newest
  matching requests in time windows on `conversation_words_time`, at most
  `PAGE_DOCS` of them, grouped by conversation, latest match first, paged by
  keyset), then reads the hits' summaries by `_id` and one excerpt per hit by
  `requestId`.
- The project menu lists the projects of the newest `PROJECT_SCAN`
  conversations, read the same way.

Rows carry the summary's `models` (every model the conversation's requests
named), which the API's list leaves out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from conversations import listing
from conversations import queries as q
from conversations import search as cs
from conversations.summaries import list_item
from storage.mongo import CONVERSATIONS
from storage.queries import Cursor, from_epoch_ms

PROJECT_SCAN = 100
_CURSOR = re.compile(r"^(-?\d{1,15})_(.{1,128})$", re.DOTALL)

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ListCursor:
    """A place in the list's order: last activity (newest first), then id."""

    at: datetime
    id: str

    def text(self) -> str:
        return f"{round(self.at.timestamp() * 1000)}_{self.id}"

    @classmethod
    def parse(cls, text: str) -> ListCursor | None:
        found = _CURSOR.match(text)
        at = from_epoch_ms(found.group(1)) if found else None
        return cls(at, found.group(2)) if found and at else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def row_of(doc: dict[str, Any]) -> Row:
    """A summary document as a list row: the API's list item plus its models."""
    item = list_item(doc)
    item["models"] = _models(doc.get("models"))
    return item


def _models(value: object) -> list[str]:
    return sorted(m for m in value if isinstance(m, str)) if isinstance(value, list) else []


async def newest(
    db: AsyncDatabase[Any],
    project: str | None,
    before: ListCursor | None,
    limit: int,
    projection: dict[str, int] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` summaries after `before`, newest activity first, and whether
    there are more (conversations.listing)."""
    docs = await listing.newest(
        db,
        limit + 1,
        scope=q.list_project_filter(project) if project is not None else None,
        before=listing.Place(before.at, before.id) if before is not None else None,
        projection=projection,
    )
    return docs[:limit], len(docs) > limit


async def list_page(
    db: AsyncDatabase[Any], project: str | None, before: ListCursor | None, limit: int
) -> tuple[list[Row], ListCursor | None]:
    """One page of the list and the place the next one starts (None: the end)."""
    docs, more = await newest(db, project, before, limit)
    rows = [row_of(d) for d in docs]
    last = docs[-1] if docs and more else None
    cursor = ListCursor(_aware(last["lastActivity"]), str(last["_id"])) if last else None
    return rows, cursor


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of search results: `rows` latest match first; `following`: the
    next page's place (None: nothing older matches); `read`: the matching
    requests read; `stopped`: the read ended at its budget before the page was
    full (older matches may follow)."""

    rows: list[Row]
    following: str | None
    read: int
    stopped: bool


async def search_page(
    db: AsyncDatabase[Any],
    words: list[str],
    project: str | None,
    before: Cursor | None,
    limit: int,
) -> SearchResult:
    """Conversations whose requests hold every word, latest match first, from
    `before` back; each row with `matches` (its matching requests among those
    read), `lastMatch`, `matchedRequestId` and a `snippet`."""
    found = await cs.search(db, words, project=project, before=before, limit=limit)
    ids = [hit.conversation_id for hit in found.hits]
    summaries: dict[str, Row] = {}
    if ids:
        docs = await db[CONVERSATIONS].find({"_id": {"$in": ids}}).limit(len(ids)).to_list(None)
        summaries = {doc["_id"]: row_of(doc) for doc in docs}
    excerpts = await cs.excerpts(db, [hit.request_id for hit in found.hits], words)
    rows = []
    for hit in found.hits:
        row = summaries.get(hit.conversation_id) or _bare(hit.conversation_id)
        row.update(
            matches=hit.matches,
            lastMatch=hit.last_match,
            matchedRequestId=hit.request_id,
            snippet=excerpts.get(hit.request_id),
        )
        rows.append(row)
    following = cs.cursor_text(found.following) if found.following is not None else None
    return SearchResult(rows, following, found.read, found.stopped)


async def project_options(db: AsyncDatabase[Any]) -> list[str]:
    """The projects of the newest conversations, by name."""
    docs, _ = await newest(db, None, None, PROJECT_SCAN, {"projectPath": 1, "lastActivity": 1})
    return sorted({d["projectPath"] for d in docs if isinstance(d.get("projectPath"), str)})


def _bare(conversation_id: str) -> Row:
    """A hit whose summary is not written yet (the recorder is a batch behind)."""
    return {
        "id": conversation_id,
        "requestCount": None,
        "startTime": None,
        "lastActivity": None,
        "projectPath": None,
        "projectName": None,
        "firstMessage": None,
        "totalTokens": None,
        "cost": None,
        "unpricedRequests": 0,
        "errorCount": 0,
        "subagentRequests": 0,
        "duration": None,
        "models": [],
    }
