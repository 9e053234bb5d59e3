"""A bad price file stops loading with `path:line: reason`, naming the right line."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.pricing import PriceTable, PricingError

GOOD = "  ok-model: {input: 1, output: 2}\n"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        # non-numeric and negative prices
        ("models:\n" + GOOD + "  m: {input: abc, output: 2}\n", 3, "m: input must be"),
        ("models:\n  m:\n    input: 1\n    output: -2\n", 4, "m: output must be a non-negative"),
        ("models:\n  m:\n    input: .nan\n    output: 2\n", 3, "m: input must be"),
        ("models:\n  m:\n    input: true\n    output: 2\n", 3, "m: input must be"),
        ("models:\n  m:\n    input: 1\n    output: 2\n    cache_read: '0.1'\n", 5, "cache_read"),
        # unknown keys, at model and top level
        ("models:\n  m:\n    input: 1\n    output: 2\n    ouput: 3\n", 5, "unknown key 'ouput'"),
        ("models:\n" + GOOD + "prices: {}\n", 3, "unknown key 'prices'"),
        ("modifiers:\n  batch: 0.5\n  turbo: 2\nmodels:\n" + GOOD, 3, "unknown key 'turbo'"),
        # missing required rates: the entry's own line
        ("models:\n" + GOOD + "  m:\n    output: 2\n", 3, "m: missing `input`"),
        ("models:\n" + GOOD + "  m: {input: 1}\n", 3, "m: missing `output`"),
        # tiers
        (
            "models:\n  m:\n    input: 1\n    output: 2\n    tiers:\n"
            "      - {above: 1000, input: 2, output: 4}\n"
            "      - {above: 500, input: 3, output: 6}\n",
            7,
            "tiers must ascend",
        ),
        (
            "models:\n  m:\n    input: 1\n    output: 2\n    tiers:\n"
            "      - {above: 1000, input: 2, output: 4}\n"
            "      - {above: 1000, input: 3, output: 6}\n",
            7,
            "tiers must ascend",
        ),
        (
            "models:\n  m:\n    input: 1\n    output: 2\n    tiers:\n"
            "      - {input: 2, output: 4}\n",
            6,
            "needs `above`",
        ),
        (
            "models:\n  m:\n    input: 1\n    output: 2\n    tiers:\n"
            "      - {above: 1.5, input: 2, output: 4}\n",
            6,
            "above must be a positive whole number",
        ),
        ("models:\n  m:\n    input: 1\n    output: 2\n    tiers: []\n", 5, "non-empty list"),
        # multipliers and flags
        ("models:\n  m:\n    input: 1\n    output: 2\n    fast: 0\n", 5, "fast must be a positive"),
        (
            "models:\n  m:\n    input: 1\n    output: 2\n    fast: x2\n",
            5,
            "fast must be a positive",
        ),
        ("modifiers:\n  batch: -0.5\nmodels:\n" + GOOD, 2, "modifiers: batch must be"),
        ("models:\n  m:\n    input: 1\n    output: 2\n    us_inference: yes please\n", 5, "true"),
        # ids and aliases
        ("models:\n" + GOOD + "  ok-model: {input: 1, output: 2}\n", 3, "duplicate key"),
        ("models:\n" + GOOD + "  m-20260101: {input: 1, output: 2}\n", 3, "would never match"),
        (
            "models:\n" + GOOD + "  m:\n    input: 1\n    output: 2\n    aliases: [ok-model]\n",
            6,
            "already the id or alias of ok-model",
        ),
        ("models:\n" + GOOD + "  m: {input: 1, output: 2, source: 5}\n", 3, "source must be"),
        # YAML syntax error, with its own line
        ("models:\n" + GOOD + "  m: {input: 1, output: 2\n  n: {input: 1}\n", 4, "YAML syntax"),
        ("models:\n" + GOOD + "\tbad: tab\n", 3, "YAML syntax"),
        # the table's shape
        ("", 1, "empty"),
        ("checked: 2026-12-06\n", 1, "no `models:`"),
        ("models: [a, b]\n", 1, "models must be a mapping"),
        ("models:\n  m: 5\n", 2, "m must be a mapping"),
    ],
)
def test_error_names_file_line_and_reason(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PricingError) as caught:
        PriceTable.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert reason in message, message
    assert "\n" not in message


def test_pricing_error_is_a_value_error() -> None:
    assert issubclass(PricingError, ValueError)


def test_missing_file_is_a_pricing_error(tmp_path: Path) -> None:
    with pytest.raises(PricingError, match="cannot read the price table"):
        PriceTable.load(tmp_path / "absent.yaml")


def test_a_valid_file_with_every_feature(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "checked: 2026-12-06\n"
        "sources: {pricing: 'https://example.test/pricing'}\n"
        "modifiers: {batch: 0.4, inference_geo_us: 1.2}\n"
        "models:\n"
        "  Big-Model:\n"  # case is normalised
        "    input: 2\n"
        "    output: 10\n"
        "    cache_read: 0.1\n"
        "    tiers:\n"
        "      - {above: 1000, input: 4, output: 20}\n"
        "    fast: 3\n"
        "    us_inference: true\n"
        "    aliases: [big]\n"
        "    source: https://example.test/big\n"
    )
    table = PriceTable.load(path)
    assert table.checked == "2026-12-06"
    assert table.sources == {"pricing": "https://example.test/pricing"}
    assert table.resolve("big-model-20270101") == table.resolve("big[1m]") == "big-model"
    price = table.price("big")
    assert price is not None and len(price.tiers) == 1
    upper = price.tiers[0].price
    # Unstated tier cache rates keep the model's ratio: read 0.05x input, writes 1.25x / 2x.
    assert (upper.cache_read, upper.cache_write_5m, upper.cache_write_1h) == pytest.approx(
        (0.2, 5.0, 8.0)
    )
    cost = table.cost_of(
        "big", {"input_tokens": 2000, "speed": "fast", "inference_geo": "us"}, batch=True
    )
    # upper tier: 2,000 x $4 = 0.008, x 3 x 1.2 x 0.4
    assert cost is not None and cost.usd == pytest.approx(0.008 * 3 * 1.2 * 0.4)
    assert cost.modifiers == {"speed": 3.0, "inferenceGeo": 1.2, "batch": 0.4}


def test_a_broken_price_file_stops_the_proxy_and_the_recorder_naming_the_line(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  claude-x:\n    input: 1\n    output: -2\n")
    env = {
        "PRICING_FILE": str(prices),
        "PATH": "/usr/bin:/bin",
        "REQUEST_LOG": "false",
        "MONGODB_URI": "mongodb://127.0.0.1:9",  # never reached: the prices fail first
    }
    for command in ([str(root / "app.py")], ["-m", "recording"]):
        result = subprocess.run(
            [sys.executable, *command],
            env={**env, "PYTHONPATH": str(root)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0, command
        assert f"configuration error: {prices}:4:" in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
