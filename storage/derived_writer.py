"""Keeps a collection derived from the request documents (the stats rollups, the
conversation summaries) in step with the documents the log writer stores.

Called with exactly the documents an insert stored (duplicates of earlier
attempts excluded), so a replayed journal never counts a request twice. Failed
updates keep their deltas, merged into the next attempt; a process that dies
before then leaves the derived documents short by those requests, which
`python -m storage.rebuild_rollups` repairs (the request documents are the
source of truth).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

logger = logging.getLogger("proxy.storage")

# Documents folded between two yields to the event loop (~15 µs each, batched).
FOLD_CHUNK = 20


class Upsert(Protocol):
    def update(self) -> UpdateOne: ...


D = TypeVar("D", bound=Upsert)


class DerivedWriter(Generic[D]):
    def __init__(
        self,
        collection: AsyncCollection[Any],
        fold: Callable[[list[dict[str, Any]]], Iterable[D]],
        merge_into: Callable[[dict[str, D], Iterable[D]], None],
        key: Callable[[D], str],
        what: str,
    ) -> None:
        self._collection = collection
        self._fold = fold
        self._merge_into = merge_into
        self._key = key
        self._what = what
        self._pending: dict[str, D] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def apply(self, documents: list[dict[str, Any]]) -> bool:
        """Count `documents` in; False if some deltas wait for a retry."""
        cancelled: asyncio.CancelledError | None = None
        for start in range(0, len(documents), FOLD_CHUNK):
            self._merge_into(self._pending, self._fold(documents[start : start + FOLD_CHUNK]))
            if cancelled is None:
                # Folding runs on the event loop that serves requests: in small
                # slices, so a big batch never stalls them for long.
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError as exc:
                    # These documents are stored: count all of them, then stop.
                    cancelled = exc
        if cancelled is not None:
            raise cancelled
        if not self._pending:
            return True
        deltas = list(self._pending.values())
        try:
            await self._collection.bulk_write([d.update() for d in deltas], ordered=False)
        except BulkWriteError as exc:
            failed = {e["index"] for e in exc.details.get("writeErrors", [])}
            self._pending = {self._key(deltas[i]): deltas[i] for i in failed}
            logger.warning(
                "%d %s updates failed; retrying with the next batch", len(failed), self._what
            )
            return False
        except PyMongoError as exc:
            # Unknown how much of an unordered bulk landed; retrying may count a
            # few requests twice, which a rebuild corrects. Losing them silently
            # would be worse.
            logger.warning("%s update failed (%s); retrying with the next batch", self._what, exc)
            return False
        self._pending = {}
        return True
