"""Rebuild the stats rollups and the conversation summaries from the request
documents (upgrades and repair).

    .venv/bin/python -m recording.rebuild_rollups           # everything
    .venv/bin/python -m recording.rebuild_rollups --zones   # only STATS_ZONES' local days and hours

Configured like the proxy (MONGODB_URI, MONGODB_DATABASE; without MONGODB_URI it
starts the embedded database on DATA_DIR). Run it with the proxies and recorders
stopped or scaled to zero: requests logged while it runs could be counted twice.

The rebuilt documents keep the batch marks (`applied.<recorder>`, see
stats.derived_writer) consistent with what they count: every one gets, per
recorder, the newest batch any derived document had seen. A recorder's batches
up to that one are all stored in the request log, so they are counted by the
rebuild, and a retry of one of them after the rebuild is refused. (A batch whose
records were stored but whose derived update had not reached any document yet
is beyond what the derived documents can tell: its retry counts it again.)
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from conversations import summaries
from conversations.queries import HAS_CONVERSATION
from runtime.settings import Settings, SettingsError
from stats.derived_writer import APPLIED, Upsert
from stats.rollups import ROLLUPS, fold, fold_zones
from stats.timebuckets import DAY, aware, zone_tiers
from storage.embedded import start_embedded
from storage.mongo import (
    CONVERSATIONS,
    REQUESTS,
    connect,
    ensure_conversation_indexes,
    ensure_rollup_indexes,
)

logger = logging.getLogger("proxy.rollups")

# What the rollups read; never the bodies.
FIELDS: dict[str, int] = {
    "timestamp": 1,
    "model": 1,
    "organizationId": 1,
    "statusCode": 1,
    "outcome": 1,
    "usage": 1,
    "tokens": 1,
    "cost.usd": 1,
    "unpriced": 1,
    "costIncomplete": 1,
    "failovers": 1,
    "responseTime": 1,
    "timeToFirstByte": 1,
    "response.rateLimit": 1,
}


# Seconds each operation of a rebuild may take (it reads the whole log).
REBUILD_TIMEOUT = 3600.0


async def applied_marks(db: AsyncDatabase[Any]) -> dict[str, int]:
    """Per recorder, the newest batch any derived document (rollup or summary)
    has taken."""
    marks: dict[str, int] = {}
    for name in (ROLLUPS, CONVERSATIONS):
        cursor = db[name].find({APPLIED: {"$type": "object"}}, {"_id": 0, APPLIED: 1})
        async for document in cursor:
            for recorder, seq in document[APPLIED].items():
                if isinstance(seq, int) and not isinstance(seq, bool):
                    marks[recorder] = max(seq, marks.get(recorder, seq))
    return marks


def _marked(deltas: Iterable[Upsert], marks: dict[str, int]) -> list[UpdateOne]:
    updates = []
    for delta in deltas:
        change = delta.change()
        if marks:
            change["$set"] = {APPLIED: dict(marks)}
        updates.append(UpdateOne({"_id": delta.id}, change, upsert=True))
    return updates


async def rebuild(
    db: AsyncDatabase[Any], batch: int = 5000, zones: Sequence[str] = ()
) -> tuple[int, int]:
    """Replace every rollup with one computed from the request documents (with
    the local-day and local-hour tiers of `zones`); returns (request documents read, rollup
    documents written)."""
    rollups = db[ROLLUPS]
    marks = await applied_marks(db)
    await rollups.delete_many({})
    await ensure_rollup_indexes(rollups)
    read = 0
    chunk: list[dict[str, Any]] = []
    cursor = db[REQUESTS].find({}, FIELDS).sort("timestamp", 1).batch_size(batch)
    async for document in cursor:
        chunk.append(document)
        if len(chunk) >= batch:
            read += await _apply(rollups, fold(chunk, zones), marks, len(chunk))
            chunk = []
    read += await _apply(rollups, fold(chunk, zones), marks, len(chunk))
    return read, await rollups.count_documents({})


async def rebuild_zones(
    db: AsyncDatabase[Any],
    zones: Sequence[str],
    window: timedelta = timedelta(hours=6),
    marks: dict[str, int] | None = None,
) -> tuple[int, int]:
    """Replace the local-day and local-hour rollups of `zones` (a zone newly listed in
    STATS_ZONES) with ones computed from the request documents, the other tiers
    untouched; returns (request documents read, zone documents written). The log
    is read a time window at a time (each an index range on `timestamp`), from
    the first to the last UTC day the daily rollups counted a request in.
    `marks`: the batch marks to give them (default: `applied_marks`, a read of
    every derived document)."""
    rollups = db[ROLLUPS]
    names = [tier for z in zones for tier in zone_tiers(z)]
    marks = await applied_marks(db) if marks is None else marks
    for name in names:
        # Found through the (tier, cuboid, t) index, deleted by id: the
        # development database plans a delete on `tier` alone as a full scan.
        old = [d["_id"] for d in await rollups.find({"tier": name}, {"_id": 1}).to_list(None)]
        for at in range(0, len(old), 1000):
            await rollups.delete_many({"_id": {"$in": old[at : at + 1000]}})
    days = {"tier": DAY.name, "cuboid": ""}
    first = await rollups.find(days, {"t": 1}).sort("t", 1).limit(1).to_list(1)
    last = await rollups.find(days, {"t": 1}).sort("t", -1).limit(1).to_list(1)
    read = 0
    if first and last:
        start, end = aware(first[0]["t"]), aware(last[0]["t"]) + timedelta(days=1)
        while start < end:
            query = {"timestamp": {"$gte": start, "$lt": start + window}}
            documents = await db[REQUESTS].find(query, FIELDS).to_list(None)
            read += await _apply(rollups, fold_zones(documents, zones), marks, len(documents))
            start += window
    written = 0
    for name in names:
        written += await rollups.count_documents({"tier": name})
    return read, written


async def _apply(rollups: Any, deltas: list[Upsert], marks: dict[str, int], documents: int) -> int:
    if deltas:
        await rollups.bulk_write(_marked(deltas, marks), ordered=False)
    return documents


async def rebuild_conversations(
    db: AsyncDatabase[Any], retention_days: int | None = None, batch: int = 5000
) -> tuple[int, int]:
    """Replace every conversation summary with one computed from the request
    documents; returns (request documents read, summaries written)."""
    conversations = db[CONVERSATIONS]
    marks = await applied_marks(db)
    await conversations.delete_many({})
    await ensure_conversation_indexes(conversations, retention_days)
    read = 0
    pending: dict[str, summaries.SummaryDelta] = {}
    cursor = db[REQUESTS].find(HAS_CONVERSATION, summaries.FOLD_FIELDS).batch_size(batch)
    async for document in cursor:
        summaries.merge_into(pending, summaries.fold([document]).values())
        read += 1
        if len(pending) >= batch:
            await conversations.bulk_write(_marked(pending.values(), marks), ordered=False)
            pending = {}
    if pending:
        await conversations.bulk_write(_marked(pending.values(), marks), ordered=False)
    return read, await conversations.count_documents({})


async def _main(settings: Settings, zones_only: bool) -> None:
    embedded = None
    uri = settings.mongodb_uri
    if uri is None:
        embedded = start_embedded(settings.data_dir)
        uri = embedded.uri
    # A rebuild reads the whole log: its own deadline, far above a request's.
    client = connect(uri, max(settings.mongodb_timeout, REBUILD_TIMEOUT))
    try:
        started = time.monotonic()
        db = client[settings.mongodb_database]
        if zones_only:
            read, written = await rebuild_zones(db, settings.stats_zones)
            print(
                f"rebuilt {written} local-day and local-hour rollups of "
                f"{', '.join(settings.stats_zones)} "
                f"from {read} requests in {time.monotonic() - started:.1f} s"
            )
            return
        read, written = await rebuild(db, zones=settings.stats_zones)
        print(
            f"rebuilt {written} rollup documents from {read} requests "
            f"in {time.monotonic() - started:.1f} s"
        )
        started = time.monotonic()
        read, written = await rebuild_conversations(db, settings.log_retention_days)
        print(
            f"rebuilt {written} conversation summaries from {read} requests "
            f"in {time.monotonic() - started:.1f} s"
        )
    finally:
        await client.close()
        if embedded is not None:
            embedded.stop()


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"configuration error: {exc}")
    zones_only = sys.argv[1:] == ["--zones"]
    if sys.argv[1:] not in ([], ["--zones"]):
        sys.exit("usage: python -m recording.rebuild_rollups [--zones]")
    if zones_only and not settings.stats_zones:
        sys.exit("--zones rebuilds the local days and hours of STATS_ZONES, which is not set")
    asyncio.run(_main(settings, zones_only))


if __name__ == "__main__":
    main()
