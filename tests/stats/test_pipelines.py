"""The stats pipelines as data: index-backed `$match` first, the right cuboid."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stats import pipelines as p
from stats.timebuckets import HOUR, decompose

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


def test_series_is_one_index_backed_match_on_one_tier() -> None:
    pipeline = p.series(HOUR, T0, T1, org="org-a")
    assert pipeline == [
        {"$match": {"tier": "h", "t": {"$gte": T0, "$lt": T1}, "cuboid": "o", "org": "org-a"}}
    ]


def test_each_segment_is_read_at_its_tier_through_the_index() -> None:
    segments = decompose(T0, T1)
    assert [(s.tier.name, s.start, s.end) for s in segments] == [
        ("d", T0, datetime(2026, 11, 3, tzinfo=UTC)),
        ("h", datetime(2026, 11, 3, tzinfo=UTC), datetime(2026, 11, 3, 5, tzinfo=UTC)),
        ("q", datetime(2026, 11, 3, 5, tzinfo=UTC), T1),
    ]
    match = p.totals_by_model(segments[1], model="claude-x")[0]["$match"]
    assert match == {
        "tier": "h",
        "t": {"$gte": segments[1].start, "$lt": segments[1].end},
        "cuboid": "m",
        "model": "claude-x",
    }
    assert p.totals(segments[0])[1] == {"$group": {"_id": None, **p.counter_sums()}}


def test_latency_sums_every_histogram_bucket() -> None:
    group = p.latency_by_model(decompose(T0, T1)[0])[1]["$group"]
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
    latest = p.latest_rate_limits(decompose(T0, T1)[0], org="org-a")
    assert latest[0]["$match"]["org"] == "org-a" and latest[0]["$match"]["cuboid"] == "o"
    assert latest[1] == {"$group": {"_id": "$org", "last": {"$max": "$rl.last"}}}
