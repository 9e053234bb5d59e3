"""The stats pipelines as data: index-backed `$match` first, the right cuboid."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage import stats_pipelines as p
from storage.timebuckets import HOUR, decompose

T0 = datetime(2026, 11, 1, tzinfo=UTC)
T1 = datetime(2026, 11, 3, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("by_model", "model", "org", "cuboid"),
    [
        (False, None, None, ""),
        (False, "m", None, "m"),
        (False, None, "o", "o"),
        (True, None, None, "m"),
        (True, None, "o", "mo"),
        (False, "m", "o", "mo"),
    ],
)
def test_the_smallest_cuboid_answers(
    by_model: bool, model: str | None, org: str | None, cuboid: str
) -> None:
    assert p.cuboid_for(by_model=by_model, model=model, org=org) == cuboid


def test_series_matches_one_tier_range_then_groups_by_bucket() -> None:
    pipeline = p.series(HOUR, T0, T1, org="org-a")
    assert pipeline[0] == {
        "$match": {"tier": "h", "t": {"$gte": T0, "$lt": T1}, "cuboid": "o", "org": "org-a"}
    }
    assert pipeline[1]["$group"]["_id"] == "$t"
    assert pipeline[1]["$group"]["tokens"] == {"$sum": "$tokens"}
    assert pipeline[1]["$group"]["status_5xx"] == {"$sum": "$status.5xx"}
    assert pipeline[2] == {"$sort": {"_id": 1}}


def test_ranges_read_each_segment_at_its_tier() -> None:
    segments = decompose(T0, T1)
    match = p.totals_by_model(segments, model="claude-x")[0]["$match"]
    assert match["cuboid"] == "m" and match["model"] == "claude-x"
    assert [(r["tier"], r["t"]["$gte"], r["t"]["$lt"]) for r in match["$or"]] == [
        ("d", T0, datetime(2026, 11, 3, tzinfo=UTC)),
        ("h", datetime(2026, 11, 3, tzinfo=UTC), datetime(2026, 11, 3, 5, tzinfo=UTC)),
        ("q", datetime(2026, 11, 3, 5, tzinfo=UTC), T1),
    ]
    single = p.totals(decompose(T0, datetime(2026, 11, 2, tzinfo=UTC)))[0]["$match"]
    assert single == {
        "tier": "d",
        "t": {"$gte": T0, "$lt": datetime(2026, 11, 2, tzinfo=UTC)},
        "cuboid": "",
    }


def test_latency_sums_every_histogram_bucket() -> None:
    group = p.latency_by_model(decompose(T0, T1))[1]["$group"]
    assert group["_id"] == "$model"
    assert group["rtH_0"] == {"$sum": "$rtH.0"} and "ttfbH_84" in group


def test_rate_limits_and_organizations_read_the_org_cuboid() -> None:
    pipeline = p.rate_limit_series(HOUR, T0, T1)
    assert pipeline[0]["$match"]["cuboid"] == "o"
    assert pipeline[1]["$group"]["tokensRemainingMin"] == {"$min": "$rl.tokensRemainingMin"}
    assert pipeline[1]["$group"]["unifiedUtilization5hMax"] == {
        "$max": "$rl.unifiedUtilization5hMax"
    }
    assert p.organizations()[0] == {
        "$match": {"tier": "d", "cuboid": "o", "org": {"$type": "string"}}
    }
    assert p.latest_rate_limit_filter("org-a", T0, T1)["organizationId"] == "org-a"
