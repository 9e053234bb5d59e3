"""dashboard/static/core.js in a real browser: local times, keyboard navigation,
zone links, the theme, fetchJSON, plus the auth and cross-site protections as a
browser meets them, and the harness's own error capture."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route, expect

from tests.dashboard.conftest import DashboardEnv, PageFactory

# A page of our own on the proxy's origin (served by the test, not the proxy)
# that loads the real shared module, with one of each thing it acts on.
CORE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/static/app.css">
<script type="module" src="/dashboard/static/app.js"></script></head>
<body>
<input type="search" id="q">
<ul id="list" data-keynav>
  <li><a href="/dashboard/__core?row=1">one</a></li>
  <li><a href="/dashboard/__core?row=2">two</a></li>
  <li>a row without a link is skipped</li>
  <li><a href="/dashboard/__core?row=3">three</a></li>
</ul>
<time id="t" datetime="2026-07-01T12:34:56Z">2026-07-01 12:34 UTC</time>
<time id="d" datetime="2026-07-01T23:30:00Z" data-format="date">2026-07-01</time>
<a id="zone" href="/dashboard?range=7d" data-tz>o</a>
<a id="named" href="/dashboard?tz=UTC" data-tz>o</a>
<a id="plain" href="/dashboard">o</a>
<button type="button" data-theme-toggle></button>
</body></html>"""


def _serve_core_page(route: Route) -> None:
    route.fulfill(status=200, content_type="text/html", body=CORE_PAGE)


def _core_page(new_page: PageFactory, **options: object) -> Page:
    page = new_page(**options)  # type: ignore[arg-type]
    page.route(re.compile(r".*/dashboard/__core.*"), _serve_core_page)
    page.goto("/dashboard/__core")
    page.wait_for_function("document.querySelector('#t').dataset.localized === '1'")
    return page


def test_times_show_in_the_browser_zone_with_utc_on_hover(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    page = _core_page(new_page, timezone_id="America/New_York")
    stamp = page.locator("#t")
    expect(stamp).to_have_attribute("title", "2026-07-01 12:34:56 UTC")
    assert "08:34:56" in stamp.inner_text()  # EDT, UTC-4
    expect(page.locator("#d")).to_have_text("01/07/2026")  # 19:30 on 1 July in New York
    tokyo = _core_page(new_page, timezone_id="Asia/Tokyo")
    assert "21:34:56" in tokyo.locator("#t").inner_text()
    expect(tokyo.locator("#d")).to_have_text("02/07/2026")


def test_j_k_enter_and_slash(dashboard_env: DashboardEnv, new_page: PageFactory) -> None:
    page = _core_page(new_page)
    rows = page.locator("#list li")
    selected = page.locator("#list li.kn-selected")
    page.keyboard.press("j")
    expect(selected).to_have_text("one")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(selected).to_have_text("three")  # the row without a link was skipped
    page.keyboard.press("j")
    expect(selected).to_have_text("three")  # stays at the end
    page.keyboard.press("k")
    expect(selected).to_have_text("two")
    expect(rows.nth(1)).to_have_attribute("aria-selected", "true")
    expect(page.locator("#list [aria-selected]")).to_have_count(1)

    # `/` focuses the search box without typing into it; keys there are text.
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("jk")
    expect(page.locator("#q")).to_have_value("jk")
    expect(selected).to_have_text("two")
    page.keyboard.press("Escape")
    expect(page.locator("#q")).not_to_be_focused()
    # A modified key is the browser's, not ours.
    page.keyboard.press("Control+j")
    expect(selected).to_have_text("two")

    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"row=2$"))


def test_links_marked_data_tz_carry_the_browser_zone(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    page = _core_page(new_page, timezone_id="Australia/Adelaide")
    expect(page.locator("#zone")).to_have_attribute(
        "href", "/dashboard?range=7d&tz=Australia%2FAdelaide"
    )
    expect(page.locator("#named")).to_have_attribute("href", "/dashboard?tz=UTC")
    expect(page.locator("#plain")).to_have_attribute("href", "/dashboard")


def test_the_theme_follows_the_system_until_pinned(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    page = _core_page(new_page, color_scheme="dark")
    root = page.locator("html")
    toggle = page.locator("[data-theme-toggle]")
    expect(toggle).to_have_attribute("data-current", "auto")
    assert page.evaluate("getComputedStyle(document.documentElement).colorScheme") == "light dark"
    assert _dark(page)
    toggle.click()
    expect(root).to_have_attribute("data-theme", "light")
    assert not _dark(page)
    toggle.click()
    expect(root).to_have_attribute("data-theme", "dark")
    page.reload()  # the choice is kept
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.locator("[data-theme-toggle]").click()
    expect(page.locator("html")).not_to_have_attribute("data-theme", re.compile(".*"))
    expect(page.locator("[data-theme-toggle]")).to_have_attribute("data-current", "auto")


def _dark(page: Page) -> bool:
    rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
    return sum(int(v) for v in re.findall(r"\d+", rgb)[:3]) < 3 * 128


FETCH = """async ([url, options]) => {
  const core = await import("/dashboard/static/core.js");
  try {
    return {ok: true, body: await core.fetchJSON(url, options)};
  } catch (e) {
    return {ok: false, name: e.name, status: e.status, error: e.error, details: e.details,
            message: e.message};
  }
}"""


def test_fetch_json_writes_same_origin_and_surfaces_errors(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    page = new_page(allow=["status of 400", "status of 403", "HTTP 400", "HTTP 403"])
    page.route(
        re.compile(r".*/api/__refused$"),
        lambda route: route.fulfill(
            status=403,
            content_type="application/json",
            body=json.dumps({"error": "Cross-site request refused", "details": "why"}),
        ),
    )
    page.goto("/dashboard?tz=UTC")
    current = page.evaluate(FETCH, ["/api/settings", {}])
    assert current["ok"] and "requestHeaderRules" in current["body"]

    # A write through fetchJSON passes the cross-site guard (same-origin), and an
    # API error's message reaches the caller.
    sent: list[dict[str, str]] = []
    page.on("request", lambda r: sent.append(r.headers) if r.method == "PUT" else None)
    bad = {"requestHeaderRules": [{"header": "x-a", "action": "explode"}]}
    result = page.evaluate(FETCH, ["/api/settings", {"method": "PUT", "body": bad}])
    assert result["ok"] is False and result["name"] == "ApiError" and result["status"] == 400
    assert result["error"] == "Invalid settings" and "requestHeaderRules[0]" in result["details"]
    assert sent[-1]["content-type"] == "application/json"
    again = page.evaluate(FETCH, ["/api/settings", {"method": "PUT", "body": current["body"]}])
    assert again["ok"], again
    assert dashboard_env.get_json("/api/settings") == current["body"]

    refused = page.evaluate(FETCH, ["/api/__refused", {"method": "DELETE"}])
    assert refused["status"] == 403 and refused["error"] == "Cross-site request refused"
    assert refused["details"] == "why" and refused["message"] == "Cross-site request refused: why"


def test_a_cross_site_write_from_another_page_is_refused(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    """A page of another origin (localhost vs 127.0.0.1: another site) makes the
    browser send a write with the Basic credentials it holds: the proxy refuses."""
    port = urlsplit(dashboard_env.url).port
    before = dashboard_env.get_json("/api/settings")
    # 401: the browser's own /favicon.ico request for that page, without credentials.
    page = new_page(base_url=f"http://localhost:{port}", allow=["403", "401"])
    # Any page of that origin will do; /health carries no CSP of the dashboard's.
    page.goto("/health")
    target = f"{dashboard_env.url}/api/settings"
    with page.expect_response(lambda r: r.url == target) as caught:
        page.evaluate(
            """(url) => fetch(url, {method: "POST", mode: "no-cors", credentials: "include",
                                   body: JSON.stringify({requestHeaderRules: []})})""",
            target,
        )
    response = caught.value
    assert response.status == 403
    headers = response.request.headers
    assert headers.get("origin") == f"http://localhost:{port}"
    assert dashboard_env.get_json("/api/settings") == before


def test_without_the_password_the_dashboard_stays_closed(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    page = new_page(credentials=False, allow=["401", "ERR_INVALID_AUTH_CREDENTIALS"])
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/dashboard" in r.url else None)
    try:
        response = page.goto("/dashboard")
    except PlaywrightError as exc:  # headless Chromium cancels the login prompt
        assert "ERR_INVALID_AUTH_CREDENTIALS" in str(exc)
    else:
        assert response is not None and response.status == 401
    assert statuses and set(statuses) == {401}


def test_the_harness_catches_console_errors_and_failed_requests(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    page = new_page()
    page.goto("/dashboard?tz=UTC")
    assert new_page.problems(page) == []
    page.evaluate("console.error('boom')")
    page.evaluate("fetch('/dashboard/static/missing.js').catch(() => null)")
    page.wait_for_timeout(200)
    problems = list(new_page.problems(page))
    assert any("console error: boom" in p for p in problems), problems
    assert any(p.startswith("HTTP 404") and "missing.js" in p for p in problems), problems
    new_page.problems(page).clear()  # seen: the test would otherwise fail at teardown
