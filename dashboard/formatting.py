"""Number and time formatting for the templates (pure; registered as filters)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

# What a value that is not known (no data, no percentile) shows as: an en dash.
MISSING = "\u2013"
_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))


def number(value: float | None) -> str:
    """`1234567` → `1,234,567`; fractions keep up to two decimals."""
    if value is None:
        return MISSING
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def compact(value: float | None) -> str:
    """`1234` → `1.2k`, `5_600_000` → `5.6M`: for axes and cards."""
    if value is None:
        return MISSING
    magnitude = abs(value)
    for scale, suffix in _SUFFIXES:
        if magnitude >= scale:
            scaled = value / scale
            text = f"{scaled:.1f}" if abs(scaled) < 100 else f"{scaled:.0f}"
            return text.removesuffix(".0") + suffix
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def usd(value: float | None) -> str:
    """Dollars: cents from $0.10 up, two significant digits below, so a small
    amount never reads as zero ($0.0031, $0.05)."""
    if value is None:
        return MISSING
    magnitude = abs(value)
    if magnitude == 0:
        return "$0.00"
    if magnitude >= 0.1:
        return f"${value:,.2f}"
    decimals = min(1 - math.floor(math.log10(magnitude)), 8)
    text = f"{value:.{decimals}f}".rstrip("0")
    if len(text.partition(".")[2]) < 2:
        text = f"{value:.2f}"
    return f"${text}"


def percent(value: float | None, digits: int = 0) -> str:
    """A 0..1 fraction as a percentage."""
    if value is None or math.isnan(value):
        return MISSING
    return f"{value * 100:.{digits}f} %"


def milliseconds(value: float | None) -> str:
    """`842.3` → `842 ms`, `15300` → `15.3 s`."""
    if value is None:
        return MISSING
    if value >= 1000:
        return f"{value / 1000:.1f} s"
    return f"{value:.0f} ms"


def iso_utc(value: datetime) -> str:
    """The `datetime` attribute of a `<time>` element (UTC, `Z`)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def utc_text(value: datetime) -> str:
    """The text a `<time>` shows before the browser rewrites it to its own zone."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


FILTERS = {
    "number": number,
    "compact": compact,
    "usd": usd,
    "percent": percent,
    "ms": milliseconds,
    "iso_utc": iso_utc,
    "utc_text": utc_text,
}
