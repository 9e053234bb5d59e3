"""Chart geometry (dashboard/charts.py): pure functions, checked by their numbers."""

from __future__ import annotations

import pytest

from dashboard.charts import Series, gauge, label_positions, nice_step, nice_ticks, stacked_bars


@pytest.mark.parametrize(
    ("span", "count", "step"),
    [(100, 4, 25), (184_000, 4, 50_000), (0.2, 4, 0.05), (7, 4, 2), (1, 4, 0.25), (0, 4, 1)],
)
def test_nice_steps(span: float, count: int, step: float) -> None:
    assert nice_step(span, count) == pytest.approx(step)


def test_ticks_start_at_zero_and_cover_the_peak() -> None:
    assert nice_ticks(184_000) == [0, 50_000, 100_000, 150_000, 200_000]
    assert nice_ticks(23) == [0, 10, 20, 30]
    assert nice_ticks(0) == [0, 1]
    ticks = nice_ticks(0.2035)
    assert ticks[0] == 0 and ticks[-1] >= 0.2035 and len(ticks) <= 6


def test_label_positions_are_even_and_bounded() -> None:
    assert label_positions(24, 8) == [0, 3, 6, 9, 12, 15, 18, 21]
    assert label_positions(5, 8) == [0, 1, 2, 3, 4]
    assert label_positions(0, 8) == []


def test_stacked_bars_stack_segments_bottom_up() -> None:
    series = [Series("a", [10, 0, 30], "s0"), Series("b", [10, 5, 0], "s1")]
    chart = stacked_bars(["t0", "t1", "t2"], series, lambda v: f"{v:g}", height=220)
    # Zero segments are not drawn: 2 + 1 + 1 rectangles.
    assert [(b.css, b.title) for b in chart.bars] == [
        ("s0", "t0 · a: 10"),
        ("s1", "t0 · b: 10"),
        ("s1", "t1 · b: 5"),
        ("s0", "t2 · a: 30"),
    ]
    first, second = chart.bars[0], chart.bars[1]
    assert first.y + first.height == pytest.approx(chart.bottom)  # sits on the axis
    assert second.y + second.height == pytest.approx(first.y)  # stacked on the first
    # Heights are proportional; the highest tick (30, the peak, a round number) is the top.
    assert [t.label for t in chart.y_ticks] == ["0", "10", "20", "30"]
    assert chart.bars[3].height == pytest.approx(chart.bottom - chart.top)
    assert chart.bars[2].height == pytest.approx((chart.bottom - chart.top) / 6, abs=0.02)
    assert first.height == pytest.approx(second.height, abs=0.02)  # edges rounded to 0.01
    # Bars sit inside their slots, in order, inside the plot.
    xs = [b.x for b in chart.bars]
    assert xs[0] == xs[1] < xs[2] < xs[3]
    assert all(chart.left <= b.x and b.x + b.width <= chart.right for b in chart.bars)
    assert chart.total == 55 and chart.total_label == "55"
    assert chart.legend == [("a", "s0"), ("b", "s1")]


def test_series_without_values_stay_out_of_the_legend() -> None:
    series = [Series("used", [1, 2], "s0"), Series("other models", [0, 0], "s6")]
    chart = stacked_bars(["x", "y"], series, str)
    assert chart.legend == [("used", "s0")]


def test_an_all_zero_chart_is_empty() -> None:
    chart = stacked_bars(["x", "y"], [Series("a", [0, 0], "s0")], str)
    assert chart.empty and chart.y_ticks == [] and chart.legend == []
    assert [t.label for t in chart.x_ticks] == ["x", "y"]


def test_axis_labels_at_chosen_buckets() -> None:
    chart = stacked_bars(
        ["a", "b", "c", "d"],
        [Series("m", [1, 1, 1, 1], "s0")],
        str,
        short_labels=["A", "B", "C", "D"],
        label_at=[1, 3, 9],  # out of range: ignored
    )
    assert [t.label for t in chart.x_ticks] == ["B", "D"]
    slot = (chart.right - chart.left) / 4
    assert chart.x_ticks[0].position == pytest.approx(chart.left + 1.5 * slot)


def test_many_buckets_keep_at_least_a_pixel_per_bar() -> None:
    chart = stacked_bars([str(i) for i in range(744)], [Series("m", [1] * 744, "s0")], str)
    assert len(chart.bars) == 744 and min(b.width for b in chart.bars) >= 0.5


@pytest.mark.parametrize(
    ("fraction", "width", "level"),
    [(0.42, 42, ""), (0.7, 70, "warn"), (0.95, 95, "high"), (1.4, 100, "high"), (-1, 0, "")],
)
def test_gauges(fraction: float, width: float, level: str) -> None:
    g = gauge(fraction)
    assert g is not None and g.width == width and g.level == level and g.fraction == fraction


def test_no_gauge_without_a_value() -> None:
    assert gauge(None) is None and gauge(float("nan")) is None
