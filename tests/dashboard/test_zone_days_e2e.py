"""STATS_ZONES through the real proxy: its recorder rolls every request up into
the local days of the zone too, and the Overview by day in that zone is read
from them; without them the proxy says so and reads the UTC tiers."""

from __future__ import annotations

import asyncio
import urllib.request

from recording.rebuild_rollups import rebuild_zones
from stats.rollups import ROLLUPS
from storage.mongo import connect
from tests.dashboard.conftest import DashboardEnv

ZONE = "Asia/Kolkata"
FALLBACK = "rollups miss requests"


async def _requests(mongo_uri: str, database: str, tier: str) -> int:
    client = connect(mongo_uri, timeout=30)
    try:
        days = await client[database][ROLLUPS].find({"tier": tier, "cuboid": ""}).to_list(None)
        return sum(d["requests"] for d in days)
    finally:
        await client.close()


async def _forget_local_days(mongo_uri: str, database: str, *, rebuild: bool) -> None:
    client = connect(mongo_uri, timeout=30)
    try:
        if rebuild:
            await rebuild_zones(client[database], (ZONE,))
        else:
            await client[database][ROLLUPS].delete_many({"tier": f"d@{ZONE}"})
    finally:
        await client.close()


def _overview(env: DashboardEnv) -> None:
    path = f"/dashboard?range=30d&tz={ZONE}"
    request = urllib.request.Request(env.url + path, headers=env.auth)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_the_recorder_rolls_up_local_days_and_the_overview_reads_them(
    dashboard_env: DashboardEnv, mongo_uri: str
) -> None:
    dashboard_env.send_traffic(5)
    database = f"proxy_test_{dashboard_env.proxy.port}"
    in_kolkata = asyncio.run(_requests(mongo_uri, database, f"d@{ZONE}"))
    assert in_kolkata == asyncio.run(_requests(mongo_uri, database, "d")) >= 5
    _overview(dashboard_env)
    assert FALLBACK not in dashboard_env.proxy.log()
    # Local days missing (a zone listed after the traffic): the UTC tiers answer.
    asyncio.run(_forget_local_days(mongo_uri, database, rebuild=False))
    try:
        _overview(dashboard_env)
        assert FALLBACK in dashboard_env.proxy.log()
    finally:
        asyncio.run(_forget_local_days(mongo_uri, database, rebuild=True))
    assert asyncio.run(_requests(mongo_uri, database, f"d@{ZONE}")) == in_kolkata
