"""Reads of the request log for the dashboard API (executes storage.queries)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from stats.rollups import ROLLUPS
from storage import queries as q
from storage.bodies import delete_all_bodies, load_bodies
from storage.mongo import CONVERSATIONS, REQUESTS


class RequestsRepo:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self._db = db
        self._requests = db[REQUESTS]

    async def page(
        self, page: int, limit: int, model: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        where = q.model_filter(model)
        cursor = (
            self._requests.find(where, q.SUMMARY_PROJECTION)
            .sort(q.NEWEST_FIRST)
            .skip((page - 1) * limit)
            .limit(limit)
        )
        items = await cursor.to_list(None)
        total = await self._requests.count_documents(where)
        return [_public(d) for d in items], total

    async def summaries(
        self,
        model: str | None,
        start: datetime | None,
        end: datetime | None,
        offset: int,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        where = q.summary_filter(model, start, end)
        cursor = self._requests.find(where, q.SUMMARY_PROJECTION).sort(q.NEWEST_FIRST).skip(offset)
        if limit:
            cursor = cursor.limit(limit)
        items = await cursor.to_list(None)
        total = await self._requests.count_documents(where)
        return [_public(d) for d in items], total

    async def latest_date(self) -> datetime | None:
        doc = await self._requests.find_one({}, {"timestamp": 1}, sort=[("timestamp", -1)])
        return doc["timestamp"] if doc else None

    async def get(self, request_id: str) -> dict[str, Any] | None:
        matches = await self._requests.find(q.id_filter(request_id)).limit(2).to_list(None)
        if len(matches) != 1:
            return None  # unknown, or a short id that is ambiguous
        return _public(await load_bodies(self._db, matches[0]), full=True)

    async def delete_all(self) -> int:
        result = await self._requests.delete_many({})
        await delete_all_bodies(self._db)
        # The stats and the conversation summaries were derived from them.
        await self._db[ROLLUPS].delete_many({})
        await self._db[CONVERSATIONS].delete_many({})
        return result.deleted_count


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
