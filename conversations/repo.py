"""Reads of conversations for the dashboard API (executes conversations.queries)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from conversations import queries as q
from conversations.fields import project_name
from conversations.summaries import list_item
from conversations.text import normalise_message, snippet
from conversations.thread import duration_ms, rebuild, summary
from storage.bodies import load_bodies
from storage.mongo import CONVERSATIONS, REQUESTS

# Gaps in a thread are filled from request bodies; a few per read at most.
MAX_BODY_FILLS = 5


class ConversationsRepo:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self._db = db
        self._requests = db[REQUESTS]
        self._conversations = db[CONVERSATIONS]

    async def page(
        self, page: int, limit: int, *, model: str | None = None, project: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of conversation summaries, newest activity first."""
        where = q.list_project_filter(project) if project is not None else q.list_filter(model)
        docs = (
            await self._conversations.find(where)
            .sort(q.LIST_SORT)
            .skip((page - 1) * limit)
            .limit(limit)
            .to_list(None)
        )
        total = await self._conversations.count_documents(where)
        return [_jsonable(list_item(d)) for d in docs], total

    async def search(
        self,
        words: list[str],
        project: str | None,
        start: datetime | None,
        end: datetime | None,
        page: int,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        pipeline = q.search_pipeline(q.search_match(words, project, start, end), page, limit)
        result = await (await self._requests.aggregate(pipeline)).to_list(None)
        facet = result[0] if result else {"items": [], "total": []}
        hits = facet["items"]
        total = facet["total"][0]["n"] if facet["total"] else 0
        summaries = {s["id"]: s for s in await self._summaries([h["_id"] for h in hits])}
        excerpts = await self._snippets([h["requestId"] for h in hits], words)
        items = []
        for hit in hits:
            item = dict(summaries.get(hit["_id"]) or {"id": hit["_id"]})
            item.update(
                matches=hit["matches"],
                lastMatch=_iso(hit["lastMatch"]),
                matchedRequestId=hit["requestId"],
                snippet=excerpts.get(hit["requestId"]),
            )
            items.append(item)
        return items, total

    async def get(self, conversation_id: str, project: str | None) -> dict[str, Any] | None:
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
        return _jsonable(view)

    # ---- helpers ----------------------------------------------------------------------
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

    async def _snippets(self, request_ids: list[str], words: list[str]) -> dict[str, str | None]:
        if not request_ids:
            return {}
        docs = await self._requests.find(
            {"requestId": {"$in": request_ids}}, q.SNIPPET_PROJECTION
        ).to_list(None)
        out: dict[str, str | None] = {}
        for doc in docs:
            conv = doc.get("conversation") or {}
            content = [b for t in conv.get("turns") or [] for b in t.get("content") or []]
            if conv.get("reply"):
                content += conv["reply"].get("content") or []
            out[doc["requestId"]] = snippet(content, words)
        return out

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


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
