"""The reads behind the Conversations list, each bounded and index-backed.

- A page of the list reads the conversation summaries (one document per
  conversation, kept by the recorder) newest activity first, by keyset: from a
  place (`before`: the last row of the page before) back in time, in ranges of
  `lastActivity` on the `last_activity` index (`project_last_activity` for one
  project). The development database reads a whole index range before it sorts
  and limits, so a range is kept near the rows a page needs: six hours first,
  each next one sized by what the last found (at most 4x wider), at most
  `LIST_ROUNDS` ranges. The list is never counted.
- A search runs the conversation search (conversations.queries: one word
  looked up in the multikey `conversation_words_time` index, the others checked
  on what it found, at most `MAX_SEARCH_DOCS` requests), then reads the hits'
  summaries by `_id` and one excerpt per hit by `requestId`.
- The project menu lists the projects of the newest `PROJECT_SCAN`
  conversations, read the same way.

Rows carry the summary's `models` (every model the conversation's requests
named), which the API's list leaves out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from conversations import queries as q
from conversations.summaries import list_item
from conversations.text import snippet
from storage.mongo import CONVERSATIONS, REQUESTS

MAX_SEARCH_PAGE = q.MAX_SEARCH_DOCS  # a search ranks at most this many conversations
PROJECT_SCAN = 200
FIRST_SPAN = timedelta(hours=6)
LIST_ROUNDS = 16
MAX_GROWTH = 4.0
# Clocks disagree: a summary's last activity may be a little ahead of ours.
SKEW = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
        if found is None:
            return None
        try:
            at = datetime.fromtimestamp(int(found.group(1)) / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return cls(at, found.group(2))


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
    there are more."""
    conversations = db[CONVERSATIONS]
    scope = q.list_project_filter(project) if project is not None else {}

    async def read(where: dict[str, Any], count: int) -> list[dict[str, Any]]:
        cursor = conversations.find({**where, **scope}, projection).sort(q.LIST_SORT)
        return await cursor.limit(count).to_list(None)

    found: list[dict[str, Any]] = []
    if before is not None:  # the rest of the rows sharing the last one's time
        found += await read({"lastActivity": before.at, "_id": {"$gt": before.id}}, limit + 1)
    upper = before.at if before is not None else datetime.now(UTC) + SKEW
    span = FIRST_SPAN
    for rounds in range(1, LIST_ROUNDS + 1):
        if len(found) > limit:
            break
        lower = upper - min(span, upper - EPOCH)
        window: dict[str, Any] = {"$lt": upper}
        last = rounds == LIST_ROUNDS or lower <= EPOCH
        if not last:  # the last range reaches back to the first
            window["$gte"] = lower
        docs = await read({"lastActivity": window}, limit + 1 - len(found))
        found += docs
        if last:
            break
        wanted = limit + 1 - len(found)
        growth = MAX_GROWTH if not docs else min(MAX_GROWTH, max(1.0, wanted / len(docs)))
        upper, span = lower, span * growth
    return found[:limit], len(found) > limit


async def list_page(
    db: AsyncDatabase[Any], project: str | None, before: ListCursor | None, limit: int
) -> tuple[list[Row], ListCursor | None]:
    """One page of the list and the place the next one starts (None: the end)."""
    docs, more = await newest(db, project, before, limit)
    rows = [row_of(d) for d in docs]
    last = docs[-1] if docs and more else None
    cursor = ListCursor(_aware(last["lastActivity"]), str(last["_id"])) if last else None
    return rows, cursor


async def search_page(
    db: AsyncDatabase[Any], words: list[str], project: str | None, page: int, limit: int
) -> tuple[list[Row], int]:
    """Conversations whose requests hold every word, most matching requests first;
    each row with `matches`, `lastMatch`, `matchedRequestId` and a `snippet`."""
    pipeline = q.search_pipeline(q.search_match(words, project, None, None), page, limit)
    result = await (await db[REQUESTS].aggregate(pipeline)).to_list(None)
    facet = result[0] if result else {"items": [], "total": []}
    hits: list[dict[str, Any]] = facet["items"]
    total = facet["total"][0]["n"] if facet["total"] else 0
    ids = [hit["_id"] for hit in hits]
    summaries = {
        doc["_id"]: row_of(doc)
        for doc in await db[CONVERSATIONS].find({"_id": {"$in": ids}}).to_list(None)
    }
    excerpts = await _snippets(db, [hit["requestId"] for hit in hits], words)
    rows = []
    for hit in hits:
        row = summaries.get(hit["_id"]) or _bare(hit["_id"])
        row.update(
            matches=hit["matches"],
            lastMatch=hit["lastMatch"],
            matchedRequestId=hit["requestId"],
            snippet=excerpts.get(hit["requestId"]),
        )
        rows.append(row)
    return rows, total


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


async def _snippets(
    db: AsyncDatabase[Any], request_ids: list[str], words: list[str]
) -> dict[str, str | None]:
    if not request_ids:
        return {}
    docs = await (
        db[REQUESTS].find({"requestId": {"$in": request_ids}}, q.SNIPPET_PROJECTION).to_list(None)
    )
    out: dict[str, str | None] = {}
    for doc in docs:
        conv = doc.get("conversation") or {}
        content = [b for t in conv.get("turns") or [] for b in t.get("content") or []]
        if conv.get("reply"):
            content += conv["reply"].get("content") or []
        out[doc["requestId"]] = snippet(content, words)
    return out
