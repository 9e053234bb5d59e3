"""Keeps a collection derived from the request documents (the stats rollups, the
conversation summaries) in step with them, exactly once per batch.

A recorder stores records in numbered batches: a stable recorder id and a
strictly increasing sequence number (`BatchTag`). It applies its batches in
order, one at a time, and retries a failed batch with the same documents and
the same tag until it succeeds, also after a restart. So the derived update of
a batch is made idempotent per tag: every target document (a rollup bucket, a
conversation summary) remembers the last sequence number each recorder applied
to it (`applied.<recorder>`), and an update is guarded by it:

    filter  {_id, "applied.<rid>": {$not: {$gte: seq}}}        upsert
    update  {...the delta's $inc/$min/$max/$addToSet..., $set: {"applied.<rid>": seq}}

- the document is missing, or has not seen this batch: the filter matches (or
  the upsert inserts it) and the delta lands together with the mark, in one
  single-document write, so a target gains the delta and the mark or neither;
- the document has seen this batch (or a later one of the same recorder): the
  filter does not match, the upsert's insert collides with the existing `_id`
  and the server answers duplicate key (E11000), which means "already applied".

One race gives E11000 too: two recorders upserting the same brand-new `_id` at
once (one insert wins). The failed updates are therefore retried once: the
document exists by then, so a second E11000 really means "already applied".
(MongoDB retries a colliding upsert itself only when its filter is made of
equalities; this one is not, on MongoDB and on SecantusDB alike.)

A batch interrupted half-way (some targets written, the process gone) is
completed by its retry: written targets refuse it, the others take it. An older
sequence number of the same recorder arriving late is refused wherever a newer
one has landed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

logger = logging.getLogger("proxy.storage")

# The map of marks kept in every derived document; never part of API output.
APPLIED = "applied"
DUPLICATE_KEY = 11000
# Documents folded between two yields to the event loop (~0.1 ms each; smaller
# slices cost more merging than they save in latency).
FOLD_CHUNK = 100

_RECORDER = re.compile(r"[0-9a-f]{12,32}")
_MAX_SEQ = 2**63 - 1  # a BSON int64


@dataclass(frozen=True, slots=True)
class BatchTag:
    """Which batch a derived update comes from: `recorder` is the recorder's
    stable id (lowercase hex, 12-32 characters: safe as a field name), `seq` its
    strictly increasing batch number."""

    recorder: str
    seq: int

    def __post_init__(self) -> None:
        if not isinstance(self.recorder, str) or not _RECORDER.fullmatch(self.recorder):
            raise ValueError(f"recorder id must be 12-32 lowercase hex digits: {self.recorder!r}")
        if isinstance(self.seq, bool) or not isinstance(self.seq, int):
            raise ValueError(f"seq must be an integer: {self.seq!r}")
        if not 0 <= self.seq <= _MAX_SEQ:
            raise ValueError(f"seq out of range: {self.seq}")

    @property
    def field(self) -> str:
        return f"{APPLIED}.{self.recorder}"


class Upsert(Protocol):
    """A delta for one derived document."""

    @property
    def id(self) -> str: ...

    def change(self) -> dict[str, Any]:
        """The update operators that add the delta (no `$set` of `applied`)."""
        ...


D = TypeVar("D", bound=Upsert)


def guarded_update(delta: Upsert, tag: BatchTag | None) -> UpdateOne:
    """The upsert adding `delta` once per `tag` (untagged: every time)."""
    change = delta.change()
    if tag is None:
        return UpdateOne({"_id": delta.id}, change, upsert=True)
    change["$set"] = {**change.get("$set", {}), tag.field: tag.seq}
    return UpdateOne({"_id": delta.id, tag.field: {"$not": {"$gte": tag.seq}}}, change, upsert=True)


class DerivedWriter(Generic[D]):
    def __init__(
        self,
        collection: AsyncCollection[Any],
        fold: Callable[[list[dict[str, Any]]], Iterable[D]],
        merge_into: Callable[[dict[str, D], Iterable[D]], None],
        what: str,
    ) -> None:
        self._collection = collection
        self._fold = fold
        self._merge_into = merge_into
        self._what = what

    async def apply(self, documents: list[dict[str, Any]], tag: BatchTag | None = None) -> int:
        """Add the deltas of all of a batch's `documents`, each target exactly
        once per `tag` however often the same (tag, documents) is applied.
        Returns how many target documents this call changed (0: all had it).
        Without a tag nothing guards the update: for tests and one-off loads.
        Raises PyMongoError when it could not finish; the caller then retries
        the same batch with the same tag."""
        deltas = await self._folded(documents)
        updates = [guarded_update(d, tag) for d in deltas]
        changed = 0
        for attempt in range(2):
            if not updates:
                break
            try:
                result = await self._collection.bulk_write(updates, ordered=False)
            except BulkWriteError as exc:
                if tag is None or not _only_id_collisions(exc.details):
                    raise
                changed += exc.details.get("nMatched", 0) + exc.details.get("nUpserted", 0)
                collided = sorted(e["index"] for e in exc.details["writeErrors"])
                updates = [updates[i] for i in collided]
                if attempt == 0:
                    continue
                # Second collision: the document exists and has this batch.
                logger.debug("%d %s documents had batch %s", len(updates), self._what, tag)
                break
            return changed + result.matched_count + result.upserted_count
        return changed

    async def _folded(self, documents: list[dict[str, Any]]) -> list[D]:
        merged: dict[str, D] = {}
        for start in range(0, len(documents), FOLD_CHUNK):
            if start:
                # Folding is CPU work on the event loop: yield between slices so
                # a big batch never stalls whatever else that loop serves.
                await asyncio.sleep(0)
            self._merge_into(merged, self._fold(documents[start : start + FOLD_CHUNK]))
        return list(merged.values())


def _only_id_collisions(details: dict[str, Any]) -> bool:
    """Whether every error is a duplicate `_id` (what a refused guarded upsert
    gives), with no write-concern error."""
    if details.get("writeConcernErrors"):
        return False
    return all(
        e.get("code") == DUPLICATE_KEY and e.get("keyPattern", {"_id": 1}) == {"_id": 1}
        for e in details.get("writeErrors", [])
    )
