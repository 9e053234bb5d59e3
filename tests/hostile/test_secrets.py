"""Credentials never appear in clear anywhere the proxy writes: every stored
document (all collections, GridFS included), the journal, the process log and
/metrics. Fingerprints (`sha256:`) are what may appear instead."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import aiohttp
from bson import json_util
from pymongo import AsyncMongoClient

from tests.conftest import ProxyProcess, free_port
from tests.fake_upstream import FakeUpstream
from tests.hostile.conftest import MESSAGE, hostile_proxy, wait_record

SCENARIOS = [
    ("json", {}, json.dumps(MESSAGE).encode()),
    ("stream", {}, json.dumps({**MESSAGE, "stream": True}).encode()),
    ("upstream-error", {"x-fake": "status:429"}, json.dumps(MESSAGE).encode()),
    ("proxy-error", {}, b'{"model": 5}'),
    ("count", {}, json.dumps(MESSAGE).encode()),
]


def secret_headers() -> tuple[dict[str, str], list[str]]:
    """Distinct, unmistakable values for every credential header."""
    values = [f"SECRET-{name}-{secrets.token_hex(12)}" for name in ("key", "bearer", "proxy", "c")]
    headers = {
        "x-api-key": values[0],
        "authorization": f"Bearer {values[1]}",
        "proxy-authorization": f"Basic {values[2]}",
        "cookie": f"session={values[3]}; theme=dark",
    }
    return headers, values


async def send_all(proxy: ProxyProcess) -> tuple[list[str], list[str]]:
    """Every scenario with its own secrets; returns (all secret values, request ids)."""
    clear: list[str] = []
    ids: list[str] = []
    async with aiohttp.ClientSession() as http:
        for name, extra, body in SCENARIOS:
            headers, values = secret_headers()
            clear += values
            path = "/v1/messages/count_tokens" if name == "count" else "/v1/messages"
            async with http.post(
                f"{proxy.url}{path}",
                data=body,
                headers={**headers, **extra, "content-type": "application/json"},
            ) as resp:
                await resp.read()
                ids.append(resp.headers["x-proxy-request-id"])
    return clear, ids


def assert_absent(text: str, clear: list[str], where: str) -> None:
    leaked = [value for value in clear if value in text]
    assert not leaked, f"{where} holds credentials in clear: {leaked}"


async def dump_database(uri: str, name: str) -> str:
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri)
    try:
        db = client[name]
        parts = []
        for collection in await db.list_collection_names():
            async for doc in db[collection].find({}):
                parts.append(json_util.dumps(doc))
                for value in doc.values():  # GridFS chunks hold raw bytes
                    if isinstance(value, bytes):
                        parts.append(value.decode("utf-8", "replace"))
        return "\n".join(parts)
    finally:
        await client.close()


async def test_no_secret_in_database_log_or_metrics(
    upstream: FakeUpstream, mongo_uri: str, tmp_path: Path
) -> None:
    proxy = hostile_proxy(tmp_path, upstream, mongo_uri)
    try:
        clear, ids = await send_all(proxy)
        records = [await wait_record(proxy, request_id) for request_id in ids]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{proxy.url}/metrics") as resp:
                metrics = await resp.text()
            async with http.get(f"{proxy.url}/api/requests?limit=100") as resp:
                listing = await resp.text()
    finally:
        proxy.stop()
    # The records exist, keep the headers, and identify the key by fingerprint only.
    assert {r["statusCode"] for r in records} >= {200, 429, 400}
    headers = dict(records[0]["request"]["headers"])
    assert headers["x-api-key"].startswith("sha256:")
    assert headers["cookie"].startswith("sha256:")
    stored = await dump_database(mongo_uri, f"proxy_test_{proxy.port}")
    assert "sha256:" in stored
    assert_absent(stored, clear, "the database")
    assert_absent(json.dumps(records) + listing, clear, "the API")
    assert_absent(metrics, clear, "/metrics")
    assert_absent(proxy.log(), clear, "the process log")


async def test_no_secret_in_the_journal(
    upstream: FakeUpstream, mongo_uri: str, tmp_path: Path
) -> None:
    """MongoDB unreachable: records wait in the hand-off journal, whose metadata
    carries fingerprints only (credentials are replaced before the disk)."""
    dead = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    proxy = hostile_proxy(tmp_path, upstream, mongo_uri, MONGODB_URI=dead, WRITER_FLUSH_TIMEOUT="1")
    try:
        clear, ids = await send_all(proxy)
    finally:
        proxy.stop()
    segments = sorted((tmp_path / "data" / "journal").glob("*/*.seg"))
    assert segments, "nothing journaled"
    journal = b"".join(p.read_bytes() for p in segments)
    text = journal.decode("utf-8", "replace")
    assert all(request_id in text for request_id in ids), "records missing from the journal"
    assert "sha256:" in text
    assert_absent(text, clear, "the journal")
    assert_absent(proxy.log(), clear, "the process log")
