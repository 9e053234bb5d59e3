"""The time range a page's URL describes (dashboard/timerange.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.timerange import MAX_HOURLY_SPAN, RangeError, parse_range

NOW = datetime(2026, 12, 6, 17, 30, 12, tzinfo=UTC)


def test_default_is_the_last_day_in_hours_utc() -> None:
    rng = parse_range({}, NOW)
    assert (rng.start, rng.end) == (NOW - timedelta(hours=24), NOW)
    assert (rng.tz_name, rng.bucket, rng.preset, rng.zone_given) == ("UTC", "hour", "24h", False)
    assert rng.minutes == 60


def test_presets_pick_their_bucket() -> None:
    assert parse_range({"range": "7d"}, NOW).bucket == "day"
    assert parse_range({"range": "1h"}, NOW).start == NOW - timedelta(hours=1)
    assert parse_range({"range": "7d", "bucket": "hour"}, NOW).bucket == "hour"


def test_dates_are_local_days_and_to_includes_its_day() -> None:
    rng = parse_range({"from": "2026-12-01", "to": "2026-12-02", "tz": "Europe/Paris"}, NOW)
    assert rng.start == datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert rng.end == datetime(2026, 12, 2, 23, tzinfo=UTC)
    assert rng.preset is None and rng.zone_given and rng.bucket == "hour"


def test_datetime_local_values_are_wall_time_in_the_zone() -> None:
    rng = parse_range(
        {"from": "2026-12-06T09:00", "to": "2026-12-06T12:30", "tz": "America/New_York"}, NOW
    )
    assert rng.start == datetime(2026, 12, 6, 14, tzinfo=UTC)
    assert rng.end == datetime(2026, 12, 6, 17, 30, tzinfo=UTC)
    assert rng.local_input(rng.start) == "2026-12-06T09:00"


def test_offsets_and_epoch_milliseconds() -> None:
    rng = parse_range({"from": "2026-12-06T10:00:00+02:00", "to": "1796580000000"}, NOW)
    assert rng.start == datetime(2026, 12, 6, 8, tzinfo=UTC)
    assert rng.end == datetime.fromtimestamp(1796580000, UTC)
    only_from = parse_range({"from": "2026-12-06T10:00:00Z"}, NOW)
    assert only_from.end == NOW


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"range": "3w"}, "range"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-45"}, "to"),
        ({"from": "2026-12-06T12:00Z", "to": "2026-12-06T11:00Z"}, "to"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from/to"),
        ({"range": "90d", "bucket": "hour"}, "bucket"),
        # 720 hourly buckets: a page's work stays bounded (MAX_HOURLY_SPAN).
        ({"range": "30d", "bucket": "hour"}, "bucket"),
        ({"bucket": "week"}, "bucket"),
        ({"from": "9999-12-31", "to": "9999-12-31"}, "to"),
    ],
)
def test_bad_parameters_are_named(args: dict[str, str], names: str) -> None:
    with pytest.raises(RangeError) as caught:
        parse_range(args, NOW)
    assert str(caught.value).startswith(names + ":")


def test_hourly_is_allowed_up_to_its_limit() -> None:
    start = NOW - MAX_HOURLY_SPAN
    rng = parse_range({"from": start.isoformat(), "to": NOW.isoformat(), "bucket": "hour"}, NOW)
    assert rng.hourly_allowed and rng.bucket == "hour"
    assert not parse_range({"range": "90d"}, NOW).hourly_allowed
