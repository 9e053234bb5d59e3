"""The MongoDB client (pymongo's native async API) and the indexes the proxy needs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from stats.rollups import ROLLUPS

logger = logging.getLogger("proxy.storage")

REQUESTS = "requests"
# The conversation summaries (conversations.summaries), kept by the recorder.
CONVERSATIONS = "conversations"
TTL_INDEX = "timestamp_ttl"
CONVERSATION_TTL_INDEX = "last_activity_ttl"

# The CSOT spec bounds server selection by min(serverSelectionTimeoutMS, the
# remaining timeoutMS); pymongo 4.20 uses the remaining timeoutMS alone, so a
# database that is down is noticed after the operation deadline, not this.
# It still bounds the monitors' connection attempts and any operation run
# without a deadline.
SERVER_SELECTION_SECONDS = 2.0

# Building an index scans the whole collection: on a large request log that
# takes far longer than one operation's deadline, and a build cut off at the
# deadline would be restarted (and cut off) on every retry.
INDEX_BUILD_SECONDS = 600.0


def connect(uri: str, timeout: float = 10.0) -> AsyncMongoClient[Any]:
    """A client whose every operation raises a `PyMongoError` within about
    `timeout` seconds: a database that is down or stalled (SIGSTOPped, or
    accepting connections but never answering) counts as an outage.

    The deadline (CSOT, timeoutMS) covers server selection, connection checkout
    and every round trip of the operation: all batches of a bulk write or
    insert_many, a whole GridFS `upload_from_stream*`/`download_to_stream*` call
    (chunk by chunk through `open_*_stream`), each batch of a cursor. The
    driver also sends it as maxTimeMS, so the server stops working for nobody;
    MongoDB counts a find's maxTimeMS across all its getMores."""
    timeout_ms = max(1, round(timeout * 1000))
    selection_ms = min(round(SERVER_SELECTION_SECONDS * 1000), timeout_ms)
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        timeoutMS=timeout_ms,
        # Only for a read without an operation deadline, which then must not
        # hang on a stalled server either.
        socketTimeoutMS=timeout_ms,
        serverSelectionTimeoutMS=selection_ms,
        # The monitors connect with it: a stalled server is marked unknown soon.
        connectTimeoutMS=selection_ms,
        appname="claude-proxy",
    )


def _request_models() -> list[IndexModel]:
    return [
        IndexModel([("timestamp", DESCENDING)], name="timestamp_desc"),
        IndexModel([("requestId", ASCENDING)], name="requestId_unique", unique=True),
        IndexModel([("model", ASCENDING), ("timestamp", DESCENDING)], name="model_time"),
        IndexModel([("organizationId", ASCENDING), ("timestamp", DESCENDING)], name="org_time"),
        IndexModel([("sessionId", ASCENDING), ("timestamp", DESCENDING)], name="session_time"),
        # The request list's error filters read the failed requests alone
        # (storage.queries.status_leads): a few percent of the log.
        IndexModel([("outcome", ASCENDING), ("timestamp", DESCENDING)], name="outcome_time"),
        # An organization's failures (the Requests page's org + error filters): its
        # own failed rows, not every organization's.
        IndexModel(
            [("organizationId", ASCENDING), ("outcome", ASCENDING), ("timestamp", DESCENDING)],
            name="org_outcome_time",
        ),
        # The dashboard's live tail: what was stored since its last poll. A record
        # is stored once finished, so its start `timestamp` can be far behind.
        IndexModel([("response.completedAt", DESCENDING)], name="completed_time"),
        # Conversations (conversations.queries): threads, projects, search words.
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


def _rollup_models() -> list[IndexModel]:
    """Every stats query is a range on `t` within one tier and cuboid, with equality
    on the model and/or organization it filters by. One index per filter shape: the
    development database only picks an index that covers every filtered field (an
    extra `org` equality turned a 30-day query into a collection scan)."""
    shapes: dict[str, list[str]] = {
        "tier_cuboid_t": [],
        "tier_cuboid_org_t": ["org"],
        "tier_cuboid_model_t": ["model"],
        "tier_cuboid_model_org_t": ["model", "org"],
    }
    return [
        IndexModel(
            [("tier", ASCENDING), ("cuboid", ASCENDING)]
            + [(f, ASCENDING) for f in fields]
            + [("t", ASCENDING)],
            name=name,
        )
        for name, fields in shapes.items()
    ]


def _conversation_models() -> list[IndexModel]:
    return [
        IndexModel([("lastActivity", DESCENDING), ("_id", ASCENDING)], name="last_activity"),
        IndexModel(
            [("projectPath", ASCENDING), ("lastActivity", DESCENDING), ("_id", ASCENDING)],
            name="project_last_activity",
        ),
    ]


async def _ensure(
    collection: AsyncCollection[Any],
    models: list[IndexModel],
    ttl: tuple[str, str] | None = None,
    retention_days: int | None = None,
) -> None:
    """Creates what is missing of `models` and of the TTL index (field, name) as
    the retention wants it. Listing first keeps a repeat call to one listIndexes,
    and notices a stalled database within the operation deadline before any
    build gets the long one."""
    existing = {ix["name"]: ix for ix in await (await collection.list_indexes()).to_list(None)}
    missing = [model for model in models if model.document["name"] not in existing]
    if ttl is not None:
        field, name = ttl
        current = existing.get(name)
        wanted = retention_days * 86400 if retention_days else None
        if current is not None and current.get("expireAfterSeconds") != wanted:
            await collection.drop_index(name)  # retention changed or turned off
            current = None
        if wanted and current is None:
            missing.append(IndexModel([(field, ASCENDING)], name=name, expireAfterSeconds=wanted))
    if missing:
        await _create(collection, missing)


async def _create(collection: AsyncCollection[Any], models: list[IndexModel]) -> None:
    """An index MongoDB refuses (duplicate values under a unique index, a clash
    with an index of the user's) is logged, not raised: retrying cannot fix it,
    and the log must be written without it. A timeout or a lost connection is
    raised: the database is down and the indexes are checked again later."""
    with pymongo.timeout(INDEX_BUILD_SECONDS):
        try:
            await collection.create_indexes(models)
            return
        except OperationFailure as exc:
            if exc.timeout:  # the database is slow or gone, not refusing an index
                raise
            if len(models) == 1:
                _log_refused(collection, models[0], exc)
                return
        # The command fails as a whole: one by one, so the others still get built.
        for model in models:
            try:
                await collection.create_indexes([model])
            except OperationFailure as exc:
                if exc.timeout:
                    raise
                _log_refused(collection, model, exc)


def _log_refused(collection: AsyncCollection[Any], model: IndexModel, exc: Exception) -> None:
    name = model.document["name"]
    logger.error("MongoDB refused the index %s on %s: %s", name, collection.name, exc)


async def ensure_indexes(requests: AsyncCollection[Any], retention_days: int | None) -> None:
    await _ensure(requests, _request_models(), ("timestamp", TTL_INDEX), retention_days)


async def ensure_rollup_indexes(rollups: AsyncCollection[Any]) -> None:
    await _ensure(rollups, _rollup_models())


async def ensure_conversation_indexes(
    conversations: AsyncCollection[Any], retention_days: int | None = None
) -> None:
    """The conversation summaries (conversations.summaries): the list and a
    project's list, newest activity first. With a retention, a summary expires
    once its last activity is as old as the requests the log deletes."""
    await _ensure(
        conversations,
        _conversation_models(),
        ("lastActivity", CONVERSATION_TTL_INDEX),
        retention_days,
    )


async def ensure_all_indexes(db: AsyncDatabase[Any], retention_days: int | None) -> None:
    """Every index the proxy needs (the request log with its TTL, the rollups, the
    conversation summaries with theirs). Idempotent; when all exist it costs one
    listIndexes per collection. Raises `PyMongoError` when the database is down."""
    await ensure_indexes(db[REQUESTS], retention_days)
    await ensure_rollup_indexes(db[ROLLUPS])
    await ensure_conversation_indexes(db[CONVERSATIONS], retention_days)


class IndexKeeper:
    """Makes sure the indexes exist once the database is reachable, also when it
    was down at start-up: `ensure()` before each batch is free after the first
    success; `reset()` on an outage makes the next `ensure()` check again (the
    database may have come back empty, e.g. restored or replaced)."""

    def __init__(self, db: AsyncDatabase[Any], retention_days: int | None) -> None:
        self._db = db
        self._retention_days = retention_days
        self._done = False
        self._failing = False
        # Concurrent callers wait for the one check instead of repeating it.
        self._lock = asyncio.Lock()

    @property
    def done(self) -> bool:
        return self._done

    async def ensure(self) -> bool:
        """True when every index is known to exist; False (logged, never raised)
        when the database could not be reached or refused."""
        if self._done:
            return True
        async with self._lock:
            if self._done:
                return True
            try:
                await ensure_all_indexes(self._db, self._retention_days)
            except PyMongoError as exc:
                # One warning per outage, not one per batch while it lasts.
                level = logging.DEBUG if self._failing else logging.WARNING
                logger.log(level, "could not ensure the indexes now (%s); will retry", exc)
                self._failing = True
                return False
            if self._failing:
                logger.info("indexes ensured after the database came back")
            self._done, self._failing = True, False
            return True

    def reset(self) -> None:
        self._done = False
