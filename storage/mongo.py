"""The MongoDB client (pymongo's native async API) and the request-log indexes."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

logger = logging.getLogger("proxy.storage")

REQUESTS = "requests"
TTL_INDEX = "timestamp_ttl"


def connect(uri: str) -> AsyncMongoClient[Any]:
    # Short server selection: a database that is down is noticed in 2 s and the
    # writer switches to the journal instead of holding records in memory.
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        appname="claude-proxy",
    )


async def ensure_indexes(requests: AsyncCollection[Any], retention_days: int | None) -> None:
    await requests.create_indexes(
        [
            IndexModel([("timestamp", DESCENDING)], name="timestamp_desc"),
            IndexModel([("requestId", ASCENDING)], name="requestId_unique", unique=True),
            IndexModel([("model", ASCENDING), ("timestamp", DESCENDING)], name="model_time"),
            IndexModel([("organizationId", ASCENDING), ("timestamp", DESCENDING)], name="org_time"),
            IndexModel([("sessionId", ASCENDING), ("timestamp", DESCENDING)], name="session_time"),
            # Conversations (storage.conversation_queries): threads, projects, search words.
            IndexModel(
                [("conversation.id", ASCENDING), ("timestamp", DESCENDING)],
                name="conversation_time",
            ),
            IndexModel(
                [("conversation.projectPath", ASCENDING), ("timestamp", DESCENDING)],
                name="conversation_project_time",
            ),
            IndexModel(
                [("conversation.words", ASCENDING), ("timestamp", DESCENDING)],
                name="conversation_words_time",
            ),
        ]
    )
    await _ensure_ttl(requests, "timestamp", TTL_INDEX, retention_days)


async def _ensure_ttl(
    collection: AsyncCollection[Any], field: str, name: str, retention_days: int | None
) -> None:
    existing = await (await collection.list_indexes()).to_list(None)
    ttl = next((ix for ix in existing if ix["name"] == name), None)
    wanted = retention_days * 86400 if retention_days else None
    if ttl is not None and ttl.get("expireAfterSeconds") != wanted:
        await collection.drop_index(name)  # retention changed or turned off
        ttl = None
    if wanted and ttl is None:
        try:
            await collection.create_index(
                [(field, ASCENDING)], name=name, expireAfterSeconds=wanted
            )
        except OperationFailure as exc:
            logger.error("could not create the retention (TTL) index on %s: %s", field, exc)


async def ensure_rollup_indexes(rollups: AsyncCollection[Any]) -> None:
    """Every stats query is a range on `t` within one tier and cuboid, with equality
    on the model and/or organization it filters by. One index per filter shape: the
    development database only picks an index that covers every filtered field (an
    extra `org` equality turned a 30-day query into a collection scan)."""
    shapes = {
        "tier_cuboid_t": [],
        "tier_cuboid_org_t": ["org"],
        "tier_cuboid_model_t": ["model"],
        "tier_cuboid_model_org_t": ["model", "org"],
    }
    await rollups.create_indexes(
        [
            IndexModel(
                [("tier", ASCENDING), ("cuboid", ASCENDING)]
                + [(f, ASCENDING) for f in fields]
                + [("t", ASCENDING)],
                name=name,
            )
            for name, fields in shapes.items()
        ]
    )


async def ensure_conversation_indexes(
    conversations: AsyncCollection[Any], retention_days: int | None = None
) -> None:
    """The conversation summaries (storage.conversation_summaries): the list and a
    project's list, newest activity first. With a retention, a summary expires
    once its last activity is as old as the requests the log deletes."""
    await conversations.create_indexes(
        [
            IndexModel([("lastActivity", DESCENDING), ("_id", ASCENDING)], name="last_activity"),
            IndexModel(
                [("projectPath", ASCENDING), ("lastActivity", DESCENDING), ("_id", ASCENDING)],
                name="project_last_activity",
            ),
        ]
    )
    await _ensure_ttl(conversations, "lastActivity", "last_activity_ttl", retention_days)
