"""The detail page's reads (dashboard.detail_store) against a real database, and
its pure helpers (dashboard.detail): bodies clipped, never loaded whole, GridFS
previews, downloads streamed, the record's JSON exact."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from dashboard import detail, detail_store
from dashboard.detail_store import body_bytes, body_text, document_json, find_document
from storage.bodies import offload_bodies
from storage.mongo import REQUESTS, connect

WHEN = datetime(2026, 12, 6, 15, 0, 1, 250000, tzinfo=UTC)


@pytest.fixture
async def db(mongo_uri: str, database_name: str) -> AsyncIterator[AsyncDatabase[Any]]:
    client: AsyncMongoClient[Any] = connect(mongo_uri, timeout=120)
    yield client[database_name]
    await client.drop_database(database_name)
    await client.close()


def document(request_id: str, request_body: str, response_body: str | None) -> dict[str, Any]:
    return {
        "_id": request_id,
        "requestId": request_id,
        "timestamp": WHEN,
        "request": {"body": request_body, "bodyEncoding": "utf-8", "headers": [["a", "b"]]},
        "response": {
            "body": response_body,
            "bodyEncoding": "utf-8" if response_body is not None else None,
            "completedAt": WHEN,
        },
        "conversation": {"id": "s", "turns": [{"role": "user"}], "words": ["w"]},
    }


async def collect(pieces: AsyncIterator[Any]) -> Any:
    out = [piece async for piece in pieces]
    return b"".join(out) if out and isinstance(out[0], bytes) else "".join(out)


async def test_a_short_id_finds_one_document_without_its_conversation_copies(
    db: AsyncDatabase[Any],
) -> None:
    await db[REQUESTS].insert_many(
        [document("ab" * 16, "{}", None), document("ac" + "0" * 30, "{}", None)]
    )
    found = await find_document(db, "abab")
    assert found is not None and found["requestId"] == "ab" * 16
    assert found["conversation"] == {"id": "s"}
    assert await find_document(db, "a") is None  # ambiguous prefix
    assert await find_document(db, "ff" * 16) is None


async def test_bodies_are_clipped_and_streamed_whole(db: AsyncDatabase[Any]) -> None:
    big = json.dumps({"messages": ["é" * 300_000]})
    doc = document("cd" * 16, big, '{"ok": true}')
    await db[REQUESTS].insert_one(doc)
    stored = await find_document(db, "cd" * 16)
    assert stored is not None
    clipped = await body_text(db, stored, "request", 1000)
    assert (clipped.complete, len(clipped.text or ""), clipped.size) == (False, 1000, len(big))
    whole = await body_text(db, stored, "response", 1000)
    assert whole.complete and whole.text == '{"ok": true}'
    assert await collect(body_bytes(db, stored, "request")) == big.encode()


async def test_gridfs_bodies_are_previewed_and_downloaded(db: AsyncDatabase[Any]) -> None:
    big = json.dumps({"messages": ["x€" * 2_500_000]})  # past the 4 MiB offload bound
    doc = await offload_bodies(db, document("ef" * 16, big, '{"reply": 1}'))
    assert doc["request"]["bodyRef"]
    await db[REQUESTS].insert_one(doc)
    stored = await find_document(db, "ef" * 16)
    assert stored is not None
    preview = await body_text(db, stored, "request", 64 * 1024)
    assert preview.offloaded and not preview.complete
    assert preview.size == len(big.encode())
    assert big.startswith(preview.text or "-") and len(preview.text or "") > 30_000
    assert await collect(body_bytes(db, stored, "request")) == big.encode()
    record = json.loads(await collect(document_json(db, stored)))
    assert record["request"]["body"] == big
    assert record["response"]["body"] == '{"reply": 1}'


async def test_the_record_download_is_the_stored_document(db: AsyncDatabase[Any]) -> None:
    tricky = json.dumps({"text": 'quote " backslash \\ newline \n \u2028 \x00 end'})
    await db[REQUESTS].insert_one(document("12" * 16, tricky, None))
    stored = await find_document(db, "12" * 16)
    assert stored is not None
    record = json.loads(await collect(document_json(db, stored)))
    assert record["request"]["body"] == tricky
    assert record["response"]["body"] is None
    assert record["timestamp"] == "2026-12-06T15:00:01.250000Z"
    assert "_id" not in record


async def test_binary_bodies_download_as_sent(db: AsyncDatabase[Any]) -> None:
    raw = bytes(range(256)) * 4
    doc = document("34" * 16, "{}", None)
    doc["response"].update(body=base64.b64encode(raw).decode(), bodyEncoding="base64;gzip")
    await db[REQUESTS].insert_one(doc)
    stored = await find_document(db, "34" * 16)
    assert stored is not None
    assert await collect(body_bytes(db, stored, "response")) == raw
    name, kind = detail_store.download_name(stored, "response")
    assert (name, kind) == ("34" * 16 + "-response.bin.gzip", "application/octet-stream")
    assert detail_store.download_name(stored, "request")[0].endswith("-request.json")


def test_usage_cost_and_rate_limit_rows() -> None:
    doc = {
        "usage": {
            "input_tokens": 10,
            "output_tokens": 20,
            "cache_creation": {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 4},
            "cache_read_input_tokens": 5,
        },
        "cost": {"usd": 1.0, "breakdown": {"input": 0.1, "output": 0.5, "cacheRead": 0.01}},
    }
    rows = {r.label: (r.tokens, r.cost) for r in detail.usage_rows(doc)}
    assert rows == {
        "input": (10, 0.1),
        "output": (20, 0.5),
        "cache write 5m": (3, None),
        "cache write 1h": (4, None),
        "cache read": (5, 0.01),
    }
    rate = {
        "requestsRemaining": 3999,
        "requestsLimit": 4000,
        "requestsReset": "2026-11-25T12:00:01Z",
        "unifiedStatus": "allowed",
        "unifiedUtilization5h": 0.42,
        "unifiedReset5h": "2026-11-18T11:06:40Z",
        "unifiedStatus7d": "allowed",
        "retryAfter": 30,
        "raw": {"x": "y"},
    }
    (limit,) = detail.limit_rows(rate)
    assert (limit.label, limit.remaining, limit.limit) == ("requests", 3999, 4000)
    assert detail.unified_rows(rate) == [
        ("unified status", "allowed", False),
        ("5h utilization", "42 %", False),
        ("5h reset", "2026-11-18T11:06:40Z", True),
        ("7d status", "allowed", False),
        ("retry after", "30 s", False),
    ]


def test_problems_name_what_went_wrong() -> None:
    doc = {
        "errorReason": "upstream status 529",
        "response": {
            "streamError": "overloaded_error: Overloaded",
            "bodyClipped": True,
            "bodyBytes": 99,
        },
        "bodiesDropped": "queue_full",
    }
    found = dict(detail.problems(doc))
    assert found["error"] == "upstream status 529"
    assert found["stream error"].startswith("overloaded_error")
    assert "99 bytes" in found["response body"]
    assert found["bodies dropped"] == "queue_full"
    assert detail._missing_note(doc, "request").startswith("The body was not recorded")
    assert detail.problems({}) == []
