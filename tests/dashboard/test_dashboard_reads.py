"""What the Requests page reads (no browser): the request list's filter menus
from their own cuboid's daily rollups. (The Overview's reads are pinned by
tests/dashboard/test_overview_data.py.)"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from dashboard.requests_page import filter_options
from stats.rollups import ROLLUPS, fold
from storage.mongo import connect, ensure_rollup_indexes

NOW = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)


@pytest.fixture
async def rollups_db(mongo_uri: str) -> AsyncIterator[AsyncDatabase[Any]]:
    client = connect(mongo_uri)
    name = f"test_reads_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


async def test_the_filter_menus_list_the_models_and_organizations_logged(
    rollups_db: AsyncDatabase[Any],
) -> None:
    rng = random.Random(5)
    models = [f"claude-model-{i}" for i in range(4)]
    orgs = ["org-a", "org-b", None]
    docs = [
        {
            "requestId": f"{i:032x}",
            "timestamp": NOW - timedelta(days=rng.randrange(40), minutes=i),
            "model": models[i % 4],
            "organizationId": orgs[i % 3],
            "statusCode": 200,
            "outcome": "completed",
            "tokens": 1,
        }
        for i in range(60)
    ]
    await ensure_rollup_indexes(rollups_db[ROLLUPS])
    await rollups_db[ROLLUPS].bulk_write([d.update() for d in fold(docs)])
    options = await filter_options(rollups_db)
    assert options.models == models
    assert options.organizations == ["org-a", "org-b"]
