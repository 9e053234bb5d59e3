"""Reads of conversations for the dashboard API (executes conversations.queries)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from conversations import listing
from conversations import queries as q
from conversations import search as cs
from conversations.fields import project_name
from conversations.summaries import list_item
from conversations.text import normalise_message
from conversations.thread import duration_ms, rebuild, summary
from storage.bodies import load_bodies
from storage.mongo import CONVERSATIONS, REQUESTS

# Gaps in a thread are filled from request bodies; a few per read at most.
MAX_BODY_FILLS = 5
# The matching requests an API search reads at most (its pages are numbered, so
# page n reads the conversations of the pages before it too).
API_SEARCH_DOCS = 1_000


class ConversationsRepo:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self._db = db
        self._requests = db[REQUESTS]
        self._conversations = db[CONVERSATIONS]

    async def page(
        self, page: int, limit: int, *, model: str | None = None, project: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of conversation summaries, newest activity first, and how many
        there are. The summaries are read newest first in ranges of `lastActivity`
        (the development database sorts a whole index range before it skips), so a
        page reads the summaries before it and its own, never the whole collection."""
        scope = q.list_project_filter(project) if project is not None else {}
        matching = q.list_filter(model) if project is None else {}
        total = await self._count(scope, matching)
        offset = (page - 1) * limit
        if offset >= total:
            return [], total
        docs = await self._newest(scope, matching, offset + limit)
        return [_jsonable(list_item(d)) for d in docs[offset:]], total

    async def _count(self, scope: dict[str, Any], matching: dict[str, Any]) -> int:
        """Summaries in scope: the collection's count (a `count` command: no document
        decoded), or the project's index range, or (model filter) every summary."""
        if not scope and not matching:
            return await self._conversations.estimated_document_count()
        pipeline: list[dict[str, Any]] = [{"$match": scope or matching}]
        if scope and matching:
            pipeline.append({"$match": matching})
        rows = await (await self._conversations.aggregate([*pipeline, {"$count": "n"}])).to_list(1)
        return int(rows[0]["n"]) if rows else 0

    async def _newest(
        self, scope: dict[str, Any], matching: dict[str, Any], wanted: int
    ) -> list[dict[str, Any]]:
        """The `wanted` newest summaries in scope (conversations.listing)."""
        return await listing.newest(self._db, wanted, scope=scope, matching=matching)

    async def search(
        self,
        words: list[str],
        project: str | None,
        start: datetime | None,
        end: datetime | None,
        page: int,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """One page of conversations with a request holding every word, latest
        match first (conversations.search), the conversations ranked through this
        page, and whether more follow. Only the newest `API_SEARCH_DOCS` matching
        requests are read; `start`/`end` reach further back."""
        found = await cs.search(
            self._db,
            words,
            project=project,
            start=start,
            end=end,
            limit=page * limit,
            max_docs=API_SEARCH_DOCS,
        )
        hits = found.hits[(page - 1) * limit :]
        summaries = await self._listed([h.conversation_id for h in hits])
        excerpts = await cs.excerpts(self._db, [h.request_id for h in hits], words)
        items = []
        for hit in hits:
            item = dict(summaries.get(hit.conversation_id) or {"id": hit.conversation_id})
            item.update(
                matches=hit.matches,
                lastMatch=_iso(hit.last_match),
                matchedRequestId=hit.request_id,
                snippet=excerpts.get(hit.request_id),
            )
            items.append(item)
        # More only when the read found a conversation beyond this page: a read
        # that stopped at its budget has nothing further for the next page number.
        more = found.following is not None and not found.stopped
        return items, len(found.hits), more

    async def get(self, conversation_id: str, project: str | None) -> dict[str, Any] | None:
        """The conversation with its thread, JSON-ready (datetimes as ISO 8601)."""
        found = await self.thread(conversation_id, project)
        return _jsonable(found) if found is not None else None

    async def thread(self, conversation_id: str, project: str | None) -> dict[str, Any] | None:
        """`get` with the datetimes kept: a thread of thousands of turns is
        encoded once (with `json_default`), not walked once more to convert them."""
        docs = (
            await self._requests.find(q.thread_filter(conversation_id), q.THREAD_PROJECTION)
            .sort(list(q.ORDER.items()))
            .limit(q.MAX_THREAD_REQUESTS)
            .to_list(None)
        )
        if not docs:
            return None
        view = summary(docs)
        if project is not None and view["projectPath"] != project:
            return None  # the id exists, but not in that project
        thread, missing = rebuild(docs)
        if missing:
            fills = await self._histories(sorted(missing)[:MAX_BODY_FILLS])
            thread, missing = rebuild(docs, fills)
        view.update(thread)
        view["incomplete"] = bool(missing)
        return view

    # ---- helpers ----------------------------------------------------------------------
    async def _listed(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The list items of `ids` from their summaries (one indexed read by `_id`;
        a conversation whose summary is not written yet, the recorder being a
        batch behind, is left out and shown by its id alone)."""
        if not ids:
            return {}
        docs = await self._conversations.find({"_id": {"$in": ids}}).limit(len(ids)).to_list(None)
        return {d["_id"]: _jsonable(list_item(d)) for d in docs}

    async def _summaries(self, ids: list[str]) -> list[dict[str, Any]]:
        """Summaries of `ids`, in the order given."""
        if not ids:
            return []
        groups = await (await self._requests.aggregate(q.summary_pipeline(ids))).to_list(None)
        mains = await (await self._requests.aggregate(q.main_thread_pipeline(ids))).to_list(None)
        main = {m["_id"]: m for m in mains}
        by_id = {}
        for group in groups:
            cid = group.pop("_id")
            first_prompt, last_model = group.pop("firstPrompt"), group.pop("lastModel")
            found = main.get(cid, {})
            group.update(
                id=cid,
                firstMessage=found["firstMessage"] if found else first_prompt,
                model=found["model"] if found else last_model,
                projectName=project_name(group.get("projectPath")),
                duration=duration_ms(group["startTime"], group["lastActivity"]),
                cost=round(group["cost"], 10),
            )
            by_id[cid] = _jsonable(group)
        return [by_id[cid] for cid in ids if cid in by_id]

    async def _histories(self, request_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The messages each request sent, read back from its stored body."""
        fills: dict[str, list[dict[str, Any]]] = {}
        for request_id in request_ids:
            doc = await self._requests.find_one(
                {"requestId": request_id},
                {"request.body": 1, "request.bodyRef": 1, "request.bodyEncoding": 1},
            )
            if doc is None:
                continue
            doc = await load_bodies(self._db, doc)
            section = doc.get("request") or {}
            if section.get("bodyEncoding") != "utf-8":
                continue
            try:
                body = json.loads(section.get("body") or "")
            except ValueError:
                continue
            messages = body.get("messages") if isinstance(body, dict) else None
            if isinstance(messages, list):
                fills[request_id] = [normalise_message(m) for m in messages]
        return fills


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def json_default(value: object) -> str:
    """The `default` of a JSON encoder writing a `thread` answer: its datetimes
    as `get` writes them (works with `json.dumps` and `ujson.dumps` alike)."""
    if isinstance(value, datetime):
        return _iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
