"""Model ids resolve to their price family; unknown ones stay unpriced."""

from __future__ import annotations

import pytest

from storage.pricing import PriceTable
from streaming.usage import Usage

TABLE = PriceTable.load()


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4"),
        ("claude-sonnet-4-5", "claude-sonnet-4"),
        ("claude-sonnet-4-5[1m]", "claude-sonnet-4"),
        ("anthropic/claude-opus-4-5", "claude-opus-4-5"),
        ("us.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-opus-4-6", "claude-opus-4-6"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-3-haiku-20240307", "claude-3-haiku"),
        ("gpt-4o", None),
        ("claude-opus-45", None),
        (None, None),
    ],
)
def test_family_resolution(model: str | None, family: str | None) -> None:
    assert TABLE.family(model) == family


def test_cost_formula_with_all_token_kinds() -> None:
    usage = Usage(
        input=1_000_000,
        output=1_000_000,
        cache_write_5m=1_000_000,
        cache_write_1h=1_000_000,
        cache_read=1_000_000,
    )
    # Opus 4.5: 5 + 25 + 6.25 + 10 + 0.5
    assert TABLE.cost("claude-opus-4-5-20251101", usage) == pytest.approx(46.75)
    assert TABLE.cost("unknown", usage) is None


def test_override_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("families:\n  my-model: {input: 2, output: 4, cache_read: 0.5}\n")
    monkeypatch.setenv("PRICING_FILE", str(path))
    table = PriceTable.load()
    assert table.cost("my-model-20260101", Usage(input=10**6, cache_read=10**6)) == 2.5
    assert table.cost("claude-sonnet-4-5", Usage(input=1)) is None
