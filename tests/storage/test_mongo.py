"""The client's deadlines and the indexes: a stalled database is an outage that
ends, and indexes appear whenever the database does.

The stall and the late start need a database process of their own (a SecantusDB
server, also when MONGODB_URI names a real MongoDB); the rest runs against the
session's server, so it also checks a real MongoDB.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient, InsertOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ExecutionTimeout, PyMongoError
from pymongo.monitoring import CommandListener, CommandStartedEvent

from stats.rollups import ROLLUPS
from storage.mongo import (
    CONVERSATIONS,
    INDEX_BUILD_SECONDS,
    REQUESTS,
    IndexKeeper,
    connect,
    ensure_all_indexes,
)
from tests.conftest import free_port

SECANTUSD = Path(sys.executable).parent / "secantusd-py"

# Far above the 1 s deadline the stall tests use, far below "hangs forever".
STALL_BOUND = 10.0

EXPECTED = {
    REQUESTS: {
        "_id_",
        "timestamp_desc",
        "requestId_unique",
        "model_time",
        "org_time",
        "session_time",
        "outcome_time",
        "org_outcome_time",
        "conversation_time",
        "conversation_project_time",
        "conversation_words_time",
        "completed_time",
        "timestamp_ttl",
    },
    ROLLUPS: {
        "_id_",
        "tier_cuboid_t",
        "tier_cuboid_org_t",
        "tier_cuboid_model_t",
        "tier_cuboid_model_org_t",
    },
    CONVERSATIONS: {"_id_", "last_activity", "project_last_activity", "last_activity_ttl"},
}
TTL_FIELDS = {
    (REQUESTS, "timestamp_ttl"): "timestamp",
    (CONVERSATIONS, "last_activity_ttl"): "lastActivity",
}


class DatabaseProcess:
    """A SecantusDB server in its own process group, so SIGSTOP freezes all of it."""

    def __init__(self, port: int, storage: Path) -> None:
        # A missing binary fails the test: the stall and late-start checks must run.
        assert SECANTUSD.exists(), f"{SECANTUSD} is missing: these tests need it"
        log = (storage.parent / f"secantus-{port}.log").open("wb")
        self.port = port
        self.proc = subprocess.Popen(
            [
                str(SECANTUSD),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--storage-path",
                str(storage),
                "--log-level",
                "WARNING",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                assert self.proc.poll() is None, "SecantusDB exited at start"
                time.sleep(0.1)
        self.stop()
        raise AssertionError("SecantusDB did not start")

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def freeze(self) -> None:
        os.killpg(self.proc.pid, signal.SIGSTOP)
        # The stop reaches each thread on its own; one still running would
        # answer the next request.
        tasks = Path(f"/proc/{self.proc.pid}/task")
        deadline = time.monotonic() + 5
        while not all(_stopped(task) for task in tasks.iterdir()):
            assert time.monotonic() < deadline, "the database did not stop"
            time.sleep(0.01)

    def thaw(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.thaw()  # a stopped process would not act on SIGTERM
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _stopped(task: Path) -> bool:
    try:
        # The state follows the parenthesised command name, which may hold spaces.
        return (task / "stat").read_text().rsplit(")", 1)[1].split()[0] in "tT"
    except FileNotFoundError:  # the thread ended meanwhile
        return True


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[DatabaseProcess]]:
    """Private servers a test starts; always thawed and stopped afterwards."""
    started: list[DatabaseProcess] = []
    yield started
    for server in started:
        server.stop()


def start_server(servers: list[DatabaseProcess], tmp_path: Path, port: int) -> DatabaseProcess:
    server = DatabaseProcess(port, tmp_path / f"db-{port}")
    servers.append(server)
    return server


async def fails_within(operation: Awaitable[Any], bound: float = STALL_BOUND) -> None:
    """`operation` raises a timeout PyMongoError within `bound` seconds; an outer
    guard turns a hang into a failure instead of a stuck test run."""
    started = time.monotonic()
    with pytest.raises(PyMongoError) as caught:
        async with asyncio.timeout(bound * 3):
            await operation
    elapsed = time.monotonic() - started
    assert caught.value.timeout, f"not a timeout: {caught.value!r}"
    assert elapsed < bound, f"took {elapsed:.1f}s"


async def index_names(collection: AsyncCollection[Any]) -> dict[str, dict[str, Any]]:
    return {ix["name"]: ix for ix in await (await collection.list_indexes()).to_list(None)}


async def assert_all_indexes(db: AsyncDatabase[Any], retention_days: int | None) -> None:
    for name, expected in EXPECTED.items():
        present = await index_names(db[name])
        if retention_days is None:
            expected = {ix for ix in expected if not ix.endswith("_ttl")}
        assert set(present) == expected, name
    if retention_days is not None:
        for (collection, index), field in TTL_FIELDS.items():
            ttl = (await index_names(db[collection]))[index]
            assert ttl["expireAfterSeconds"] == retention_days * 86400
            assert list(ttl["key"].items()) == [(field, 1)]


async def test_stalled_database_times_out_and_the_client_recovers(
    servers: list[DatabaseProcess], tmp_path: Path
) -> None:
    server = start_server(servers, tmp_path, free_port())
    client = connect(server.uri, timeout=1.0)
    try:
        db = client["stall"]
        await db.docs.insert_one({"_id": "before"})  # pooled connection, server known
        bucket = AsyncGridFSBucket(db, bucket_name="bodies")
        await bucket.upload_from_stream_with_id("kept", "kept", b"x" * 1024)
        server.freeze()
        try:
            await fails_within(db.docs.insert_one({"_id": "stalled-1"}))
            await fails_within(
                db.docs.bulk_write([InsertOne({"_id": "stalled-2"}), InsertOne({"_id": "s3"})])
            )
            await fails_within(db.docs.find({}).to_list(None))
            await fails_within(bucket.upload_from_stream_with_id("new", "new", b"y" * 1024))
            await fails_within(bucket.open_download_stream("kept"))
        finally:
            server.thaw()
        # The same client serves again once the database answers.
        async with asyncio.timeout(30):
            while True:
                try:
                    await db.docs.insert_one({"_id": "after"})
                    break
                except PyMongoError:
                    await asyncio.sleep(0.2)
        ids = {doc["_id"] for doc in await db.docs.find({}, {"_id": 1}).to_list(None)}
        assert {"before", "after"} <= ids
        stream = await bucket.open_download_stream("kept")
        assert await stream.read() == b"x" * 1024
    finally:
        await client.close()


async def test_database_down_is_an_error_within_the_operation_timeout() -> None:
    # Nothing listens: the deadline bounds server selection too (pymongo waits the
    # remaining timeoutMS for a server rather than serverSelectionTimeoutMS).
    client = connect(f"mongodb://127.0.0.1:{free_port()}", timeout=3.0)
    try:
        await fails_within(client["x"].docs.insert_one({}), bound=8.0)
    finally:
        await client.close()


async def test_index_keeper_waits_for_a_late_database(
    servers: list[DatabaseProcess], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    client = connect(f"mongodb://127.0.0.1:{port}/?directConnection=true", timeout=2.0)
    db = client["late"]
    keeper = IndexKeeper(db, 7)
    try:
        with caplog.at_level(logging.DEBUG, logger="proxy.storage"):
            assert await keeper.ensure() is False
            assert await keeper.ensure() is False
        warnings = [
            r for r in caplog.records if r.name == "proxy.storage" and r.levelno == logging.WARNING
        ]
        assert len(warnings) == 1  # one per outage, not one per batch
        assert not keeper.done

        start_server(servers, tmp_path, port)
        assert await keeper.ensure() is True
        await assert_all_indexes(db, 7)

        # Once done, ensure() does not look again: the database replaced by an
        # empty one goes unnoticed until the outage that came with it resets it.
        await client.drop_database("late")
        assert await keeper.ensure() is True
        assert await db.list_collection_names() == []
        keeper.reset()
        assert await keeper.ensure() is True
        await assert_all_indexes(db, 7)
    finally:
        await client.drop_database("late")
        await client.close()


async def test_ensure_all_indexes_creates_and_follows_the_retention(
    db: AsyncDatabase[Any],
) -> None:
    await ensure_all_indexes(db, 30)
    await assert_all_indexes(db, 30)
    await ensure_all_indexes(db, 30)  # again: nothing to do, nothing breaks
    await assert_all_indexes(db, 30)
    await ensure_all_indexes(db, 7)
    await assert_all_indexes(db, 7)
    await ensure_all_indexes(db, None)
    await assert_all_indexes(db, None)


class Recorder(CommandListener):
    """The commands a client sent, with their bodies."""

    def __init__(self) -> None:
        self.events: list[CommandStartedEvent] = []

    def started(self, event: CommandStartedEvent) -> None:
        self.events.append(event)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass

    def names(self) -> list[str]:
        return [e.command_name for e in self.events]


@pytest.fixture
async def watched(
    mongo_uri: str, database_name: str
) -> AsyncIterator[tuple[AsyncDatabase[Any], Recorder]]:
    """A database behind a client with connect()'s 1 s operation deadline whose
    commands are recorded."""
    recorder = Recorder()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_uri, timeoutMS=1000, event_listeners=[recorder]
    )
    yield client[database_name], recorder
    await client.drop_database(database_name)
    await client.close()


async def test_ensure_all_indexes_only_lists_when_all_exist(
    watched: tuple[AsyncDatabase[Any], Recorder],
) -> None:
    db, recorder = watched
    await ensure_all_indexes(db, 30)
    recorder.events.clear()
    await ensure_all_indexes(db, 30)
    assert recorder.names() == ["listIndexes"] * 3


async def test_index_builds_get_a_longer_deadline_than_operations(
    watched: tuple[AsyncDatabase[Any], Recorder],
) -> None:
    # A build on a large request log outlasts one operation's deadline; cut off
    # there it would restart, and be cut off, on every retry.
    db, recorder = watched
    await ensure_all_indexes(db, 30)
    builds = [e.command for e in recorder.events if e.command_name == "createIndexes"]
    lists = [e.command for e in recorder.events if e.command_name == "listIndexes"]
    assert len(builds) == 3  # one per collection, the TTL indexes with the rest
    assert all(1000 < b["maxTimeMS"] <= INDEX_BUILD_SECONDS * 1000 for b in builds)
    assert lists and all(c["maxTimeMS"] <= 1000 for c in lists)


async def test_a_refused_index_is_logged_and_the_others_are_built(
    db: AsyncDatabase[Any], caplog: pytest.LogCaptureFixture
) -> None:
    # Retrying cannot fix a refusal: the keeper must not hold the log back for it.
    await db[REQUESTS].insert_many([{"requestId": "twice"}, {"requestId": "twice"}])
    keeper = IndexKeeper(db, 30)
    with caplog.at_level(logging.ERROR, logger="proxy.storage"):
        assert await keeper.ensure() is True
    assert "requestId_unique" in caplog.text
    assert set(await index_names(db[REQUESTS])) == EXPECTED[REQUESTS] - {"requestId_unique"}
    assert set(await index_names(db[ROLLUPS])) == EXPECTED[ROLLUPS]
    assert set(await index_names(db[CONVERSATIONS])) == EXPECTED[CONVERSATIONS]


async def test_an_index_build_timing_out_is_an_outage(
    db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def timed_out(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> list[str]:
        raise ExecutionTimeout("operation exceeded time limit", 50)

    monkeypatch.setattr(AsyncCollection, "create_indexes", timed_out)
    with pytest.raises(ExecutionTimeout):
        await ensure_all_indexes(db, 30)
    keeper = IndexKeeper(db, 30)
    assert await keeper.ensure() is False
    monkeypatch.undo()
    assert await keeper.ensure() is True
    await assert_all_indexes(db, 30)
