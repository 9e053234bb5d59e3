"""The Overview page in a real browser, fed by real traffic through the proxy.

The shared proxy's log grows with every dashboard test, so numbers are checked
against the stats API over the range the page itself states, and per model with
models only this module sends.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from dashboard.overview import OTHER, build_charts, cache_hit_ratio, totals_of
from dashboard.render import render_text
from dashboard.timerange import parse_range
from tests.dashboard.conftest import DashboardEnv, PageFactory

TAG = uuid.uuid4().hex[:6]
# Models only this module sends, so their rows are exactly what it sent.
MODEL_A = f"claude-sonnet-4-5-overview-{TAG}"
MODEL_B = f"claude-haiku-4-5-overview-{TAG}"
_NOW = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)
HOSTILE_MODEL = f'<img src=x onerror="window.__xss=1">{TAG}<script>window.__xss=2</script>'


@pytest.fixture(scope="module")
def traffic(dashboard_env: DashboardEnv) -> Iterator[DashboardEnv]:
    """Overview traffic: the default mix over the real priced models, then two
    models of this module (3 + 2 requests, errors among them) and a hostile name."""
    dashboard_env.send_traffic(14, overloaded=1)
    dashboard_env.send_traffic(models=[MODEL_A], stream=2, rate_limited=1)
    dashboard_env.send_traffic(models=[MODEL_B], json=1, server_error=1)
    dashboard_env.send_traffic(models=[HOSTILE_MODEL], stream=1)
    yield dashboard_env


def _range_of(page: Page) -> tuple[str, str]:
    times = page.locator(".page-head .subtitle time")
    return times.nth(0).get_attribute("datetime") or "", times.nth(1).get_attribute(
        "datetime"
    ) or ""


def _card(page: Page, name: str) -> str:
    return page.locator(f"#card-{name} .value").inner_text().strip()


def _stub_requests_page(route: Route) -> None:
    route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>stub</title>")


def test_overview_shows_the_logged_traffic(
    traffic: DashboardEnv, new_page: PageFactory, screenshot: Callable[..., Path]
) -> None:
    page = new_page(timezone_id="UTC")
    page.goto("/dashboard?tz=UTC")
    start, end = _range_of(page)
    stats = traffic.get_json(f"/api/stats?start={quote(start)}&end={quote(end)}")
    assert stats["total_requests"] >= len(traffic.sent) >= 21
    # The cards state the API's own totals for the page's range.
    assert _card(page, "requests") == f"{stats['total_requests']:,}"
    assert _card(page, "errors") == f"{stats['total_errors']:,}"
    tokens = page.locator("#card-tokens dd")
    assert tokens.nth(0).inner_text() == f"{stats['total_input_tokens']:,}"
    assert tokens.nth(1).inner_text() == f"{stats['total_output_tokens']:,}"
    assert (
        page.locator("#card-tokens .value").get_attribute("title") == f"{stats['total_tokens']:,}"
    )
    assert _card(page, "cost").startswith("$") and _card(page, "cost") != "$0.00"

    # This module's models: their rows hold exactly what it sent.
    row_a = page.locator("#models tbody tr", has_text=MODEL_A)
    expect(row_a.locator("td").nth(1)).to_have_text("3")
    expect(row_a.locator("td").nth(8)).to_have_text("1")  # the 429
    row_b = page.locator("#models tbody tr", has_text=MODEL_B)
    expect(row_b.locator("td").nth(1)).to_have_text("2")
    expect(row_b.locator("td").nth(8)).to_have_text("1")  # the 500

    # Four charts, bars with tooltips naming bucket, model and value.
    for key in ("tokens", "cost_usd", "requests", "errors"):
        chart = page.locator(f"#chart-{key}")
        expect(chart.locator("svg rect.bar").first).to_be_visible()
        assert chart.locator("svg .axis text").count() >= 3
    titles = page.locator("#chart-requests rect.bar title").all_text_contents()
    assert any(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:00 · .+: \d+", t) for t in titles), titles
    legend = page.locator("#chart-requests .legend li").all_text_contents()
    assert len(legend) >= 2 and all(name.strip() for name in legend)

    # Latency per model and the fake upstream's rate-limit headers.
    expect(page.locator("#latency tbody tr", has_text=MODEL_A)).to_have_count(1)
    assert "ms" in page.locator("#latency tbody tr", has_text=MODEL_A).inner_text()
    org = page.locator("#rate-limits tbody tr", has_text="org-fake-0001")
    expect(org).to_contain_text("42 %")  # unified 5h utilization 0.42
    expect(org).to_contain_text("13 %")
    expect(org).to_contain_text("allowed")
    assert org.locator(".gauge .fill").first.get_attribute("width") == "42.0"

    screenshot(page, "overview-light")


def test_overview_dark_theme(traffic: DashboardEnv, new_page: PageFactory, screenshot: Any) -> None:
    page = new_page(color_scheme="dark", timezone_id="Europe/Paris")
    page.goto("/dashboard?tz=Europe/Paris")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    text = page.evaluate("getComputedStyle(document.body).color")
    assert _luminance(background) < 0.2 < 0.7 < _luminance(text)
    screenshot(page, "overview-dark")
    light = new_page(color_scheme="light")
    light.goto("/dashboard?tz=UTC")
    assert _luminance(light.evaluate("getComputedStyle(document.body).backgroundColor")) > 0.8


def _luminance(css_rgb: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css_rgb)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_hostile_model_names_render_as_text(traffic: DashboardEnv, new_page: PageFactory) -> None:
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto("/dashboard?tz=UTC")
    cell = page.locator("#models td.model", has_text="onerror")
    expect(cell).to_have_text(HOSTILE_MODEL)
    assert page.evaluate("window.__xss") is None and dialogs == []
    assert page.locator("#models img, #models script, .legend img").count() == 0
    # The legend names the top five models (other tests of the session add theirs):
    # wherever the hostile name appears there, it is its own text, never markup.
    legends = [t.strip() for t in page.locator(".legend li").all_text_contents()]
    assert all(t == HOSTILE_MODEL for t in legends if "onerror" in t), legends


def test_the_url_holds_the_view_and_back_works(
    traffic: DashboardEnv, new_page: PageFactory
) -> None:
    page = new_page(timezone_id="UTC")
    page.goto("/dashboard?tz=UTC")
    expect(page.locator('[aria-label="Range"] [aria-current="true"]')).to_have_text("24h")
    page.get_by_role("link", name="7d", exact=True).click()
    page.wait_for_url(re.compile(r"range=7d"))
    expect(page.locator(".subtitle")).to_contain_text("daily buckets")
    assert len(page.locator("#chart-tokens svg .bars rect").all()) >= 1
    page.get_by_role("link", name="hour", exact=True).click()
    page.wait_for_url(re.compile(r"range=7d.*bucket=hour|bucket=hour.*range=7d"))
    expect(page.locator(".subtitle")).to_contain_text("hourly buckets")

    # The custom range form: its values land in the URL, and the page states them.
    page.fill("#range-from", "2026-01-01T00:00")
    page.fill("#range-to", "2026-01-03T00:00")
    page.click(".range-form button[type=submit]")
    page.wait_for_url(re.compile(r"from=2026-01-01"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["from"] == ["2026-01-01T00:00"] and query["tz"] == ["UTC"]
    assert _range_of(page) == ("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z")
    expect(page.locator("#range-empty")).to_be_visible()  # nothing logged back then

    page.go_back()
    page.wait_for_url(re.compile(r"bucket=hour"))
    expect(page.locator(".subtitle")).to_contain_text("hourly buckets")
    page.go_back()
    expect(page.locator(".subtitle")).to_contain_text("daily buckets")
    assert "bucket" not in page.url
    page.go_back()
    expect(page.locator('[aria-label="Range"] [aria-current="true"]')).to_have_text("24h")

    # A deep link opened afresh shows the same view.
    fresh = new_page()
    fresh.goto("/dashboard/overview?range=30d&tz=Asia/Kolkata")
    expect(fresh.locator("#range-zone")).to_have_text("Asia/Kolkata")
    expect(fresh.locator('[aria-label="Range"] [aria-current="true"]')).to_have_text("30d")


def test_the_browser_zone_is_taken_once(traffic: DashboardEnv, new_page: PageFactory) -> None:
    page = new_page(timezone_id="Asia/Tokyo")
    page.goto("/dashboard")
    page.wait_for_url(re.compile(r"tz=Asia%2FTokyo"))
    expect(page.locator("#range-zone")).to_have_text("Asia/Tokyo")
    # Times show in the browser's zone, UTC on hover.
    first = page.locator(".subtitle time").first
    expect(first).to_have_attribute(
        "title", re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")
    )
    utc_hour = int(first.get_attribute("datetime")[11:13])  # type: ignore[index]
    shown = first.inner_text()
    assert f"{(utc_hour + 9) % 24:02d}:" in shown, shown
    # The nav links carry it too, so moving around keeps the zone.
    assert "tz=Asia%2FTokyo" in (
        page.locator("nav a", has_text="Overview").get_attribute("href") or ""
    )


def test_keyboard_moves_through_the_models_and_opens_one(
    traffic: DashboardEnv, new_page: PageFactory
) -> None:
    page = new_page()
    page.route(re.compile(r".*/dashboard/requests\?.*"), _stub_requests_page)
    page.goto("/dashboard?tz=UTC")
    rows = page.locator("#models tbody tr")
    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_class(re.compile("kn-selected"))
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows.nth(1)).to_have_class(re.compile("kn-selected"))
    expect(page.locator("#models .kn-selected")).to_have_count(1)
    model = rows.nth(1).locator("td.model").inner_text()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dashboard/requests\?model="))
    assert parse_qs(urlsplit(page.url).query)["model"] == [model]


# ---- the page's data without a browser --------------------------------------------------
def test_totals_and_cache_ratio() -> None:
    rows = [
        {
            "requests": 2,
            "errors": 1,
            "input_tokens": 10,
            "cache_read_tokens": 30,
            "cache_creation_tokens": 10,
            "cost_usd": 0.5,
        },
        {"requests": 1, "input_tokens": 50, "cost_usd": None},
    ]
    totals = totals_of(rows)
    assert totals["requests"] == 3 and totals["errors"] == 1 and totals["cost_usd"] == 0.5
    assert cache_hit_ratio(totals) == pytest.approx(30 / 100)
    assert cache_hit_ratio(totals_of([])) is None


def test_top_models_and_the_rest_stack_to_the_total() -> None:
    rng = parse_range({"range": "24h", "tz": "UTC"}, _NOW)
    ts = [int(_NOW.timestamp() * 1000) - 3_600_000 * i for i in (2, 1, 0)]
    total = [
        {"ts": t, "tokens": v, "cost_usd": c, "requests": r, "errors": 0}
        for t, v, c, r in zip(ts, (100, 0, 70), (0.3, 0, 0.1), (3, 0, 2), strict=True)
    ]
    per_model = {
        "m1": [
            {"tokens": 60, "cost_usd": 0.1, "requests": 1},
            {},
            {"tokens": 70, "cost_usd": 0.1, "requests": 2},
        ]
    }
    charts = {c.key: c.chart for c in build_charts(total, per_model, rng)}
    tokens = charts["tokens"]
    assert [(b.css, b.title.split(" · ")[1]) for b in tokens.bars] == [
        ("s0", "m1: 60"),
        ("s6", f"{OTHER}: 40"),
        ("s0", "m1: 70"),
    ]
    assert tokens.total == 170
    # Rounding residue of summed costs draws no "other" sliver.
    assert [b.css for b in charts["cost_usd"].bars] == ["s0", "s6", "s0"]
    assert charts["errors"].empty


def test_the_page_escapes_recorded_text() -> None:
    rng = parse_range({}, _NOW)
    data = {
        "totals": totals_of([]),
        "cache_hit_ratio": None,
        "error_rate": None,
        "models": [
            {
                "model": HOSTILE_MODEL,
                "requests": 1,
                "tokens": 1,
                "input_tokens": 1,
                "output_tokens": 0,
                "cache_creation_tokens": 0,
                "cache_read_tokens": 0,
                "cost_usd": 0,
                "unpriced_requests": 1,
                "errors": 0,
            }
        ],
        "charts": [],
        "latency": [],
        "rate_limits": [],
        "ever_requests": 1,
    }
    html = render_text(
        "overview.html",
        rng=rng,
        data=data,
        problem=None,
        presets=["24h"],
        buckets=["hour"],
        request_path="/dashboard",
        with_query=lambda **_: "/dashboard",
        proxy_address="http://x",
    )
    assert HOSTILE_MODEL not in html
    assert "&lt;img src=x onerror=" in html and "&lt;script&gt;" in html
    # In the link's query too: percent-encoded, never raw markup.
    assert "model=%3Cimg" in html
