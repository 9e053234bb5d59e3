"""The dashboard's and the API's queries start from an index, never a scan, and
never match the request log with a regex: every pipeline builder's output is
explained by the database (IXSCAN on the index it was written for), and the
query modules are scanned for `$regex`."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from conversations import queries as cq
from dashboard.requests_page import options_pipeline
from stats.rollups import ROLLUPS, fold
from storage import list_plan as lp
from storage import queries as q
from storage.mongo import REQUESTS, ensure_all_indexes
from tests.conftest import ROOT

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
# On MongoDB the planner may rank another index first; any index will do there.
EXACT = not os.environ.get("MONGODB_URI")

# Every module that builds or runs a read of the log for a page or the API.
QUERY_MODULES = [
    "storage/queries.py",
    "storage/requests_repo.py",
    "storage/request_offsets.py",
    "conversations/queries.py",
    "conversations/repo.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "dashboard").glob("*.py")),
]
# The one regex left: the conversation list's model filter, over each summary's few
# models in the conversations collection (not the request log).
REGEX_ALLOWED = {"conversations/queries.py": 1}


def test_no_regex_matches_the_request_log() -> None:
    found = {}
    for name in QUERY_MODULES:
        hits = len(re.findall(r"""["']\$regex["']""", (ROOT / name).read_text()))
        if hits:
            found[name] = hits
    assert found == REGEX_ALLOWED
    # ... and that one reads the summaries' `models`, a field of no request document.
    assert cq.list_filter("x.y") == {"models": {"$regex": r"x\.y", "$options": "i"}}


def _found(explained: Any, key: str) -> list[Any]:
    """Every value of `key` in an explain answer, nested ones included."""
    found: list[Any] = []
    if isinstance(explained, dict):
        if key in explained:
            found.append(explained[key])
        for value in explained.values():
            found += _found(value, key)
    elif isinstance(explained, list):
        for value in explained:
            found += _found(value, key)
    return found


async def index_of(db: AsyncDatabase[Any], collection: str, pipeline: list[dict[str, Any]]) -> str:
    """The index the pipeline's first stage reads, after checking that the server
    examined no document outside that index's range (none a scan would add)."""
    command = {"aggregate": collection, "pipeline": pipeline, "cursor": {}}
    explained = await db.command("explain", command, verbosity="executionStats")
    text = json.dumps(explained, default=str)
    assert "COLLSCAN" not in text, text[:800]
    names = _found(explained, "indexName")
    assert names, text[:800]
    in_range = await db[collection].count_documents(pipeline[0]["$match"])
    examined = _found(explained, "totalDocsExamined")
    assert examined and max(examined) <= in_range, (pipeline[0], examined, in_range)
    return str(names[0])


@pytest.fixture
async def indexed(db: AsyncDatabase[Any]) -> AsyncDatabase[Any]:
    """A log over 30 days (three models, two organizations, five sessions, words),
    its rollups, and every index: a scan would examine far more than any range."""
    await ensure_all_indexes(db, None)
    docs = [
        {
            "_id": f"{i:032x}",
            "requestId": f"{i:032x}",
            "timestamp": NOW - timedelta(minutes=173 * i),
            "model": ("m", "m2", "m3")[i % 3],
            "organizationId": f"org-{i % 2}",
            "sessionId": f"3fa85f6{i % 5}-57{i % 5}",
            "statusCode": (200, 429, 529)[i % 3],
            "outcome": ("completed", "upstream_error", "upstream_error")[i % 3],
            "isStreaming": True,
            "response": {"completedAt": NOW - timedelta(minutes=173 * i - 1)},
            "conversation": {
                "id": f"conv-{i % 4}",
                "projectPath": "/src/app",
                "words": ["migration", "plan", "currency"][: 1 + i % 3],
            },
        }
        for i in range(150)
    ]
    await db[REQUESTS].insert_many(docs)
    await db[ROLLUPS].bulk_write([delta.update() for delta in fold(docs)])
    return db


FILTERS = [
    (q.RequestFilter(), "timestamp_desc"),
    (q.RequestFilter(model="claude-opus-5-5", status="2xx"), "model_time"),
    (q.RequestFilter(model="claude-opus-5-5", status="error"), "outcome_time"),
    (q.RequestFilter(organization="org-1", status="5xx", streaming=True), "org_outcome_time"),
    (q.RequestFilter(organization="org-1", outcome="proxy_error"), "outcome_time"),
    (q.RequestFilter(session="s-1", outcome="client_closed"), "session_time"),
    (q.RequestFilter(session_prefix="3fa85f64-57", model="m"), "session_time"),
    (q.RequestFilter(words=("migration", "plan"), model="m"), "conversation_words_time"),
    (q.RequestFilter(words=("currency",), project="/src/app"), "conversation_words_time"),
    (q.RequestFilter(status="429", start=NOW - HOUR, end=NOW), "outcome_time"),
    (q.RequestFilter(status="200", start=NOW - HOUR, end=NOW), "timestamp_desc"),
]


@pytest.mark.parametrize(("f", "index"), FILTERS, ids=repr)
async def test_every_list_window_rides_its_index(
    indexed: AsyncDatabase[Any], f: q.RequestFilter, index: str
) -> None:
    p = lp.plan(f)
    assert p.index == index
    cursor = q.Cursor(NOW - HOUR, "b" * 32)
    for lead in p.leads:
        for pipeline in (
            lp.window_pipeline(
                p, NOW - HOUR, NOW, newest_first=True, cursor=None, limit=51, lead=lead
            ),
            lp.window_pipeline(
                p, NOW - 2 * HOUR, NOW - HOUR, newest_first=True, cursor=cursor, limit=9, lead=lead
            ),
            lp.window_pipeline(
                p, NOW - HOUR, None, newest_first=False, cursor=cursor, limit=9, lead=lead
            ),
            lp.ties_pipeline(
                p, NOW, newest_first=True, cursor=cursor, limit=lp.MAX_TIES, lead=lead
            ),
        ):
            used = await index_of(indexed, REQUESTS, pipeline)
            assert used == index or not EXACT


async def test_the_other_reads_ride_their_indexes(indexed: AsyncDatabase[Any]) -> None:
    cases: list[tuple[str, list[dict[str, Any]], str]] = [
        (REQUESTS, lp.id_prefix_pipeline("3f9a0c", q.RequestFilter(model="m"), 51), "requestId"),
        (REQUESTS, q.tail_pipeline(NOW, 200), "completed_time"),
        (
            REQUESTS,
            lp.sample_pipeline("plan", NOW - lp.SAMPLE_SPAN, NOW),
            "conversation_words_time",
        ),
        (REQUESTS, [{"$match": cq.thread_filter("conv-1")}], "conversation_time"),
        # storage.request_offsets: a ragged end counted in the log, per model.
        (
            REQUESTS,
            [{"$match": {"model": "m", "timestamp": {"$gte": NOW - HOUR, "$lt": NOW}}}],
            "model_time",
        ),
        # ... and the rollup counts it walks instead of the log.
        (
            ROLLUPS,
            [{"$match": {"tier": "h", "t": {"$gte": NOW - HOUR, "$lt": NOW}, "cuboid": ""}}],
            "tier_cuboid_t",
        ),
        (
            ROLLUPS,
            [{"$match": {"tier": "d", "cuboid": "m", "model": "m", "t": {"$gte": NOW - HOUR}}}],
            "tier_cuboid_model_t",
        ),
        (ROLLUPS, options_pipeline("model", "m"), "tier_cuboid_t"),
        # The list's pace, then the minutes of its newest quarter (storage.list_plan).
        (
            ROLLUPS,
            [
                {
                    "$match": lp.pace_query(
                        q.RequestFilter(organization="org-1", status="5xx"), NOW
                    )[0]
                }
            ],
            "tier_cuboid_org_t",
        ),
        (
            ROLLUPS,
            [
                {
                    "$match": lp.minutes_query(
                        lp.pace_query(q.RequestFilter(model="m"), NOW)[0], NOW - HOUR
                    )
                }
            ],
            "tier_cuboid_model_t",
        ),
    ]
    for collection, pipeline, index in cases:
        used = await index_of(indexed, collection, pipeline)
        assert used.startswith(index) or not EXACT, (pipeline, used)


def test_the_scan_sees_a_regex() -> None:
    """The source scan's pattern matches how a filter would spell one."""
    assert re.findall(r"""["']\$regex["']""", """{"model": {"$regex": x}}""")
    assert re.findall(r"""["']\$regex["']""", """{'model': {'$regex': x}}""")
