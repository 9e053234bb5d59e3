"""The cost engine: one row per model and per modifier, tiers, iterations,
served models, and raw usage that may be anything."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.pricing import PriceTable

TABLE = PriceTable.load()
M = 1_000_000


def u(i: int = 0, o: int = 0, w5: int = 0, w1: int = 0, r: int = 0, **extra: Any) -> dict[str, Any]:
    """A raw usage object as the API sends it."""
    return {
        "input_tokens": i,
        "output_tokens": o,
        "cache_creation_input_tokens": w5 + w1,
        "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1},
        "cache_read_input_tokens": r,
        **extra,
    }


ROWS = [
    # model, usage, batch, expected USD
    ("claude-opus-5-5", u(i=M, r=M), False, 4.20),  # 1M in x $4 + 1M read x $0.20
    ("claude-opus-5-5", u(M, M, M, M, M), False, 37.20),  # 4 + 20 + 5 + 8 + 0.20
    ("claude-opus-5-5[1m]", u(o=M), False, 20.0),  # 1M out x $20
    ("claude-opus-5", u(M, M, M, M, M), False, 46.75),  # 5 + 25 + 6.25 + 10 + 0.50
    ("claude-fable-5-1", u(i=M, o=M, r=M), False, 60.25),  # 10 + 50 + 0.25
    ("claude-fable-5", u(w5=M, r=M), False, 13.50),  # 12.50 + 1.00
    ("claude-mythos-5-1", u(i=M, w1=M), False, 30.0),  # 10 + 20
    ("claude-mythos-5", u(r=M), False, 1.0),  # 1M read x $1
    ("claude-sonnet-5-5", u(i=M, w1=M, r=M), False, 6.10),  # 2 + 4 + 0.10
    ("claude-sonnet-5", u(o=M, w5=M, r=M), False, 12.70),  # 10 + 2.50 + 0.20
    ("claude-haiku-5-5", u(i=50_000, o=10_000, r=50_000), False, 0.0105),
    # ↑ prompt 100,000 = threshold, lower tier: 0.005 + 0.005 + 0.0005
    ("claude-haiku-5-5", u(i=50_001, o=10_000, r=50_000), False, 0.0525005),
    # ↑ prompt 100,001: 50,001 x $0.50 + 10,000 x $2.50 + 50,000 x $0.05
    ("claude-haiku-5-5", u(i=1, o=M), False, 0.5000001),  # 1 x $0.10 + 1M x $0.50
    ("claude-haiku-5-5", u(w5=100_001), False, 0.062500625),  # writes count: 100,001 x $0.625
    ("claude-haiku-5-5", u(w1=60_000, r=40_001), False, 0.06200005),
    # ↑ prompt 100,001: 60,000 x $1.00 + 40,001 x $0.05
    ("claude-opus-4-8", u(i=M, o=M), False, 30.0),  # 5 + 25
    ("claude-opus-4-7", u(i=M, o=M), False, 30.0),
    ("claude-opus-4-6", u(w5=M, w1=M), False, 16.25),  # 6.25 + 10
    ("claude-opus-4-5-20251101", u(r=M), False, 0.50),
    ("claude-opus-4-1", u(i=M, w5=M), False, 33.75),  # 15 + 18.75
    ("claude-opus-4", u(o=M, r=M), False, 76.50),  # 75 + 1.50
    ("claude-sonnet-4-6", u(w1=M, r=M), False, 6.30),  # 6 + 0.30
    ("claude-sonnet-4-5", u(i=100_000, o=100_000), False, 1.80),  # 0.30 + 1.50
    ("claude-sonnet-4-5", u(i=200_001, o=M), False, 23.700006),
    # ↑ over 200K prompt: 200,001 x $6 + 1M x $22.50
    ("claude-sonnet-4", u(r=M), False, 0.60),  # 1M-token prompt: read at 2 x $0.30
    ("claude-sonnet-4", u(i=200_000), False, 0.60),  # exactly 200K: 200,000 x $3
    ("claude-haiku-4-5", u(i=M, w5=M), False, 2.25),  # 1 + 1.25
    ("claude-3-7-sonnet", u(o=M), False, 15.0),
    ("claude-3-5-sonnet", u(w1=M), False, 6.0),
    ("claude-3-5-haiku", u(w5=M, w1=M, r=M), False, 2.68),  # 1 + 1.60 + 0.08
    ("claude-3-opus", u(i=M), False, 15.0),
    ("claude-3-haiku", u(w5=M, r=M), False, 0.33),  # 0.30 + 0.03
    # --- modifiers ---
    ("claude-opus-5-5", u(i=M, o=M, speed="fast"), False, 48.0),  # (4 + 20) x 2
    ("claude-opus-5", u(i=M, speed="fast"), False, 10.0),  # 5 x 2
    ("claude-opus-4-8", u(o=M, speed="fast"), False, 50.0),  # 25 x 2
    ("claude-opus-5-5", u(i=M, o=M, speed="standard"), False, 24.0),
    ("claude-opus-5-5", u(i=M, o=M, inference_geo="us"), False, 26.4),  # 24 x 1.1
    ("claude-opus-5-5", u(r=M, inference_geo="us"), False, 0.22),  # 0.20 x 1.1
    ("claude-opus-5-5", u(i=M, inference_geo="global"), False, 4.0),
    ("claude-opus-4-5", u(i=M, inference_geo="us"), False, 5.0),  # released before: no 1.1
    ("claude-sonnet-5-5", u(i=M, o=M, r=M), True, 6.05),  # (2 + 10 + 0.10) x 0.5
    ("claude-sonnet-5-5", u(w5=M, w1=M), True, 3.25),  # (2.50 + 4) x 0.5
    ("claude-opus-5", u(i=M, service_tier="batch"), False, 2.5),  # 5 x 0.5
    ("claude-opus-5-5", u(i=M, speed="fast", inference_geo="us"), True, 4.4),
    # ↑ 4 x 2 x 1.1 x 0.5
    ("claude-haiku-5-5", u(i=200_000, inference_geo="us"), False, 0.11),
    # ↑ upper tier: 200,000 x $0.50 = 0.10, x 1.1
]


@pytest.mark.parametrize(("model", "usage", "batch", "expected"), ROWS)
def test_cost_table(model: str, usage: dict[str, Any], batch: bool, expected: float) -> None:
    cost = TABLE.cost_of(model, usage, batch=batch)
    assert cost is not None
    assert cost.usd == pytest.approx(expected, rel=1e-12)
    assert sum(cost.breakdown.values()) == pytest.approx(expected, rel=1e-12)
    assert not cost.unpriced and not cost.incomplete and cost.notes == ()
    assert cost.priced_as == TABLE.resolve(model)


def test_modifiers_applied_are_reported() -> None:
    cost = TABLE.cost_of("claude-opus-5-5", u(i=1, speed="fast", inference_geo="us"), batch=True)
    assert cost is not None
    assert cost.modifiers == {"speed": 2.0, "inferenceGeo": 1.1, "batch": 0.5}
    plain = TABLE.cost_of("claude-opus-5-5", u(i=1))
    assert plain is not None and plain.modifiers == {}


@pytest.mark.parametrize(
    ("model", "usage", "tier"),
    [
        ("claude-haiku-5-5", u(i=99_999), "prompt<=100000"),
        ("claude-haiku-5-5", u(i=100_000), "prompt<=100000"),
        ("claude-haiku-5-5", u(i=100_001), "prompt>100000"),
        ("claude-haiku-5-5", u(i=1, w5=50_000, r=50_000), "prompt>100000"),
        ("claude-opus-5-5", u(i=500_000), None),
    ],
)
def test_tier_label(model: str, usage: dict[str, Any], tier: str | None) -> None:
    cost = TABLE.cost_of(model, usage)
    assert cost is not None and cost.tier == tier


def test_unpublished_fast_multiplier_makes_a_lower_bound() -> None:
    cost = TABLE.cost_of("claude-fable-5-1", u(i=M, speed="fast"))
    assert cost is not None
    assert cost.incomplete and not cost.unpriced
    assert cost.usd == pytest.approx(10.0)  # the standard price: a lower bound
    assert cost.notes == ("speed=fast: no published multiplier for claude-fable-5-1",)
    assert "speed" not in cost.modifiers


def test_unknown_model_is_unpriced_with_no_usd() -> None:
    cost = TABLE.cost_of("claude-opus-5-7", u(i=M, o=M))
    assert cost is not None
    assert cost.unpriced and cost.usd is None and cost.priced_as is None
    assert cost.breakdown == {} and not cost.incomplete
    assert cost.document()["usd"] is None


def test_no_usage_no_cost() -> None:
    assert TABLE.cost_of("claude-opus-5-5", None) is None


def test_served_model_is_the_one_priced() -> None:
    # Asked for Opus 5, answered by Opus 5.5: 1M in x $4
    cost = TABLE.cost_of("claude-opus-5", u(i=M), served_model="claude-opus-5-5")
    assert cost is not None and cost.usd == pytest.approx(4.0)
    assert cost.priced_as == "claude-opus-5-5"
    unknown = TABLE.cost_of("claude-opus-5", u(i=M), served_model="claude-opus-9")
    assert unknown is not None and unknown.unpriced


def test_unsplit_cache_writes_count_as_five_minute_writes() -> None:
    raw = {"cache_creation_input_tokens": 2 * M, "cache_creation": {"ephemeral_1h_input_tokens": M}}
    cost = TABLE.cost_of("claude-opus-5-5", raw)
    assert cost is not None
    assert cost.breakdown["cacheWrite1h"] == pytest.approx(8.0)  # 1M x $8
    assert cost.breakdown["cacheWrite5m"] == pytest.approx(5.0)  # the other 1M x $5
    flat = TABLE.cost_of("claude-opus-5-5", {"cache_creation_input_tokens": M})
    assert flat is not None and flat.usd == pytest.approx(5.0)


def fallback_usage(declined_output: int, served_model: str = "claude-opus-5-5") -> dict[str, Any]:
    iterations = [
        {
            "type": "message",
            "model": "claude-fable-5-1",
            "input_tokens": M,
            "output_tokens": declined_output,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_creation": None,
        },
        {
            "type": "fallback_message",
            "model": served_model,
            "input_tokens": M,
            "output_tokens": M,
            "cache_read_input_tokens": M,
            "cache_creation_input_tokens": 0,
            "cache_creation": None,
        },
    ]
    # Top level: only the serving attempt (the engine must not add it twice).
    return {
        "input_tokens": M,
        "output_tokens": M,
        "cache_read_input_tokens": M,
        "iterations": iterations,
    }


def test_iterations_are_each_priced_at_their_model() -> None:
    cost = TABLE.cost_of("claude-fable-5-1", fallback_usage(M), served_model="claude-opus-5-5")
    assert cost is not None
    # Fable 5.1: 1M in x $10 + 1M out x $50 = 60; Opus 5.5: 4 + 20 + 0.20 = 24.20
    assert cost.usd == pytest.approx(84.20)
    assert cost.iterations is not None and len(cost.iterations) == 2
    first, second = cost.iterations
    assert (first["pricedAs"], first["usd"]) == ("claude-fable-5-1", pytest.approx(60.0))
    assert (second["pricedAs"], second["usd"]) == ("claude-opus-5-5", pytest.approx(24.20))
    assert cost.priced_as == "claude-opus-5-5" and not cost.incomplete


def test_an_attempt_declined_before_any_output_is_free() -> None:
    cost = TABLE.cost_of("claude-fable-5-1", fallback_usage(0), served_model="claude-opus-5-5")
    assert cost is not None and cost.usd == pytest.approx(24.20)  # only Opus 5.5's part
    assert cost.iterations is not None
    assert cost.iterations[0]["declined"] is True and cost.iterations[0]["usd"] == 0.0
    assert cost.notes == ("attempt on claude-fable-5-1 declined before any output: not billed",)


def test_an_iteration_of_an_unknown_model_makes_the_cost_incomplete() -> None:
    usage = fallback_usage(M, served_model="claude-unknown-9")
    cost = TABLE.cost_of("claude-fable-5-1", usage, served_model="claude-unknown-9")
    assert cost is not None
    assert cost.incomplete and not cost.unpriced
    assert cost.usd == pytest.approx(60.0)  # the Fable part only: a lower bound
    assert cost.iterations is not None and cost.iterations[1]["unpriced"] is True
    assert cost.priced_as == "claude-fable-5-1"


def test_iterations_all_unknown_are_unpriced() -> None:
    usage = {
        "iterations": [
            {"type": "message", "model": "x-1", "input_tokens": 5},
            {"type": "fallback_message", "model": "x-2", "output_tokens": 5},
        ]
    }
    cost = TABLE.cost_of("x-1", usage)
    assert cost is not None and cost.unpriced and cost.usd is None


def test_iterations_without_a_model_run_on_the_answering_model() -> None:
    # Compaction: the top level excludes the summarising pass; the iterations hold both.
    usage = {
        "input_tokens": 20_000,
        "output_tokens": 1_000,
        "iterations": [
            {"type": "compaction", "input_tokens": 180_000, "output_tokens": 3_500},
            {"type": "message", "model": None, "input_tokens": 20_000, "output_tokens": 1_000},
        ],
    }
    cost = TABLE.cost_of("claude-opus-5-5[1m]", usage, served_model="claude-opus-5-5")
    assert cost is not None
    # (180,000 + 20,000) in x $4 + (3,500 + 1,000) out x $20 = 0.80 + 0.09
    assert cost.usd == pytest.approx(0.89)
    assert cost.iterations is not None and {i["pricedAs"] for i in cost.iterations} == {
        "claude-opus-5-5"
    }


def test_modifiers_apply_to_every_iteration() -> None:
    usage = {
        "speed": "fast",
        "iterations": [{"type": "message", "model": "claude-opus-5", "input_tokens": M}],
    }
    cost = TABLE.cost_of("claude-opus-5", usage, batch=True)
    assert cost is not None and cost.usd == pytest.approx(5.0)  # 5 x 2 x 0.5


def test_document_shape() -> None:
    cost = TABLE.cost_of("claude-fable-5-1", fallback_usage(M), served_model="claude-opus-5-5")
    assert cost is not None
    doc = cost.document()
    assert set(doc) == {
        "usd",
        "breakdown",
        "pricedAs",
        "tier",
        "modifiers",
        "incomplete",
        "notes",
        "iterations",
    }
    assert set(doc["breakdown"]) == {"input", "output", "cacheWrite5m", "cacheWrite1h", "cacheRead"}
    assert isinstance(doc["notes"], list) and isinstance(doc["iterations"], list)
    json.dumps(doc, allow_nan=False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
usage_keys = st.sampled_from(
    [
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "iterations",
        "speed",
        "inference_geo",
        "service_tier",
        "fallback_credit",
        "type",
        "model",
    ]
)
usages = st.dictionaries(
    usage_keys, json_values | st.lists(st.dictionaries(usage_keys, json_values))
)


@settings(max_examples=300, deadline=None)
@given(
    usage=usages | json_values,
    model=st.sampled_from(["claude-opus-5-5", "claude-haiku-5-5", "nope", None]),
    served=st.sampled_from(["claude-fable-5-1", "", None]),
    batch=st.booleans(),
)
def test_garbage_usage_never_raises(usage: Any, model: Any, served: Any, batch: bool) -> None:
    cost = TABLE.cost_of(model, usage, served_model=served, batch=batch)
    if usage is None:
        assert cost is None
        return
    assert cost is not None
    assert cost.usd is None or (math.isfinite(cost.usd) and cost.usd >= 0)
    assert cost.unpriced == (cost.usd is None)
    json.dumps(cost.document(), allow_nan=False)


@pytest.mark.parametrize("bad", [True, -5, 2.5, "100", None, 2**64, [1]])
def test_bad_token_counts_count_as_zero(bad: object) -> None:
    cost = TABLE.cost_of("claude-opus-5-5", {"input_tokens": bad, "output_tokens": M})
    assert cost is not None and cost.usd == pytest.approx(20.0)  # only the 1M out x $20


def test_notes_stay_short_whatever_the_model_id() -> None:
    cost = TABLE.cost_of("x" * 100_000, {"input_tokens": 1})
    assert cost is not None and cost.unpriced
    assert len(cost.notes) == 1 and len(cost.notes[0]) < 120
