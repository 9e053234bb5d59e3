"""Zones and a span where local days and hours are not UTC ones: half-hour,
45-minute and DST-shifting offsets, shared by the tiling and zone-days tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

ODD_ZONES = (
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/St_Johns",
    "America/New_York",
    "Australia/Lord_Howe",
)
# Four days across the end of DST in New York and St. John's (2026-11-01: a
# 25-hour day); Lord Howe's half-hour shift is 2026-10-04 (start) and 2026-04-05 (end).
START = datetime(2026, 10, 29, 21, 7, tzinfo=UTC)
SPAN = timedelta(days=4, hours=2)
