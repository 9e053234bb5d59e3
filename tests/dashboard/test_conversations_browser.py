"""The Conversations list in a real browser, fed by recorded-style Claude Code
sessions replayed through the proxy (tests/dashboard/conversation_sessions.py).

Each replay has projects of its own (a tag per run), so a project's rows are
exactly what this run sent; numbers are checked against the conversation API.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import Page, expect

from dashboard.formatting import compact, usd
from tests.dashboard.conftest import DashboardEnv, PageFactory
from tests.dashboard.conversation_sessions import Replayed, replay, replay_hostile
from tests.fixtures.conversations.claude_code import FABLE, OPUS
from tests.fixtures.conversations.claude_code_21 import PROMPT

LIST = "/dashboard/conversations"


@pytest.fixture(scope="module")
def sessions(dashboard_env: DashboardEnv) -> dict[str, Replayed]:
    return {
        "main": replay(dashboard_env, "main_session"),
        "cc21": replay(dashboard_env, "claude_code_21"),
    }


def _row(page: Page, replayed: Replayed):
    return page.locator(f'#conversations tbody tr[data-id="{replayed.conversation_id}"]')


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_the_list_shows_each_conversation(
    sessions: dict[str, Replayed],
    dashboard_env: DashboardEnv,
    new_page: PageFactory,
    screenshot: Callable[..., Path],
) -> None:
    page = new_page()
    page.goto(LIST)
    for replayed in sessions.values():
        api = dashboard_env.get_json(f"/api/conversations/{replayed.conversation_id}")
        cells = _row(page, replayed).locator("td")
        expect(cells.nth(1)).to_have_text(replayed.project.rsplit("/", 1)[1])  # type: ignore[union-attr]
        expect(cells.nth(2)).to_contain_text(api["firstMessage"])
        expect(cells.nth(3)).to_contain_text(str(api["requestCount"]))
        expect(cells.nth(4)).to_have_text(compact(api["totalTokens"]))
        expect(cells.nth(5)).to_have_text(usd(api["cost"]))  # subagents included
        # count_tokens calls are not part of a conversation.
        messages = [e for e in replayed.entries if "count_tokens" not in e["path"]]
        assert api["requestCount"] == len(messages)
    cc21 = _row(page, sessions["cc21"])
    expect(cc21.locator("td").nth(2)).to_contain_text(PROMPT)
    expect(cc21.locator("td").nth(3)).to_contain_text("3 by subagents")
    models = cc21.locator(".model-chip").all_inner_texts()
    assert sorted(models) == sorted({OPUS, FABLE})
    # Newest activity first: the session replayed last is above the first.
    ids = page.locator("#conversations tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )
    assert ids.index(sessions["cc21"].conversation_id) < ids.index(sessions["main"].conversation_id)
    screenshot(page, "conversations-light")
    # A row opens its thread.
    cc21.locator(".prompt-link").click()
    expect(page).to_have_url(
        re.compile(rf"/dashboard/conversations/{sessions['cc21'].conversation_id}$")
    )
    expect(page.locator("#thread-title")).to_have_text(PROMPT)


def test_search_finds_the_conversation_and_says_where(
    sessions: dict[str, Replayed], new_page: PageFactory
) -> None:
    page = new_page()
    page.goto(LIST)
    page.keyboard.press("/")
    box = page.locator("input[data-search]")
    expect(box).to_be_focused()
    box.fill("RateLimiter per_minute")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=RateLimiter\+per_minute$"))
    cc21 = _row(page, sessions["cc21"])
    expect(cc21).to_have_count(1)
    expect(cc21.locator(".snippet")).to_contain_text("RateLimiter")
    expect(cc21.locator(".matches")).to_contain_text("matching request")
    expect(_row(page, sessions["main"])).to_have_count(0)
    # A word no request holds: the empty state says so.
    page.goto(f"{LIST}?q=zyxwvutsnothing")
    expect(page.locator("#empty-state")).to_contain_text("No conversation matches")


def test_project_filter_deep_link_and_back(
    sessions: dict[str, Replayed], new_page: PageFactory
) -> None:
    page = new_page()
    page.goto(LIST)
    main = sessions["main"]
    page.locator('select[name="project"]').select_option(main.project)
    expect(page).to_have_url(re.compile(r"\?project="))
    assert _query(page) == {"project": [main.project]}  # empty fields stay out of the URL
    expect(page.locator("#conversations tbody tr")).to_have_count(1)
    expect(_row(page, main)).to_have_count(1)
    expect(page.locator("#list-summary")).to_have_text(f"In {main.project}, newest activity first")
    # The project link in a row is the same filter, shareable as is.
    link = _row(page, main).locator("td.project a").get_attribute("href")
    assert link == f"{LIST}?project={quote(main.project, safe='')}"
    page.go_back()
    expect(page).to_have_url(re.compile(rf"{LIST}$"))
    expect(_row(page, sessions["cc21"])).to_have_count(1)
    page.go_forward()
    expect(page.locator("#conversations tbody tr")).to_have_count(1)
    # Search within a project: the other project's match is left out.
    page.goto(f"{LIST}?project={quote(main.project, safe='')}&q=RateLimiter")
    expect(page.locator("#empty-state")).to_be_visible()


def test_pages_are_bounded_and_linked(sessions: dict[str, Replayed], new_page: PageFactory) -> None:
    page = new_page(allow=["HTTP 400", "400 (Bad Request)"])
    page.goto(f"{LIST}?limit=1")
    rows = page.locator("#conversations tbody tr")
    expect(rows).to_have_count(1)
    first = rows.get_attribute("data-id")
    page.locator("#page-next").click()
    # The next page starts after the last row of this one: its place is in the URL.
    expect(page).to_have_url(re.compile(r"\?limit=1&before=\d+_[^&]+$"))
    second = rows.get_attribute("data-id")
    assert second != first
    expect(page.locator("#page-newest")).to_be_visible()
    page.go_back()
    expect(rows).to_have_attribute("data-id", first or "")
    # Beyond the upper limit: refused with the reason, not a bigger read.
    response = page.goto(f"{LIST}?limit=1000")
    assert response is not None and response.status == 400
    expect(page.locator("#problem")).to_have_text("limit: a whole number from 1 to 100")


def test_keyboard_opens_the_selected_conversation(
    sessions: dict[str, Replayed], new_page: PageFactory
) -> None:
    page = new_page()
    page.goto(LIST)
    rows = page.locator("#conversations tbody tr")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bkn-selected\b"))
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bkn-selected\b"))
    chosen = rows.nth(1).get_attribute("data-id")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/dashboard/conversations/{chosen}$"))


def test_payloads_in_the_list_stay_text(dashboard_env: DashboardEnv, new_page: PageFactory) -> None:
    hostile = replay_hostile(dashboard_env)
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{LIST}?q=xssprompt")
    row = _row(page, hostile)
    expect(row.locator(".prompt-link")).to_contain_text("xssprompt <script>window.__xss=")
    expect(row.locator(".snippet")).to_contain_text("<img src=x onerror=")
    assert page.locator("#conversations script, #conversations img").count() == 0
    row.locator(".prompt-link").hover()
    assert page.evaluate("() => window.__xss === undefined") and dialogs == []
