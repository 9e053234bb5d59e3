"""The Overview of a zone in STATS_ZONES on the real database (SecantusDB, or
MONGODB_URI): from the local-day rollups the recorder writes, the same page as
from the UTC tiers with far fewer documents read; from the UTC tiers again while
the local days miss requests (stored by a recorder without the setting), until
`rebuild_zones` fills them in."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from bench.stats_data import documents
from recording.quarantine import Quarantine
from recording.rebuild_rollups import rebuild, rebuild_zones
from recording.store import RecordStore
from stats.derived_writer import BatchTag
from stats.overview_fold import Overview
from stats.rollups import ROLLUPS
from stats.service import StatsService
from stats.timebuckets import zone_day_tier, zone_hour_tier
from storage.mongo import ensure_rollup_indexes
from tests.stats.rollup_memory import assert_same_overview, assert_same_rows

ZONE = "Asia/Kolkata"
TZ = ZoneInfo(ZONE)
START = datetime(2026, 10, 30, 22, 17, tzinfo=UTC)
SPAN = timedelta(days=6)
NOW = START + SPAN
FALLBACK = "rollups miss requests"


class Reads(monitoring.CommandListener):
    """Documents the stats read, and the tiers they asked for."""

    def __init__(self) -> None:
        self.documents = 0
        self.tiers: set[str] = set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        tier = (event.command.get("filter") or {}).get("tier")
        if event.command_name == "find" and isinstance(tier, str):
            self.tiers.add(tier)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        cursor = (event.reply or {}).get("cursor") or {}
        self.documents += len(cursor.get("firstBatch") or cursor.get("nextBatch") or [])

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def db(mongo_uri: str) -> AsyncIterator[tuple[AsyncDatabase[Any], Reads]]:
    reads = Reads()
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri, event_listeners=[reads])
    name = f"test_zone_overview_{os.getpid()}"
    await ensure_rollup_indexes(client[name][ROLLUPS])
    yield client[name], reads
    await client.drop_database(name)
    await client.close()


async def _pages(db: AsyncDatabase[Any], reads: Reads) -> tuple[Overview, Overview, int, int]:
    """The 5-day Overview by day in Kolkata with and without STATS_ZONES, and the
    documents each read."""
    start = NOW - timedelta(days=5)
    reads.documents = 0
    utc = await StatsService(db).overview(start, NOW, 1440, TZ)
    from_utc = reads.documents
    reads.documents, reads.tiers = 0, set()
    zoned = await StatsService(db, zones=(ZONE,)).overview(start, NOW, 1440, TZ)
    return zoned, utc, reads.documents, from_utc


async def _daily(
    db: AsyncDatabase[Any], reads: Reads, logged: list[dict[str, Any]]
) -> tuple[bool, list[tuple[Any, Any]]]:
    """`/api/stats/daily` in Kolkata with and without STATS_ZONES, unfiltered and
    by one model and one organization: whether the zoned ones read local days,
    and each pair of answers."""
    start = NOW - timedelta(days=5)
    pairs = []
    reads.tiers = set()
    for model, org in ((None, None), (logged[0]["model"], None), (None, "org-beta")):
        zoned = await StatsService(db, zones=(ZONE,)).daily(start, NOW, TZ, model, org)
        utc = await StatsService(db).daily(start, NOW, TZ, model, org)
        assert sum(row["requests"] for row in utc["dailyStats"]) > 0
        pairs.append((zoned, utc))
    return zone_day_tier(ZONE) in reads.tiers, pairs


async def _both_ways(
    db: AsyncDatabase[Any], reads: Reads, days: int, minutes: int, tz: ZoneInfo
) -> tuple[Overview, set[str]]:
    """The Overview with STATS_ZONES, checked equal to the one without; and the
    tiers the first read."""
    start = NOW - timedelta(days=days)
    reads.tiers = set()
    zoned = await StatsService(db, zones=(ZONE,)).overview(start, NOW, minutes, tz)
    tiers = reads.tiers
    assert_same_overview(zoned, await StatsService(db).overview(start, NOW, minutes, tz))
    return zoned, tiers


async def test_local_days_answer_the_overview_once_they_hold_every_request(
    db: tuple[AsyncDatabase[Any], Reads], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database, reads = db
    logged = list(documents(1200, START, SPAN, seed=5))
    quarantine = Quarantine(tmp_path / "quarantine", 1 << 20)
    recorder = RecordStore(database, quarantine, zones=(ZONE,))
    await recorder.store([dict(d) for d in logged[:900]], BatchTag("0123456789ab", 1))

    # Every request stored by a recorder with the setting: the local days answer.
    with caplog.at_level(logging.INFO, logger="proxy.stats"):
        zoned, utc, read, from_utc = await _pages(database, reads)
    assert FALLBACK not in caplog.text
    assert zone_day_tier(ZONE) in reads.tiers
    assert_same_overview(zoned, utc)
    assert sum(b["requests"] for b in zoned.total) == sum(
        1 for d in logged[:900] if d["timestamp"] >= utc.boundaries[0]
    )
    assert read < from_utc, (read, from_utc)
    # By hour too, from the local-hour documents (a +05:30 hour is no UTC hour).
    hourly, tiers = await _both_ways(database, reads, 3, 60, TZ)
    assert zone_hour_tier(ZONE) in tiers
    assert sum(b["requests"] for b in hourly.total) > 0
    # So does the daily series of the stats API, filtered or not.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="proxy.stats"):
        local, pairs = await _daily(database, reads, logged)
    assert local and FALLBACK not in caplog.text
    for zoned_daily, utc_daily in pairs:
        assert_same_rows(zoned_daily["dailyStats"], utc_daily["dailyStats"])
    # Colombo, not listed, has Kolkata's days: it reads them too.
    _, tiers = await _both_ways(database, reads, 5, 1440, ZoneInfo("Asia/Colombo"))
    assert zone_day_tier(ZONE) in tiers

    # A recorder without the setting (an old pod in a rolling update) stores more:
    # the local days miss them, so the page is read from the UTC tiers, whole.
    older = RecordStore(database, quarantine)
    await older.store([dict(d) for d in logged[900:]], BatchTag("ba9876543210", 1))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="proxy.stats"):
        zoned, utc, _, _ = await _pages(database, reads)
    assert FALLBACK in caplog.text
    assert_same_overview(zoned, utc)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="proxy.stats"):
        await _both_ways(database, reads, 3, 60, TZ)
    assert FALLBACK in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="proxy.stats"):
        _, pairs = await _daily(database, reads, logged)
    assert FALLBACK in caplog.text
    for zoned_daily, utc_daily in pairs:
        assert_same_rows(zoned_daily["dailyStats"], utc_daily["dailyStats"])
    assert sum(b["requests"] for b in zoned.total) == sum(
        1 for d in logged if d["timestamp"] >= utc.boundaries[0]
    )

    # The backfill rebuilds the local days from the log: they answer again.
    assert (await rebuild_zones(database, (ZONE,)))[0] == 1200
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="proxy.stats"):
        zoned, utc, read, from_utc = await _pages(database, reads)
    assert FALLBACK not in caplog.text
    assert_same_overview(zoned, utc)
    assert read < from_utc, (read, from_utc)

    # So does a full rebuild with the zone listed.
    await rebuild(database, zones=(ZONE,))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="proxy.stats"):
        zoned, utc, _, _ = await _pages(database, reads)
    assert FALLBACK not in caplog.text
    assert_same_overview(zoned, utc)
