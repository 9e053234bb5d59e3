"""Charts as SVG geometry, computed on the server (pure functions).

A chart here is data: rectangles, ticks and legend entries with their positions
and `<title>` tooltips. The template `_charts.html` turns it into `<svg>`
markup, so every label (model names come from recorded requests) goes through
the template's autoescaping like any other text, and colours come from CSS
classes (the CSP forbids inline style).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# Series colours: CSS classes s0..s5, and s6 for "other".
PALETTE = ("s0", "s1", "s2", "s3", "s4", "s5")
OTHER_CLASS = "s6"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]
    css: str


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    total: float = 0.0
    total_label: str = ""

    @property
    def empty(self) -> bool:
        return not self.bars


def nice_step(span: float, count: int) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) that cuts `span` into
    about `count` parts."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """0, step, 2·step … up to the first multiple at or above `maximum`."""
    step = nice_step(maximum, count)
    top = step * math.ceil(maximum / step) if maximum > 0 else step
    ticks, value = [], 0.0
    while value <= top + step / 1e6:
        ticks.append(round(value, 10))
        value += step
    return ticks


def label_positions(count: int, most: int) -> list[int]:
    """Indices of the buckets that get an x-axis label: evenly spaced, at most `most`."""
    if count <= 0:
        return []
    stride = max(1, math.ceil(count / max(most, 1)))
    return list(range(0, count, stride))


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str],
    *,
    short_labels: Sequence[str] | None = None,
    label_at: Sequence[int] | None = None,
    width: int = 640,
    height: int = 220,
    most_x_labels: int = 8,
) -> BarChart:
    """One bar per bucket, each series a segment stacked bottom-up in order.

    `labels` name the buckets in tooltips, `short_labels` on the axis (at the
    indices `label_at`, by default evenly spaced); `fmt`
    formats values (tokens, dollars) in tooltips and on the y axis. Zero segments
    are left out; an all-zero chart has no bars (the template says so)."""
    short = list(short_labels) if short_labels is not None else list(labels)
    count = len(labels)
    left, top, right, bottom = 56.0, 10.0, width - 8.0, height - 26.0
    totals = [sum(s.values[i] for s in series) for i in range(count)]
    peak = max(totals, default=0.0)
    ticks = nice_ticks(peak)
    scale = (bottom - top) / ticks[-1] if ticks[-1] > 0 else 0.0
    slot = (right - left) / count if count else 0.0
    bar_width = max(slot * 0.72, min(slot, 1.0))
    bars: list[Bar] = []
    for i in range(count):
        x = left + i * slot + (slot - bar_width) / 2
        base = bottom
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            # Both edges rounded, the height their difference: stacked segments
            # touch exactly, without hairline gaps.
            lower, base = round(base, 2), base - value * scale
            upper = round(base, 2)
            title = f"{labels[i]} · {s.name}: {fmt(value)}"
            bars.append(
                Bar(round(x, 2), upper, round(bar_width, 2), round(lower - upper, 2), s.css, title)
            )
    y_ticks = [Tick(round(bottom - t * scale, 2), fmt(t)) for t in ticks] if peak > 0 else []
    at = label_positions(count, most_x_labels) if label_at is None else label_at
    x_ticks = [Tick(round(left + (i + 0.5) * slot, 2), short[i]) for i in at if 0 <= i < count]
    total = sum(totals)
    return BarChart(
        width,
        height,
        left,
        top,
        right,
        bottom,
        bars,
        y_ticks,
        x_ticks,
        [(s.name, s.css) for s in series if any(v > 0 for v in s.values)],
        total,
        fmt(total),
    )


@dataclass(frozen=True, slots=True)
class Gauge:
    """A horizontal bar in a 100 by 8 box: `width` is the filled part."""

    width: float
    level: str  # "" below 70 %, "warn" from 70 %, "high" from 90 %
    fraction: float


def gauge(fraction: float | None) -> Gauge | None:
    if fraction is None or not math.isfinite(fraction):
        return None
    clamped = min(max(fraction, 0.0), 1.0)
    level = "high" if clamped >= 0.9 else "warn" if clamped >= 0.7 else ""
    return Gauge(round(clamped * 100, 2), level, fraction)
