"""Storage fixtures: a database per test, and a TCP relay that can take it "down".

The relay sits between the writer and the database (SecantusDB, or the real
MongoDB named by MONGODB_URI), so the same outage tests run against both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from storage.mongo import connect


class Relay:
    """A loopback TCP relay: `cut()` drops every connection and refuses new ones,
    `restore()` serves again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        tasks = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._pipes.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in self._writers:
            writer.close()
        for task in self._pipes:
            task.cancel()
        self._writers.clear()
        self._pipes.clear()

    async def restore(self) -> None:
        await self.start()


@pytest.fixture
async def db(mongo_uri: str, database_name: str) -> AsyncIterator[AsyncDatabase[Any]]:
    # A generous deadline: tests share two cores with servers and other processes.
    client: AsyncMongoClient[Any] = connect(mongo_uri, timeout=120)
    yield client[database_name]
    await client.drop_database(database_name)
    await client.close()


@pytest.fixture
async def relay(mongo_uri: str) -> AsyncIterator[Relay]:
    target = urlsplit(mongo_uri.split(",")[0])
    relay = Relay(target.hostname or "127.0.0.1", target.port or 27017)
    await relay.start()
    yield relay
    await relay.cut()
