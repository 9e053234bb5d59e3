"""One batch of finished documents into MongoDB, with no poison records.

- A document whose BSON would pass MongoDB's 16 MiB limit is made to fit: its
  bodies go to GridFS, then its conversation arrays are dropped, then it is
  stored in its minimal form; it is measured in BSON bytes, not characters.
- A value BSON cannot hold (lone surrogate, huge integer) is sanitised.
- A record the server still refuses is quarantined (kept on disk, counted) and
  never holds back the records after it.
- The rollups and conversation summaries count the batch exactly once per
  batch tag, also when an earlier attempt of the same batch landed in part.

`store` raises PyMongoError when MongoDB is down, slow or failed: the recorder
then retries the same batch, with the same tag, later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bson
from bson.errors import InvalidDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError

from conversations.summary_writer import summary_writer
from recording.quarantine import Quarantine
from stats.derived_writer import BatchTag
from stats.rollup_writer import rollup_writer
from stats.rollups import ROLLUPS
from storage.bodies import body_size, offload_bodies
from storage.mongo import CONVERSATIONS, REQUESTS
from storage.storable import storable

logger = logging.getLogger("proxy.recorder")

DUPLICATE_KEY = 11000
# MongoDB's limit is 16 MiB per document; keep room for the server's own fields.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 - 64 * 1024
# Below this many body characters (4 UTF-8 bytes each at most), a document is
# far from the limit and is not measured.
_MEASURE_ABOVE_CHARS = 2 * 1024 * 1024


@dataclass(slots=True)
class BatchResult:
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reshaped: int = 0  # made to fit (GridFS, arrays dropped, minimal form)


class RecordStore:
    def __init__(
        self, db: AsyncDatabase[Any], quarantine: Quarantine, zones: Sequence[str] = ()
    ) -> None:
        """`zones`: `STATS_ZONES`, whose local days and hours are rolled up too."""
        self._db = db
        self._requests = db[REQUESTS]
        self._rollups = rollup_writer(db[ROLLUPS], zones)
        self._summaries = summary_writer(db[CONVERSATIONS])
        self.quarantine = quarantine

    async def store(self, documents: list[dict[str, Any]], tag: BatchTag) -> BatchResult:
        result = BatchResult()
        ready: list[dict[str, Any]] = []  # as counted (bodies inline)
        stored: list[dict[str, Any]] = []  # as inserted (bodies may be in GridFS)
        for document in documents:
            fitted = await self._fit(document, result)
            if fitted is None:
                continue
            ready.append(document)
            stored.append(fitted)
        refused = await self._insert(stored, result)
        counted = [d for i, d in enumerate(ready) if i not in refused]
        await self._rollups.apply(counted, tag)
        await self._summaries.apply(counted, tag)
        return result

    async def _fit(self, document: dict[str, Any], result: BatchResult) -> dict[str, Any] | None:
        """The document as it can be inserted, or None once quarantined."""
        try:
            return await self._fitted(document, result)
        except (InvalidDocument, UnicodeEncodeError, OverflowError) as exc:
            # A value BSON cannot hold (lone surrogate, huge integer, NUL in a key).
            logger.warning("record %s needed sanitising to be stored: %r", document.get("_id"), exc)
        clean = storable(document)
        document.clear()
        document.update(clean)
        try:
            return await self._fitted(document, result)
        except (InvalidDocument, UnicodeEncodeError, OverflowError) as exc:
            self.quarantine.put(document, f"cannot be encoded: {exc!r}")
            result.quarantined += 1
            return None

    async def _fitted(self, document: dict[str, Any], result: BatchResult) -> dict[str, Any] | None:
        out = await offload_bodies(self._db, document)
        if body_size(out) < _MEASURE_ABOVE_CHARS and not _has_big_turns(out):
            return out
        size = _bson_size(out)
        if size <= MAX_DOCUMENT_BYTES:
            return out
        result.reshaped += 1
        out = await offload_bodies(self._db, document, force=True)
        if _bson_size(out) <= MAX_DOCUMENT_BYTES:
            return out
        out = _without_conversation_arrays(out)
        if _bson_size(out) <= MAX_DOCUMENT_BYTES:
            return out
        out = _minimal(out)
        if _bson_size(out) <= MAX_DOCUMENT_BYTES:
            return out
        self.quarantine.put(document, f"document of {size} BSON bytes cannot be made to fit")
        result.quarantined += 1
        return None

    async def _insert(self, stored: list[dict[str, Any]], result: BatchResult) -> set[int]:
        """Insert; returns the indexes MongoDB refused (quarantined)."""
        if not stored:
            return set()
        try:
            await self._requests.insert_many(stored, ordered=False)
        except InvalidDocument:  # DocumentTooLarge included: one by one, to find it
            return await self._insert_each(stored, result)
        except BulkWriteError as exc:
            if exc.details.get("writeConcernErrors"):
                raise
            errors = exc.details.get("writeErrors", [])
            duplicates = {e["index"] for e in errors if e.get("code") == DUPLICATE_KEY}
            refused = {e["index"] for e in errors if e.get("code") != DUPLICATE_KEY}
            for e in errors:
                if e["index"] in refused:
                    self.quarantine.put(stored[e["index"]], f"{e.get('code')}: {e.get('errmsg')}")
            result.duplicates += len(duplicates)
            result.quarantined += len(refused)
            result.inserted += len(stored) - len(duplicates) - len(refused)
            return refused
        result.inserted += len(stored)
        return set()

    async def _insert_each(self, stored: list[dict[str, Any]], result: BatchResult) -> set[int]:
        refused: set[int] = set()
        for index, document in enumerate(stored):
            try:
                await self._requests.insert_one(document)
            except DuplicateKeyError:
                result.duplicates += 1
                continue
            except (InvalidDocument, WriteError) as exc:
                self.quarantine.put(document, repr(exc)[:1000])
                result.quarantined += 1
                refused.add(index)
                continue
            result.inserted += 1
        return refused


def _bson_size(document: dict[str, Any]) -> int:
    return len(bson.encode(document))


def _has_big_turns(document: dict[str, Any]) -> bool:
    # The turns hold message text too, within the conversation fields' budget;
    # measure only when that budget could be large.
    conversation = document.get("conversation")
    if not isinstance(conversation, dict):
        return False
    turns = conversation.get("turns")
    return isinstance(turns, list) and len(turns) > 200


def _without_conversation_arrays(document: dict[str, Any]) -> dict[str, Any]:
    out = dict(document)
    conversation = out.get("conversation")
    if isinstance(conversation, dict):
        conversation = dict(conversation)
        for name in ("turns", "words", "reply"):
            if name in conversation:
                conversation[name] = [] if name != "reply" else None
        conversation["clipped"] = True
        out["conversation"] = conversation
    out["recordClipped"] = "conversation arrays dropped: the document passed 16 MiB"
    return out


def _minimal(document: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "_id",
        "schemaVersion",
        "requestId",
        "timestamp",
        "method",
        "endpoint",
        "model",
        "originalModel",
        "statusCode",
        "responseTime",
        "timeToFirstByte",
        "usage",
        "tokens",
        "cost",
        "outcome",
        "errorReason",
        "sessionId",
        "organizationId",
    )
    out = {k: document[k] for k in keep if k in document}
    request = document.get("request") or {}
    response = document.get("response") or {}
    out["request"] = {k: request.get(k) for k in ("bodyRef", "bodyBytes") if k in request}
    out["response"] = {
        k: response.get(k) for k in ("statusCode", "bodyRef", "bodyBytes") if k in response
    }
    out["recordClipped"] = "stored in minimal form: the document passed 16 MiB"
    return out
