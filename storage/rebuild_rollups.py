"""Rebuild the stats rollups and the conversation summaries from the request
documents (upgrades and repair).

    .venv/bin/python -m storage.rebuild_rollups

Configured like the proxy (MONGODB_URI, MONGODB_DATABASE; without MONGODB_URI it
starts the embedded database on DATA_DIR). Run it with the proxies stopped or
scaled to zero: requests logged while it runs could be counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from runtime.settings import Settings, SettingsError
from storage import conversation_summaries as summaries
from storage.conversation_queries import HAS_CONVERSATION
from storage.embedded import start_embedded
from storage.mongo import REQUESTS, connect, ensure_conversation_indexes, ensure_rollup_indexes
from storage.rollups import ROLLUPS, fold

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
    "responseTime": 1,
    "timeToFirstByte": 1,
    "response.rateLimit": 1,
}


async def rebuild(db: AsyncDatabase[Any], batch: int = 5000) -> tuple[int, int]:
    """Replace every rollup with one computed from the request documents;
    returns (request documents read, rollup documents written)."""
    rollups = db[ROLLUPS]
    await rollups.delete_many({})
    await ensure_rollup_indexes(rollups)
    read = 0
    chunk: list[dict[str, Any]] = []
    cursor = db[REQUESTS].find({}, FIELDS).sort("timestamp", 1).batch_size(batch)
    async for document in cursor:
        chunk.append(document)
        if len(chunk) >= batch:
            read += await _apply(rollups, chunk)
            chunk = []
    read += await _apply(rollups, chunk)
    return read, await rollups.count_documents({})


async def _apply(rollups: Any, documents: list[dict[str, Any]]) -> int:
    if documents:
        await rollups.bulk_write([d.update() for d in fold(documents)], ordered=False)
    return len(documents)


async def rebuild_conversations(
    db: AsyncDatabase[Any], retention_days: int | None = None, batch: int = 5000
) -> tuple[int, int]:
    """Replace every conversation summary with one computed from the request
    documents; returns (request documents read, summaries written)."""
    conversations = db[summaries.CONVERSATIONS]
    await conversations.delete_many({})
    await ensure_conversation_indexes(conversations, retention_days)
    read = 0
    pending: dict[str, summaries.SummaryDelta] = {}
    cursor = db[REQUESTS].find(HAS_CONVERSATION, summaries.FOLD_FIELDS).batch_size(batch)
    async for document in cursor:
        summaries.merge_into(pending, summaries.fold([document]).values())
        read += 1
        if len(pending) >= batch:
            await conversations.bulk_write([d.update() for d in pending.values()], ordered=False)
            pending = {}
    if pending:
        await conversations.bulk_write([d.update() for d in pending.values()], ordered=False)
    return read, await conversations.count_documents({})


async def _main(settings: Settings) -> None:
    embedded = None
    uri = settings.mongodb_uri
    if uri is None:
        embedded = start_embedded(settings.data_dir)
        uri = embedded.uri
    client = connect(uri)
    try:
        started = time.monotonic()
        db = client[settings.mongodb_database]
        read, written = await rebuild(db)
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
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
