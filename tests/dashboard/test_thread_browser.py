"""The thread view in a real browser, fed by recorded-style Claude Code sessions
replayed through the proxy (tests/dashboard/conversation_sessions.py).

What the page shows is checked against the fixture sessions themselves (their
prompts, tool calls and results, the models of the fallback) and against the
conversation API for the totals, never against the view code's own output.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from dashboard.formatting import usd
from dashboard.thread_window import WINDOW_MAIN
from tests.dashboard.conftest import DashboardEnv, PageFactory
from tests.dashboard.conversation_sessions import (
    Replayed,
    long_session,
    replay,
    replay_hostile,
    send_exchanges,
)
from tests.fixtures.conversations.claude_code import FABLE, OPUS
from tests.fixtures.conversations.claude_code_21 import AGENT, NESTED, NESTED_PROMPT, SYSTEM_NOTE

DASH = "\u2013"


@pytest.fixture(scope="module")
def cc21(dashboard_env: DashboardEnv) -> Replayed:
    return replay(dashboard_env, "claude_code_21")


@pytest.fixture(scope="module")
def main(dashboard_env: DashboardEnv) -> Replayed:
    return replay(dashboard_env, "main_session")


def _open(page: Page, conversation_id: str, query: str = "") -> None:
    page.goto(f"/dashboard/conversations/{quote(conversation_id, safe='')}{query}")


def _request_links(page: Page) -> set[str]:
    hrefs = page.locator("a.req").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return set(hrefs)


def test_a_claude_code_21_thread(
    cc21: Replayed,
    dashboard_env: DashboardEnv,
    new_page: PageFactory,
    screenshot: Callable[..., Path],
) -> None:
    page = new_page()
    _open(page, cc21.conversation_id)
    api = dashboard_env.get_json(f"/api/conversations/{cc21.conversation_id}")

    # The totals are the conversation's, subagents included.
    expect(page.locator("#card-requests .value")).to_have_text(str(api["requestCount"]))
    expect(page.locator("#card-cost .value")).to_have_text(usd(api["cost"]))
    assert api["requestCount"] == len(cc21.entries)
    expect(page.locator("#card-models")).to_contain_text(FABLE)
    expect(page.locator("#card-models")).to_contain_text(OPUS)

    # Omitted thinking is shown hidden, with its count (usage.output_tokens_details).
    hidden = page.locator(".hidden-thinking")
    thinking = [
        e["reply"]["usage"]["output_tokens_details"]["thinking_tokens"]
        for e in cc21.entries
        if "output_tokens_details" in e["reply"]["usage"]
        and not any(("x-claude-code-agent-id" == h[0]) for h in e["headers"])
    ]
    assert hidden.count() == len(thinking) == 3
    for n, count in enumerate(thinking):
        expect(hidden.nth(n)).to_contain_text(f"{count} thinking tokens")

    # The mid-conversation system message is a system turn.
    expect(page.locator("article.turn-system")).to_contain_text(SYSTEM_NOTE)

    # The subagent hangs under the Task call that started it; its own subagent
    # under its Task call, inside it.
    task = page.locator('#thread > article > .turn-body > .tool[data-tool="Task"]')
    expect(task).to_have_count(1)
    outer = task.locator(f'details.subagent[data-agent="{AGENT}"]')
    expect(outer).to_have_count(1)
    inner = outer.locator(f'.tool[data-tool="Task"] details.subagent[data-agent="{NESTED}"]')
    expect(inner).to_have_count(1)
    expect(outer.locator("> summary")).to_contain_text("3 requests")  # its own 2 + nested 1
    assert outer.get_attribute("open") is None
    task.locator("> .spawned a[data-open-agent]").click()
    expect(outer).to_have_attribute("open", "")
    assert page.url.endswith(f"#agent-{AGENT}")
    inner.locator("> summary").click()
    expect(inner.locator("article.turn-user")).to_contain_text(NESTED_PROMPT)

    # The server-side fallback, where it happened and on the turn.
    expect(page.locator(".fallback-marker")).to_have_text(
        f"Model switched mid-reply: {FABLE} → {OPUS} (refusal: cyber)"
    )
    expect(page.locator(".fact.model", has_text=f"{FABLE} → {OPUS}")).to_have_count(1)

    # The compaction, marked before the turn that returned it.
    marker = page.locator("article.turn-compaction")
    expect(marker).to_have_count(1)
    expect(marker).to_contain_text("compacted by the API")
    assert marker.evaluate("m => m.nextElementSibling.textContent").count("Compaction summary")

    # An Edit as a diff: the added line as added, the kept one as kept.
    edit = page.locator('#thread > article > .turn-body > .tool[data-tool="Edit"]').first
    expect(edit.locator("tr.d-add .line")).to_have_text("@RateLimiter(10, key=user_id)")
    expect(edit.locator("tr.d-same .line")).to_have_text("@router.post('/upload')")
    expect(edit.locator(".result")).to_contain_text("has been updated")

    # Per-turn tokens, cost and latency; a link to each request's detail.
    first_reply = page.locator("#thread > article.turn-assistant").first
    first_usage = cc21.entries[0]["reply"]["usage"]
    tokens = sum(first_usage[k] for k in ("input_tokens", "output_tokens"))
    tokens += first_usage["cache_creation_input_tokens"] + first_usage["cache_read_input_tokens"]
    expect(first_reply.locator(".fact.tokens")).to_have_text(f"{tokens / 1000:.1f}k tokens")
    expect(first_reply.locator(".fact.cost")).to_have_text(re.compile(r"^\$\d"))
    expect(first_reply.locator(".fact.latency")).to_have_text(re.compile(r"^\d+(\.\d)? m?s$"))
    wanted = {f"/dashboard/requests/{rid}" for rid in cc21.request_ids}
    assert _request_links(page) <= wanted
    # Every request of the main thread is linked (subagents' inside their details).
    page.locator("[data-expand-all]").click()
    assert _request_links(page) == wanted

    expect(outer).not_to_have_class(re.compile(r"\bflash\b"))  # the jump's highlight is over
    screenshot(page, "thread-light")


def test_tool_calls_are_shown_with_their_results(
    main: Replayed, new_page: PageFactory, screenshot: Callable[..., Path]
) -> None:
    page = new_page()
    _open(page, main.conversation_id)
    read = page.locator('.tool[data-tool="Read"]').first
    expect(read.locator(".tool-title")).to_have_text(re.compile(r"/tests/test_invoice\.py$"))
    expect(read.locator(".result pre.code")).to_contain_text(
        "from billing.parse import parse_invoice"
    )
    # The failing Bash run: its command as code, its output marked as an error.
    failing = page.locator('.tool[data-tool="Bash"].is-error')
    expect(failing).to_have_count(1)
    expect(failing.locator("pre.command")).to_have_text("pytest tests/test_invoice.py -x -q")
    expect(failing.locator(".result .error-tag")).to_have_text("error")
    expect(failing.locator(".result")).to_contain_text("KeyError: 'currency'")
    # Results are not turns of their own: user turns are what the user said.
    users = page.locator("#thread > article.turn-user")
    sent_by_user = {
        m["content"] if isinstance(m["content"], str) else m["content"][-1].get("text")
        for e in main.entries
        for m in e["body"]["messages"]
        if m["role"] == "user"
        and (isinstance(m["content"], str) or m["content"][-1]["type"] == "text")
    }
    assert 0 < users.count() <= len(sent_by_user)
    # The 529 before a reply is a failed attempt, in place.
    failed = page.locator("article.turn-error")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("Failed attempt")
    expect(failed).to_contain_text("529")
    expect(failed).to_contain_text("overloaded_error")
    # Claude Code's own compaction (its summary prompt starts a new history).
    expect(page.locator("article.turn-compaction")).to_contain_text("compacted by Claude Code")
    # The Task call links to the subagent nested under it.
    task = page.locator('.tool[data-tool="Task"]')
    link = task.locator("a[data-open-agent]")
    expect(link).to_have_count(1)
    target = (link.get_attribute("href") or "").lstrip("#")
    expect(task.locator(f"details.subagent#{target}")).to_have_count(1)
    expect(task.locator(f"details.subagent#{target} .tool[data-tool='Grep']")).to_have_count(1)
    # The side calls (quota probe, title) are listed apart.
    expect(page.locator("#side-calls > summary")).to_contain_text("(2)")
    screenshot(page, "thread-tools-light")


def test_a_long_thread_loads_part_by_part(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    """A window of WINDOW_MAIN requests at a time: each request here adds a prompt
    and a reply, so a window is 2 x WINDOW_MAIN turns."""
    entries, session = long_session(2 * WINDOW_MAIN + 15)
    send_exchanges(dashboard_env, entries, f"long-{session}")
    per_window = 2 * WINDOW_MAIN
    page = new_page()
    _open(page, session)
    turns = page.locator("#thread > article")
    expect(turns).to_have_count(per_window)
    expect(page.locator("#thread-range")).to_have_text(
        f"Turns 1{DASH}{per_window} of {per_window}, more after them"
    )
    more = page.locator("#thread > .load-more a[data-more]")
    expect(more).to_have_text("Load the next requests of the conversation")
    next_part = more.get_attribute("href") or ""
    assert re.search(r"\?at=\d+_\d+_[0-9a-f]+$", next_part), next_part
    more.click()
    expect(turns).to_have_count(2 * per_window)
    more.click()
    expect(turns).to_have_count(2 * len(entries))
    expect(page.locator("#thread > .load-more")).to_have_count(0)
    anchors = turns.evaluate_all("items => items.map(t => t.id)")
    assert len(set(anchors)) == len(anchors) and anchors[0] == "turn-0"
    prompts = page.locator("#thread > article.turn-user .md").all_inner_texts()
    assert prompts == [f"long step #{n}" for n in range(1, len(entries) + 1)]
    replies = page.locator("#thread > article.turn-assistant .md").all_inner_texts()
    assert replies == [f"Answer to step {n}." for n in range(1, len(entries) + 1)]
    # The appended turns are localised like the first ones.
    assert turns.last.locator("time").first.get_attribute("data-localized") == "1"
    # Without the script, the link is a page of its own, starting where it said.
    page.goto(next_part)
    expect(turns).to_have_count(per_window)
    expect(turns.first.locator(".md")).to_have_text(f"long step #{WINDOW_MAIN + 1}")
    expect(page.locator("#thread-range")).to_contain_text(f"turns 1{DASH}{per_window}")
    page.locator("#thread-start").click()
    expect(turns.first).to_have_attribute("id", "turn-0")


def test_keyboard_moves_through_the_turns(main: Replayed, new_page: PageFactory) -> None:
    page = new_page()
    _open(page, main.conversation_id)
    page.keyboard.press("j")
    page.keyboard.press("j")
    selected = page.locator("#thread > .kn-selected")
    expect(selected).to_have_count(1)
    expect(selected).to_have_attribute("id", "turn-1")
    page.keyboard.press("k")
    expect(selected).to_have_attribute("id", "turn-0")


def test_a_subagent_on_its_own_page(cc21: Replayed, new_page: PageFactory) -> None:
    page = new_page()
    _open(page, cc21.conversation_id, f"?agent={AGENT}")
    expect(page.locator(".agent-head")).to_contain_text(AGENT)
    expect(page.locator("#thread > article").first).to_have_attribute("id", f"agent-{AGENT}-0")
    expect(page.locator(f'#thread details.subagent[data-agent="{NESTED}"]')).to_have_count(1)
    page.get_by_role("link", name="Back to the whole conversation").click()
    expect(page.locator("#thread > article.turn-system")).to_have_count(1)


def test_unknown_conversations_and_agents_are_404(cc21: Replayed, new_page: PageFactory) -> None:
    page = new_page(allow=["HTTP 404", "HTTP 400", "404 (Not Found)", "400 (Bad Request)"])
    response = page.goto("/dashboard/conversations/no-such-conversation")
    assert response is not None and response.status == 404
    expect(page.locator("#problem")).to_contain_text("No conversation with id no-such")
    response = page.goto(f"/dashboard/conversations/{cc21.conversation_id}?agent=nobody")
    assert response is not None and response.status == 404
    response = page.goto("/dashboard/conversations/bad%20id")
    assert response is not None and response.status == 400


def _xss_state(page: Page) -> Any:
    return page.evaluate("() => window.__xss === undefined ? null : window.__xss")


def test_payloads_in_a_conversation_stay_text(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    hostile = replay_hostile(dashboard_env)
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _open(page, hostile.conversation_id)
    thread = page.locator("#thread")
    # Each payload is on the page as the text it was.
    for marker in ("xssprompt", "xssreply", "xssinput", "xssresult"):
        expect(thread).to_contain_text(f"{marker} ")
    expect(page.locator("#thread-title")).to_contain_text("<script>window.__xss='script'</script>")
    expect(page.locator('.tool[data-tool="Bash"] pre.command')).to_contain_text(
        "<img src=x onerror=\"window.__xss='img'\">"
    )
    expect(page.locator('.tool[data-tool="Bash"] .tool-title')).to_have_text(
        "<img src=x onerror=\"window.__xss='title'\">"
    )
    expect(page.locator('.tool[data-tool="Bash"] .result')).to_contain_text("xssresult <script>")
    expect(thread).to_contain_text("[a link](javascript:window.__xss='reply')")
    # ... and nothing of it became an element or ran.
    assert thread.locator("script, img, iframe, object, embed").count() == 0
    hrefs = page.locator("a[href]").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert not [h for h in hrefs if h.strip().lower().startswith(("javascript", "data"))]
    assert page.locator("a[href^=http]").count() == 0  # no Markdown link became one
    page.locator("[data-expand-all]").click()
    for link in page.locator("#thread a:not([data-more])").all():
        link.hover()
    assert _xss_state(page) is None and dialogs == []
