"""Stats from rollups equal the same numbers computed by brute force over the
request documents, on the real database (SecantusDB, or MONGODB_URI)."""

from __future__ import annotations

import asyncio
import math
import os
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from bench.stats_data import documents
from recording.quarantine import Quarantine
from recording.rebuild_rollups import rebuild
from recording.store import RecordStore
from stats import shapes as shape
from stats.cumulative import SignedPlan
from stats.derived_writer import BatchTag
from stats.rollups import ROLLUPS, is_error
from stats.service import StatsService
from stats.timebuckets import MINUTE, bucket_starts, ceil_to, floor_to
from storage.mongo import connect, ensure_rollup_indexes

START = datetime(2026, 10, 30, 22, 17, tzinfo=UTC)
SPAN = timedelta(days=3, hours=5)
COUNT = 1500
Logged = list[dict[str, Any]]


async def _load(uri: str, name: str, journal: Path) -> list[dict[str, Any]]:
    docs = list(documents(COUNT, START, SPAN, seed=3))
    # Edge cases: no model, no organization, unpriced, no response at all.
    docs[10].update(model=None, organizationId=None)
    docs[11].update(unpriced=True, cost=None)
    docs[12].update(statusCode=None, outcome="client_closed", usage=None, tokens=0, cost=None)
    docs[12]["response"] = {}
    # Thinking (a part of output) on every third answered request, and costs that
    # are only a lower bound on every seventh.
    for n, d in enumerate(docs):
        if d["usage"] and n % 3 == 0:
            d["usage"]["output_tokens_details"] = {
                "thinking_tokens": d["usage"]["output_tokens"] // 2
            }
        d["costIncomplete"] = n % 7 == 0 and d["cost"] is not None
        # Failovers: one hop on every fifth request, a chain of two on every 35th.
        d["failovers"] = 2 if n % 35 == 0 else int(n % 5 == 0)
    client = connect(uri, timeout=120)
    db = client[name]
    await ensure_rollup_indexes(db[ROLLUPS])
    store = RecordStore(db, Quarantine(journal / "quarantine", 1 << 20))
    for seq, i in enumerate(range(0, COUNT, 250), 1):
        await store.store([dict(d) for d in docs[i : i + 250]], BatchTag("0123456789ab", seq))
    # A batch redone after a crash re-sends its stored records: they must not count twice.
    await store.store([dict(d) for d in docs[250:500]], BatchTag("0123456789ab", 2))
    await client.close()
    return docs


async def _drop(uri: str, name: str) -> None:
    client = connect(uri, timeout=120)
    await client.drop_database(name)
    await client.close()


@pytest.fixture(scope="module")
def stats_db(
    mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The log loaded once for the module (it is only read, except by the rebuild
    test, which restores what it changes)."""
    name = f"test_stats_{os.getpid()}"
    docs = asyncio.run(_load(mongo_uri, name, tmp_path_factory.mktemp("journal")))
    yield name, docs
    asyncio.run(_drop(mongo_uri, name))


@pytest.fixture
def logged(stats_db: tuple[str, Logged]) -> Logged:
    return stats_db[1]


@pytest.fixture
async def db(
    mongo_uri: str, stats_db: tuple[str, list[dict[str, Any]]]
) -> AsyncIterator[AsyncDatabase[Any]]:
    client = connect(mongo_uri, timeout=120)
    yield client[stats_db[0]]
    await client.close()


def _tokens(d: dict[str, Any]) -> int:
    return d["tokens"] or 0


def _thinking(d: dict[str, Any]) -> int:
    return ((d["usage"] or {}).get("output_tokens_details") or {}).get("thinking_tokens", 0)


def _brute(
    docs: list[dict[str, Any]],
    start: datetime,
    end: datetime,
    keep: Callable[[dict[str, Any]], bool],
) -> list[dict[str, Any]]:
    low, high = floor_to(start, MINUTE), ceil_to(end, MINUTE)
    return [d for d in docs if low <= d["timestamp"] < high and keep(d)]


def _sums(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "requests": len(docs),
        "tokens": sum(_tokens(d) for d in docs),
        "input_tokens": sum((d["usage"] or {}).get("input_tokens", 0) for d in docs),
        "cache_read_tokens": sum(
            (d["usage"] or {}).get("cache_read_input_tokens", 0) for d in docs
        ),
        "thinking_tokens": sum(_thinking(d) for d in docs),
        "errors": sum(is_error(d) for d in docs),
        "cost_usd": round(sum(((d["cost"] or {}).get("usd") or 0) for d in docs), 9),
        "cost_incomplete_requests": sum(bool(d.get("costIncomplete")) for d in docs),
        "failovers": sum(d.get("failovers", 0) for d in docs),
    }


def _pick(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: row[k]
        for k in (
            "requests",
            "tokens",
            "input_tokens",
            "cache_read_tokens",
            "thinking_tokens",
            "errors",
            "cost_usd",
            "cost_incomplete_requests",
            "failovers",
        )
    }


@pytest.mark.parametrize(
    ("model", "org"),
    [
        (None, None),
        ("claude-haiku-4-5-20251001", None),
        (None, "org-beta"),
        ("claude-opus-4-1-20250805", "org-alpha"),
    ],
)
async def test_usage_totals_match_the_documents(
    db: AsyncDatabase[Any], logged: list[dict[str, Any]], model: str | None, org: str | None
) -> None:
    service = StatsService(db)
    start, end = (
        START + timedelta(hours=7, minutes=31, seconds=20),
        START + timedelta(days=2, hours=3, minutes=2),
    )

    def keep(d: dict[str, Any]) -> bool:
        return (model is None or d["model"] == model) and (
            org is None or d["organizationId"] == org
        )

    expected = _brute(logged, start, end, keep)
    got = await service.usage(start, end, model, org)
    assert got["total_requests"] == len(expected) > 0
    assert got["total_tokens"] == sum(_tokens(d) for d in expected)
    assert got["total_errors"] == sum(is_error(d) for d in expected)
    assert got["total_thinking_tokens"] == sum(_thinking(d) for d in expected) > 0
    assert got["cost_incomplete_requests"] == sum(bool(d.get("costIncomplete")) for d in expected)
    assert got["total_failovers"] == sum(d["failovers"] for d in expected) > 0
    assert math.isclose(
        got["total_cost_usd"],
        sum(((d["cost"] or {}).get("usd") or 0) for d in expected),
        abs_tol=1e-6,
    )
    for name, entry in got["requests_by_model"].items():
        mine = [d for d in expected if (d["model"] or "unknown") == name]
        assert entry["request_count"] == len(mine)
        assert entry["output_tokens"] == sum(
            (d["usage"] or {}).get("output_tokens", 0) for d in mine
        )
        assert entry["thinking_tokens"] == sum(_thinking(d) for d in mine)
        assert entry["cost_incomplete_requests"] == sum(bool(d.get("costIncomplete")) for d in mine)
        assert entry["failovers"] == sum(d["failovers"] for d in mine)
    models = await service.models(start, end, model, org)
    assert [r["model"] for r in models["modelStats"]] == sorted(
        got["requests_by_model"], key=lambda m: -got["requests_by_model"][m]["tokens"]
    )
    for row in models["modelStats"]:
        mine = [d for d in expected if (d["model"] or "unknown") == row["model"]]
        assert _pick(row) == _sums(mine)


@pytest.mark.parametrize(
    ("minutes", "tz"),
    [
        (60, "UTC"),
        (15, "America/New_York"),
        (1440, "America/New_York"),
        (60, "Asia/Kolkata"),
        (1440, "Asia/Kolkata"),
        (60, "Asia/Kathmandu"),
        (1440, "America/St_Johns"),
        (5, "UTC"),
    ],
)
async def test_time_series_match_the_documents(
    db: AsyncDatabase[Any], logged: list[dict[str, Any]], minutes: int, tz: str
) -> None:
    service = StatsService(db)
    zone = ZoneInfo(tz)
    start = START + timedelta(hours=1, minutes=3)
    end = start + (timedelta(hours=5) if minutes < 60 else timedelta(days=3))
    if minutes == 1440:
        rows = (await service.daily(start, end, zone, None, None))["dailyStats"]
    else:
        rows = (await service.hourly(start, end, minutes, zone, None, None))["hourlyStats"]
    bounds = bucket_starts(start, end, minutes, zone)
    assert [r["ts"] for r in rows] == [int(b.timestamp() * 1000) for b in bounds[:-1]]
    expected: list[list[dict[str, Any]]] = [[] for _ in rows]
    for d in logged:
        i = bisect_right(bounds, d["timestamp"]) - 1
        if 0 <= i < len(rows):
            expected[i].append(d)
    assert [_pick(r) for r in rows] == [_sums(e) for e in expected]
    assert sum(r["requests"] for r in rows) > 0


async def test_empty_ranges_are_zero_filled(
    db: AsyncDatabase[Any], logged: list[dict[str, Any]]
) -> None:
    service = StatsService(db)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    hourly = await service.hourly(
        start, start + timedelta(hours=3), 60, ZoneInfo("UTC"), None, None
    )
    assert [r["requests"] for r in hourly["hourlyStats"]] == [0, 0, 0]
    assert hourly["avgResponseTime"] == 0
    assert (await service.models(start, start + timedelta(days=1), None, None)) == {
        "modelStats": []
    }
    assert (await service.latency(start, start + timedelta(days=1), None, None)) == {"latency": []}


async def test_latency_percentiles_are_within_a_bucket_of_exact(
    db: AsyncDatabase[Any], logged: list[dict[str, Any]]
) -> None:
    service = StatsService(db)
    rows = (await service.latency(START, START + SPAN, None, None))["latency"]
    assert {r["model"] for r in rows} == {d["model"] or "unknown" for d in logged}
    for row in rows:
        values = sorted(
            d["responseTime"] for d in logged if (d["model"] or "unknown") == row["model"]
        )
        assert row["requests"] == len(values)
        for q, name in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            exact = values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]
            assert abs(row[name] - exact) <= exact * 0.2 + 1, (row["model"], name, row[name], exact)
        assert math.isclose(row["avg_ms"], sum(values) / len(values), rel_tol=1e-3)


async def test_rate_limits_latest_and_per_bucket(
    db: AsyncDatabase[Any], logged: list[dict[str, Any]]
) -> None:
    service = StatsService(db)
    start, end = START, START + timedelta(hours=6)
    result = await service.rate_limits(start, end, 60, ZoneInfo("UTC"), None)
    latest = {r["organizationId"]: r for r in result["latest"]}
    assert set(latest) == {"org-alpha", "org-beta"}
    for org, row in latest.items():
        newest = max(
            (d for d in logged if d["organizationId"] == org and d["timestamp"] < end),
            key=lambda d: d["timestamp"],
        )
        assert row["requestsRemaining"] == newest["response"]["rateLimit"]["requestsRemaining"]
        assert (
            row["unifiedUtilization5h"] == newest["response"]["rateLimit"]["unifiedUtilization5h"]
        )
    bounds = bucket_starts(start, end, 60, ZoneInfo("UTC"))
    for bucket in result["buckets"]:
        i = [int(b.timestamp() * 1000) for b in bounds].index(bucket["ts"])
        mine = [
            d["response"]["rateLimit"]
            for d in logged
            if d["organizationId"] == bucket["organizationId"]
            and bounds[i] <= d["timestamp"] < bounds[i + 1]
            and d["response"].get("rateLimit")
        ]
        assert bucket["tokensRemainingMin"] == min(r["tokensRemaining"] for r in mine)
        assert bucket["unifiedUtilization7dMax"] == max(r["unifiedUtilization7d"] for r in mine)
    assert (await service.organizations()) == {"organizations": ["org-alpha", "org-beta"]}


async def test_rebuild_reproduces_the_rollups(
    db: AsyncDatabase[Any], logged: list[dict[str, Any]]
) -> None:
    service = StatsService(db)
    before = await service.usage(None, None, None, None)
    hourly_before = await service.hourly(
        START, START + SPAN, 60, ZoneInfo("Europe/Paris"), None, None
    )
    await db[ROLLUPS].update_many({}, {"$inc": {"requests": 5}})  # damage them
    read, written = await rebuild(db, batch=400)
    assert read == COUNT
    assert written == await db[ROLLUPS].count_documents({}) > 0
    after_usage = await service.usage(None, None, None, None)
    assert {**after_usage, "end_date": None} == {**before, "end_date": None}
    # The new counters are recomputed from the documents, not carried over.
    assert after_usage["total_thinking_tokens"] == sum(_thinking(d) for d in logged) > 0
    assert (
        after_usage["cost_incomplete_requests"]
        == sum(bool(d.get("costIncomplete")) for d in logged)
        > 0
    )
    after = await service.hourly(START, START + SPAN, 60, ZoneInfo("Europe/Paris"), None, None)
    assert after["hourlyStats"] == hourly_before["hourlyStats"]


@pytest.mark.parametrize(
    ("model", "org"),
    [(None, None), ("claude-haiku-4-5-20251001", None), (None, "org-beta"), ("x", "org-beta")],
)
async def test_every_filter_shape_reads_the_rollups_through_an_index(
    db: AsyncDatabase[Any], logged: Logged, model: str | None, org: str | None
) -> None:
    from stats.pipelines import series
    from stats.timebuckets import QUARTER

    match = series(QUARTER, START, START + SPAN, model=model, org=org)[0]
    plan = await db.command("explain", {"aggregate": ROLLUPS, "pipeline": [match], "cursor": {}})
    text = str(plan)
    assert "IXSCAN" in text and "COLLSCAN" not in text, text[:600]


def _same_rows(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Counters equal, costs within their 9-decimal rounding (never -0.0),
    averages within their 0.1 ms rounding."""
    assert [r.keys() for r in got] == [r.keys() for r in want]
    for new, old in zip(got, want, strict=True):
        for name, value in old.items():
            if isinstance(value, float):
                assert new[name] == pytest.approx(value, abs=0.051 if "ms" in name else 1.1e-9)
                assert math.copysign(1, new[name]) == 1
            else:
                assert new[name] == value, name


@pytest.mark.parametrize(
    "tz", ["Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe"]
)
async def test_cumulative_differences_answer_what_plain_tiles_answer(
    db: AsyncDatabase[Any], tz: str
) -> None:
    signed, plain = StatsService(db), StatsService(db, signed=False)
    zone = ZoneInfo(tz)
    start, end = START + timedelta(minutes=43), START + SPAN - timedelta(minutes=7)
    assert SignedPlan.of(bucket_starts(start, end, 1440, zone)).signed  # the path under test
    for model in (None, "claude-haiku-4-5-20251001"):
        got = await signed.daily(start, end, zone, model, None)
        want = await plain.daily(start, end, zone, model, None)
        _same_rows(got["dailyStats"], want["dailyStats"])
        got = await signed.hourly(start, end, 180, zone, model, None)
        want = await plain.hourly(start, end, 180, zone, model, None)
        _same_rows(got["hourlyStats"], want["hourlyStats"])
    got_view = await signed.overview(start, end, 1440, zone)
    want_view = await plain.overview(start, end, 1440, zone)
    _same_rows(got_view.models, want_view.models)
    _same_rows(got_view.latency, want_view.latency)
    assert got_view.per_model.keys() == want_view.per_model.keys()
    for model, rows in [(None, want_view.total), *want_view.per_model.items()]:
        mine = got_view.total if model is None else got_view.per_model[model]
        _same_rows([shape.split(b) for b in mine], [shape.split(b) for b in rows])
    assert got_view.rate_limits == want_view.rate_limits and want_view.models
