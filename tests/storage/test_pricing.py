"""Model ids resolve exactly to a table id; unknown ones stay unpriced; the
wrappers older callers use keep working; the shipped table is sourced."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from storage.pricing import DEFAULT_TABLE, PriceTable, canonical_model
from streaming.usage import Usage

TABLE = PriceTable.load()
M = 1_000_000


@pytest.mark.parametrize(
    ("model", "table_id"),
    [
        ("claude-opus-5-5", "claude-opus-5-5"),
        ("claude-opus-5-5[1m]", "claude-opus-5-5"),
        ("Claude-Opus-5-5[1M]", "claude-opus-5-5"),
        ("  claude-opus-5-5  ", "claude-opus-5-5"),
        ("claude-opus-5", "claude-opus-5"),
        ("claude-opus-5-7", None),  # a future version is unpriced, not Opus 5's price
        ("claude-opus-5-5-7", None),
        ("claude-opus-45", None),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5[1m]", "claude-sonnet-4-5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),  # alias
        ("claude-opus-4-0", "claude-opus-4"),  # alias
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("anthropic/claude-opus-4-5", "claude-opus-4-5"),
        ("us.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"),
        ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("apac.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        ("global.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
        ("anthropic.claude-haiku-5-5", "claude-haiku-5-5"),
        ("claude-3-5-sonnet@20241022", "claude-3-5-sonnet"),  # Vertex
        ("claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-3-haiku-20240307", "claude-3-haiku"),
        ("claude-fable-5-1", "claude-fable-5-1"),
        ("claude-fable-5", "claude-fable-5"),
        ("claude-fable-5-2", None),  # not yet in the checked docs: flagged, not guessed
        ("gpt-4o", None),
        ("", None),
        ("[1m]", None),
        (None, None),
    ],
)
def test_resolution_is_exact(model: str | None, table_id: str | None) -> None:
    assert TABLE.resolve(model) == table_id
    assert TABLE.family(model) == table_id  # the old name of the same question


def test_canonical_form_of_garbage_is_none_not_an_error() -> None:
    assert canonical_model(42) is None
    assert canonical_model("[[[") == "[[["
    assert canonical_model("x[a]b]") == "x[a]b]"  # only one trailing [..] group goes


def test_opus_5_5_is_not_opus_5() -> None:
    five_five, five = TABLE.price("claude-opus-5-5"), TABLE.price("claude-opus-5")
    assert five_five is not None and five is not None
    assert (five_five.input, five_five.output, five_five.cache_read) == (4, 20, 0.20)
    assert (five_five.cache_write_5m, five_five.cache_write_1h) == (5, 8)
    assert (five.input, five.output, five.cache_read) == (5, 25, 0.50)


def test_old_cost_wrapper_formula_with_all_token_kinds() -> None:
    usage = Usage(input=M, output=M, cache_write_5m=M, cache_write_1h=M, cache_read=M)
    # Opus 4.5: 5 + 25 + 6.25 + 10 + 0.5
    assert TABLE.cost("claude-opus-4-5-20251101", usage) == pytest.approx(46.75)
    assert TABLE.cost("unknown", usage) is None


def test_old_wrappers_pick_the_prompt_size_tier() -> None:
    # Haiku 5.5 over 100,000 prompt tokens: 100,001 in x $0.50 = 0.0500005
    assert TABLE.cost("claude-haiku-5-5", Usage(input=100_001)) == pytest.approx(0.0500005)
    # exactly at the threshold it is still the lower tier: 100,000 x $0.10 = 0.01
    assert TABLE.cost("claude-haiku-5-5", Usage(input=100_000)) == pytest.approx(0.01)
    price = TABLE.price("claude-haiku-5-5")
    assert price is not None
    assert price.breakdown(Usage(cache_read=200_000))["cacheRead"] == pytest.approx(0.01)


def test_shipped_table_is_sourced_and_dated() -> None:
    raw = yaml.safe_load(DEFAULT_TABLE.read_text(encoding="utf-8"))
    assert raw["checked"] == datetime.date(2026, 12, 6)
    assert raw["sources"] and all(u.startswith("https://") for u in raw["sources"].values())
    assert TABLE.models
    for table_id, rates in TABLE.models.items():
        assert rates.source and rates.source.startswith("https://platform.claude.com/"), table_id
        assert rates.us_inference is not None, table_id


def test_models_released_after_february_2026_pay_for_us_inference() -> None:
    after = {
        "claude-opus-5-5",
        "claude-opus-5",
        "claude-fable-5-1",
        "claude-fable-5",
        "claude-mythos-5",
        "claude-mythos-5-1",
        "claude-sonnet-5-5",
        "claude-sonnet-5",
        "claude-haiku-5-5",
        "claude-opus-4-8",
        "claude-opus-4-7",
        "claude-opus-4-6",
        "claude-sonnet-4-6",
    }
    assert {i for i, r in TABLE.models.items() if r.us_inference} == after


def test_fast_mode_multipliers_only_where_published() -> None:
    published = {i: r.fast for i, r in TABLE.models.items() if r.fast is not None}
    assert published == {"claude-opus-5-5": 2.0, "claude-opus-5": 2.0, "claude-opus-4-8": 2.0}


def test_override_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  my-model: {input: 2, output: 4, cache_read: 0.5}\n")
    monkeypatch.setenv("PRICING_FILE", str(path))
    table = PriceTable.load()
    assert table.cost("my-model-20260101", Usage(input=M, cache_read=M)) == 2.5
    assert table.cost("claude-sonnet-4-5", Usage(input=1)) is None


def test_legacy_families_file_still_loads_with_exact_matching(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(
        "families:\n"
        "  claude-sonnet-4: {input: 3, output: 15}\n"
        "  my-model: {input: 2, output: 4, cache_read: 0.5}\n"
    )
    table = PriceTable.load(path)
    assert table.cost("my-model-20260101", Usage(input=M, cache_read=M)) == 2.5
    # defaults: 5m write 1.25x, 1h write 2x, read 0.1x input
    price = table.price("claude-sonnet-4-20250514")
    assert price is not None
    assert (price.cache_write_5m, price.cache_write_1h, price.cache_read) == pytest.approx(
        (3.75, 6.0, 0.3)
    )
    assert table.resolve("claude-sonnet-4-5") is None  # a family no longer covers longer ids
    # No modifier flags in a legacy file: a US-only request is flagged, not guessed.
    cost = table.cost_of("my-model", {"input_tokens": M, "inference_geo": "us"})
    assert cost is not None and cost.incomplete and cost.usd == 2.0
