"""The Requests list and its live tail in a real browser, fed by real traffic
through the proxy: data and no console errors, every filter and the search,
deep links and Back, pages, the keyboard, rows pushed while the page is open.

Every test sends its own traffic in its own session (the database is shared by
all dashboard tests) and narrows the list to it where counts matter."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from playwright.sync_api import Page, expect

from tests.dashboard.conftest import DashboardEnv, PageFactory, Sent
from tests.dashboard.test_detail_browser import claude_code_body, post_message, send_turn

WAIT_MS = 30_000  # a bound on waits for the page, never a duration asserted


def rows(page: Page) -> list[str]:
    return page.locator("#requests tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)")


def cells(page: Page, column: int) -> list[str]:
    return page.locator(f"#requests tbody tr td:nth-child({column})").all_inner_texts()


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def ids(sent: list[Sent]) -> set[str]:
    return {s.request_id for s in sent if s.request_id}


def session_page(env: DashboardEnv, session: str, **params: str) -> str:
    return "/dashboard/requests?" + urlencode({"session": session, **params})


def test_the_list_with_data_and_each_filter(
    dashboard_env: DashboardEnv, new_page: PageFactory, screenshot: Callable[..., Path]
) -> None:
    session = str(uuid.uuid4())
    sent = dashboard_env.send_traffic(
        7, session=session, overloaded=1, json=1, midstream_error=1, invalid=1
    )
    page = new_page()
    page.goto("/dashboard/requests")
    expect(page.locator("#requests tbody tr").first).to_be_visible()
    assert ids(sent) <= set(rows(page))
    assert page.locator("#empty-state").count() == 0
    screenshot(page, "requests-list")

    page.goto(session_page(dashboard_env, session))
    assert set(rows(page)) == ids(sent)

    # Menus apply at once and land in the URL.
    model = sent[0].model
    page.select_option("select[name=model]", model)
    page.wait_for_url(re.compile(r"model="))
    assert set(cells(page, 2)) == {model} or all(c.startswith(model) for c in cells(page, 2))
    assert set(rows(page)) == {s.request_id for s in sent if s.model == model}

    page.goto(session_page(dashboard_env, session))
    page.select_option("select[name=status]", "5xx")
    page.wait_for_url(re.compile(r"status=5xx"))
    assert set(rows(page)) == {s.request_id for s in sent if s.status >= 500}
    assert all(text.startswith("5") for text in cells(page, 3))

    page.select_option("select[name=status]", "4xx")
    page.wait_for_url(re.compile(r"status=4xx"))
    assert set(rows(page)) == {s.request_id for s in sent if 400 <= s.status < 500}

    page.goto(session_page(dashboard_env, session))
    page.select_option("select[name=outcome]", "upstream_error")
    page.wait_for_url(re.compile(r"outcome=upstream_error"))
    failed = {s.request_id for s in sent if s.status >= 400 or s.kind == "midstream_error"}
    assert set(rows(page)) == failed

    page.goto(session_page(dashboard_env, session))
    page.select_option("select[name=stream]", "no")
    page.wait_for_url(re.compile(r"stream=no"))
    plain = {
        s.request_id for s in sent if s.kind in ("json", "rate_limited", "overloaded", "invalid")
    }
    assert set(rows(page)) == plain
    assert page.locator("#requests .tag").count() == 0

    page.goto(session_page(dashboard_env, session))
    page.select_option("select[name=org]", "org-fake-0001")
    page.wait_for_url(re.compile(r"org=org-fake-0001"))
    assert set(rows(page)) == ids(sent)  # the fake upstream names its organization on every answer
    page.goto(session_page(dashboard_env, session, org="org-elsewhere"))
    assert rows(page) == []

    page.goto(session_page(dashboard_env, session))
    page.select_option("select[name=range]", "1h")
    page.wait_for_url(re.compile(r"range=1h"))
    assert set(rows(page)) == ids(sent)
    assert "tz" not in query(page) and "from" not in query(page)  # empty fields left out

    # The session filter from a row's session link.
    page.goto("/dashboard/requests")
    page.locator(f'#requests tr[data-id="{sent[0].request_id}"] td.session a').click()
    page.wait_for_url(re.compile(r"session="))
    assert query(page)["session"] == [session]
    assert set(rows(page)) == ids(sent)


def test_search_by_words_id_session_and_model(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    word = f"quokka{uuid.uuid4().hex[:10]}"
    session = str(uuid.uuid4())
    # Claude Code turns (with tools): one-message side calls keep no search words.
    turns = [
        send_turn(dashboard_env, session, f"Please tidy the {word} module #{i}") for i in range(3)
    ]
    sent = [
        Sent("stream", "claude-sonnet-4-5-20250929", 200, request_id, session)
        for request_id in turns
    ]
    page = new_page()
    page.goto("/dashboard/requests")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "q"
    page.keyboard.type(f"{word.upper()} tidy")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q="))
    assert set(rows(page)) == ids(sent)
    expect(page.locator("#matched-as")).to_have_text("words")

    target = sent[1].request_id
    assert target is not None
    page.fill("input[name=q]", target[:10])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"q={target[:10]}"))
    assert rows(page) == [target]
    expect(page.locator("#matched-as")).to_have_text("request id prefix")

    page.fill("input[name=q]", session[:13])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=.*-"))
    assert set(rows(page)) == ids(sent)
    expect(page.locator("#matched-as")).to_have_text("session id prefix")

    page.goto(session_page(dashboard_env, session, q=sent[2].model))
    expect(page.locator("#matched-as")).to_have_text("model")
    assert set(rows(page)) == ids(sent)
    page.goto(session_page(dashboard_env, session, q="claude-haiku-4-5"))
    assert rows(page) == []

    page.fill("input[name=q]", f"{word} nosuchwordanywhere")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"nosuchwordanywhere"))
    assert rows(page) == []
    expect(page.locator("#empty-state")).to_contain_text("No requests match")


def test_pages_deep_links_and_back(dashboard_env: DashboardEnv, new_page: PageFactory) -> None:
    session = str(uuid.uuid4())
    sent = dashboard_env.send_traffic(0, session=session, rate_limited=31)
    expected = ids(sent)
    page = new_page()
    first_url = session_page(dashboard_env, session, limit="25")
    page.goto(first_url)
    first = rows(page)
    assert len(first) == 25
    assert page.locator("#page-newer").count() == 0
    page.click("#page-older")
    page.wait_for_url(re.compile(r"before="))
    older_url = page.url
    second = rows(page)
    assert len(second) == 6 and not set(first) & set(second)
    assert set(first) | set(second) == expected
    assert page.locator("#page-older").count() == 0

    # A deep link shows the same page in a fresh browser.
    other = new_page()
    other.goto(older_url)
    assert rows(other) == second

    # Newer goes back to the first page (the newest page is shown whole).
    page.click("#page-newer")
    page.wait_for_load_state()
    assert rows(page) == first
    page.go_back()
    page.wait_for_url(older_url)
    assert rows(page) == second
    page.go_back()
    assert rows(page) == first


def test_keyboard_navigation(dashboard_env: DashboardEnv, new_page: PageFactory) -> None:
    session = str(uuid.uuid4())
    dashboard_env.send_traffic(3, session=session)
    page = new_page()
    page.goto(session_page(dashboard_env, session))
    listed = rows(page)
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    selected = page.locator("#requests tbody tr.kn-selected")
    expect(selected).to_have_count(1)
    assert selected.get_attribute("data-id") == listed[0]
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/dashboard/requests/{listed[1]}$"))
    expect(page.locator("#request-id")).to_have_text(listed[1])
    page.go_back()
    assert rows(page) == listed


def test_the_live_tail_shows_a_request_sent_after_the_page_opened(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    session = str(uuid.uuid4())
    page = new_page()
    page.goto(f"/dashboard/requests?{urlencode({'session': session})}")
    expect(page.locator("#empty-state")).to_be_visible()
    toggle = page.locator("#tail-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#tail-status")).to_have_text("live", timeout=WAIT_MS)
    assert query(page)["tail"] == ["1"]  # a reload or a shared link keeps it on

    sent = dashboard_env.send_traffic(0, session=session, stream=1, rate_limited=1)
    for item in sent:
        expect(page.locator(f'#requests tr[data-id="{item.request_id}"]')).to_be_visible(
            timeout=WAIT_MS
        )
    assert set(rows(page)) == ids(sent)  # only this session: the tail follows the filter
    expect(page.locator("#empty-state")).to_be_hidden()
    pushed = page.locator(f'#requests tr[data-id="{sent[0].request_id}"]')
    expect(pushed.locator("time")).to_have_attribute("title", re.compile(r"UTC$"))
    expect(pushed.locator("td.time a")).to_have_attribute(
        "href", f"/dashboard/requests/{sent[0].request_id}"
    )
    # A pushed row shows what the log holds as text: a hostile model name too.
    hostile = "<img src=x onerror=window.__pwned=1>"
    body = claude_code_body(session, [{"role": "user", "content": "hi"}], model=hostile)
    hostile_id = post_message(
        dashboard_env, body, {"x-claude-code-session-id": session, "x-fake": "json:text_basic"}
    )
    row = page.locator(f'#requests tr[data-id="{hostile_id}"]')
    expect(row.locator("td.model")).to_contain_text(hostile, timeout=WAIT_MS)
    assert page.locator("#requests img, #requests [onerror]").count() == 0
    assert page.evaluate("window.__pwned") is None
    sent.append(Sent("json", hostile, 200, hostile_id, session))
    # Another request of another session is not pushed here.
    dashboard_env.send_traffic(0, stream=1)
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert set(rows(page)) == ids(sent)
    assert "tail" not in query(page)


def test_the_tail_is_off_where_it_cannot_add_rows(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    page = new_page()
    page.goto("/dashboard/requests?q=anything+else")
    expect(page.locator("#tail-toggle")).to_be_disabled()
    page.goto("/dashboard/requests?before=1764000000000")
    expect(page.locator("#tail-toggle")).to_be_disabled()
