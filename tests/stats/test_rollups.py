"""Rollup deltas (pure): what a request counts into, and that batching never
changes the result."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bench.stats_data import documents
from stats.rollups import (
    CUBOIDS,
    HIST_BASE,
    HIST_BUCKETS,
    fold,
    hist_bounds,
    hist_index,
    merge_into,
    percentile,
    rollup_id,
)
from stats.timebuckets import TIERS

START = datetime(2026, 11, 1, 23, 50, tzinfo=UTC)


def _as_dict(deltas: list) -> dict[str, tuple]:
    return {rollup_id(d.key): (d.inc, d.low, d.high) for d in deltas}


def test_one_request_counts_into_every_tier_and_cuboid() -> None:
    (doc,) = documents(1, START, timedelta(minutes=1))
    deltas = fold([doc])
    assert len(deltas) == len(TIERS) * len(CUBOIDS)
    for delta in deltas:
        key = delta.key
        assert (
            key["t"]
            <= doc["timestamp"]
            < key["t"] + timedelta(seconds=dict((t.name, t.seconds) for t in TIERS)[key["tier"]])
        )
        assert (key["model"] is not None) == ("m" in key["cuboid"])
        assert (key["org"] is not None) == ("o" in key["cuboid"])
        assert delta.inc["requests"] == 1 and delta.inc["tokens"] == doc["tokens"]
        has_hist = any(k.startswith("rtH.") for k in delta.inc)
        assert has_hist == ("m" in key["cuboid"])  # latency is read per model
        assert bool(delta.low) == ("o" in key["cuboid"])  # headroom per organization
    by_tier = {d.key["tier"]: d.key["t"] for d in deltas if d.key["cuboid"] == ""}
    assert by_tier["d"] == datetime(2026, 11, 1, tzinfo=UTC)
    assert by_tier["h"] == datetime(2026, 11, 1, 23, tzinfo=UTC)


def test_batching_and_order_do_not_change_the_rollups() -> None:
    docs = list(documents(400, START, timedelta(hours=3), seed=9))
    whole = _as_dict(fold(docs))
    rng = random.Random(4)
    shuffled = docs[:]
    rng.shuffle(shuffled)
    pending: dict = {}
    for i in range(0, len(shuffled), 37):
        merge_into(pending, fold(shuffled[i : i + 37]))
    pieces = _as_dict(list(pending.values()))
    assert pieces.keys() == whole.keys()
    for key, (inc, low, high) in whole.items():
        other_inc, other_low, other_high = pieces[key]
        assert other_inc.keys() == inc.keys()
        assert all(abs(other_inc[k] - v) < 1e-9 for k, v in inc.items())
        assert (other_low, other_high) == (low, high)


def test_update_is_one_upsert_with_inc_min_max() -> None:
    (doc,) = documents(1, START, timedelta(minutes=1))
    delta = next(d for d in fold([doc]) if d.key["cuboid"] == "o" and d.key["tier"] == "h")
    op = delta.update()._doc
    assert set(op) == {"$inc", "$setOnInsert", "$min", "$max"}
    assert op["$setOnInsert"] == delta.key
    assert op["$min"]["rl.tokensRemainingMin"] == doc["response"]["rateLimit"]["tokensRemaining"]
    assert (
        op["$max"]["rl.unifiedUtilization7dMax"]
        == doc["response"]["rateLimit"]["unifiedUtilization7d"]
    )


def test_histogram_buckets_and_percentiles() -> None:
    assert hist_index(0.2) == 0 and hist_index(10**9) == HIST_BUCKETS - 1
    for ms in (1, 3.7, 250, 12_000, 600_000):
        low, high = hist_bounds(hist_index(ms))
        assert (low <= ms < high and high / max(low, 1) <= HIST_BASE + 1e-9) or low == 0
    rng = random.Random(2)
    values = sorted(rng.lognormvariate(7, 1) for _ in range(5000))
    histogram: dict[int, int] = {}
    for v in values:
        histogram[hist_index(v)] = histogram.get(hist_index(v), 0) + 1
    for q in (0.5, 0.95, 0.99):
        exact = values[int(q * len(values)) - 1]
        assert abs(percentile(histogram, q) - exact) / exact < HIST_BASE - 1
    assert percentile({}, 0.5) is None


def _finest_inc(doc: dict) -> dict:
    return next(d.inc for d in fold([doc]) if d.key["tier"] == "m" and d.key["cuboid"] == "mo")


def test_thinking_and_incomplete_costs_are_counted() -> None:
    (doc,) = documents(1, START, timedelta(minutes=1))
    doc.update(statusCode=200, outcome="completed", costIncomplete=True, tokens=1500)
    doc["usage"] = {
        "input_tokens": 500,
        "output_tokens": 1000,
        "output_tokens_details": {"thinking_tokens": 700},
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    inc = _finest_inc(doc)
    # Thinking is a part of the 1000 output tokens: `tokens` stays 500 + 1000.
    assert inc["thinking"] == 700 and inc["output"] == 1000 and inc["tokens"] == 1500
    assert inc["costIncomplete"] == 1


def test_failover_hops_are_counted() -> None:
    (doc,) = documents(1, START, timedelta(minutes=1))
    doc["failovers"] = 2  # primary -> fallback -> its fallback
    assert _finest_inc(doc)["failovers"] == 2
    for none in (0, None, True, "2", -1):
        doc["failovers"] = none
        assert "failovers" not in _finest_inc(doc)


@pytest.mark.parametrize("bad", [None, "700", -1, True, 2**64, 1.5])
def test_garbage_counters_never_reach_an_inc(bad: object) -> None:
    (doc,) = documents(1, START, timedelta(minutes=1))
    doc["usage"] = {
        "input_tokens": bad,
        "output_tokens": 3,
        "output_tokens_details": {"thinking_tokens": bad},
        "cache_creation": bad,
    }
    inc = _finest_inc(doc)
    assert "input" not in inc and "thinking" not in inc and "cacheWrite5m" not in inc
    assert inc["output"] == 3 and "costIncomplete" not in inc
