"""The composition root's stop order, on a real server (`python app.py`): the
recorder stores what the workers handed off before the embedded database stops."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from pymongo import AsyncMongoClient

from storage.embedded import start_embedded
from storage.mongo import REQUESTS
from tests.conftest import start_proxy
from tests.fake_upstream import FakeUpstream

SENT = 80


async def test_the_last_batch_is_stored_before_the_embedded_database_stops(
    tmp_path, upstream: FakeUpstream
) -> None:
    """The first request starts a recorder batch; with WRITER_LINGER=10 the next
    ones (100 KB bodies, a few MB together) wait for the following one, which the
    recorder starts when the workers exit and is still storing when the main
    process goes on to stop. The records must reach a database still running:
    with the database stopped first, they waited in the journal and the recorder
    kept the proxy from exiting until its flush deadline."""
    proxy = start_proxy(
        tmp_path,
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "MONGODB_URI": "",  # the embedded database, also where a real one is configured
            "WRITER_LINGER": "10",
            "WRITER_FLUSH_TIMEOUT": "20",
            "SANIC_WORKERS": "2",
        },
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def send(n: int) -> None:
                body = json.dumps(
                    {
                        "model": "claude-sonnet-4-5-20250929",
                        "max_tokens": 5,
                        "messages": [{"role": "user", "content": f"{n} " + "x" * 100_000}],
                    }
                )
                async with http.post(
                    f"{proxy.url}/v1/messages",
                    data=body,
                    headers={"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
                ) as resp:
                    assert resp.status == 200
                    await resp.read()

            await send(0)
            for start in range(1, SENT, 10):
                await asyncio.gather(*(send(n) for n in range(start, min(start + 10, SENT))))
    finally:
        code = proxy.stop(timeout=60)
    log = proxy.log()
    assert code == 0, log
    assert "records wait in the journal" not in log, log
    database = start_embedded(str(tmp_path / "data"))
    client: AsyncMongoClient = AsyncMongoClient(database.uri)
    try:
        stored = await client[f"proxy_test_{proxy.port}"][REQUESTS].count_documents({})
    finally:
        await client.close()
        database.stop()
    assert stored == SENT, log
