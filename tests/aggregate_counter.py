"""Counts what aggregations of one collection return, for tests that bound reads."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection


def count_aggregate_rows(monkeypatch: pytest.MonkeyPatch, collection: str) -> list[int]:
    """Patches `aggregate`: each aggregation of `collection` appends how many
    documents it returned to the list given back (others pass through)."""
    read: list[int] = []
    aggregate = AsyncCollection.aggregate

    async def counting(self: AsyncCollection[Any], pipeline: Any, *a: Any, **kw: Any) -> Any:
        cursor = await aggregate(self, pipeline, *a, **kw)
        if self.name != collection:
            return cursor
        rows = await cursor.to_list(None)
        read.append(len(rows))

        class Done:
            async def to_list(self, _length: int | None = None) -> list[Any]:
                return rows

        return Done()

    monkeypatch.setattr(AsyncCollection, "aggregate", counting)
    return read
