"""A request's detail page in a real browser, fed by real traffic: headers with
credentials only as fingerprints (the key nowhere in the page), bodies, the
folded message, usage and cost, rate limits, copy as curl, the downloads, the
conversation link; and hostile content from a prompt, a tool input, a tool
result and a request header shown as text, never run."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.dashboard.conftest import API_KEY, DashboardEnv, PageFactory

WAIT_S = 30.0  # a bound on waiting for the recorder, never a duration asserted
XSS = (
    "<script>window.__pwned = 1; alert('script')</script>",
    "<img src=x onerror=\"window.__pwned = 1; alert('img')\">",
    "[click me](javascript:alert('link'))",
    '<a href="javascript:alert(1)">link</a>',
)


def post_message(
    env: DashboardEnv, body: dict[str, Any], headers: dict[str, str] | None = None
) -> str:
    """One Messages request through the proxy; its id in the log."""
    request = urllib.request.Request(
        f"{env.url}/v1/messages?beta=true",
        data=json.dumps(body).encode(),
        headers={
            "content-type": "application/json",
            "x-api-key": API_KEY,
            "anthropic-version": "2023-06-01",
            **(headers or {}),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WAIT_S) as response:
            response.read()
            request_id = response.headers["x-proxy-request-id"]
    except urllib.error.HTTPError as err:  # 4xx/5xx answers are logged too
        err.read()
        request_id = err.headers["x-proxy-request-id"]
    assert request_id
    return str(request_id)


def wait_stored(env: DashboardEnv, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            return env.get_json(f"/api/requests/{request_id}")["request"]
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise
        time.sleep(0.1)
    raise AssertionError(f"{request_id} was not recorded within {WAIT_S}s")


def claude_code_body(session: str, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 256,
        "stream": True,
        "system": "You are Claude Code.\nWorking directory: /work/dashboard-demo",
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "metadata": {"user_id": json.dumps({"session_id": session})},
        "messages": messages,
        **extra,
    }


def send_turn(env: DashboardEnv, session: str, prompt: str, **headers: str) -> str:
    """A Claude Code turn (tools, a session): the kind of request the
    conversation fields and the search words are kept for."""
    body = claude_code_body(session, [{"role": "user", "content": prompt}])
    request_id = post_message(
        env,
        body,
        {"x-claude-code-session-id": session, "x-fake": "sse:text_basic", **headers},
    )
    wait_stored(env, request_id)
    return request_id


def page_text(page: Page) -> str:
    return page.content()


def test_a_request_in_detail(
    dashboard_env: DashboardEnv, new_page: PageFactory, screenshot: Callable[..., Path]
) -> None:
    session = str(uuid.uuid4())
    request_id = send_turn(dashboard_env, session, "Summarise the repository layout")
    page = new_page()
    page.goto(f"/dashboard/requests/{request_id}")
    expect(page.locator("#request-id")).to_have_text(request_id)
    html = page_text(page)
    assert API_KEY not in html
    fingerprint = page.locator("#request-headers tr", has_text="x-api-key").locator("td").nth(1)
    expect(fingerprint).to_have_text(re.compile(r"^sha256:[0-9a-f]{16}$"))
    expect(page.locator("#key-fingerprint")).to_have_text(fingerprint.inner_text())

    expect(page.locator("#request-body")).to_contain_text("Summarise the repository layout")
    response = page.locator("#response-body")
    expect(response).to_contain_text("the message the stream folded into")
    expect(response).to_contain_text('"type": "text"')
    expect(page.locator("#usage tbody tr", has_text="input")).to_contain_text("$")
    expect(page.locator("#cost-total")).to_have_text(re.compile(r"^\$\d"))
    expect(page.locator("#rate-limits")).to_contain_text("5h utilization")
    expect(page.locator("#rate-limits")).to_contain_text("42 %")
    expect(page.locator("#timings")).to_contain_text("time to first byte")
    expect(page.locator("#conversation-link")).to_have_attribute(
        "href", f"/dashboard/conversations/{session}"
    )
    expect(page.locator("#session-link")).to_have_text(session)
    screenshot(page, "request-detail")

    # Copy as curl: the text on the page and on the clipboard carry no key.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy-curl")
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#curl-text").text_content()
    assert '"x-api-key: $ANTHROPIC_API_KEY"' in copied and API_KEY not in copied
    assert "sha256:" not in copied
    assert f"{dashboard_env.url}/v1/messages?beta=true" in copied
    assert "Summarise the repository layout" in copied

    # Download as JSON: the stored record, bodies as text, no key.
    with page.expect_download() as info:
        page.click("#download-json")
    saved = Path(info.value.path()).read_text()
    assert API_KEY not in saved
    record = json.loads(saved)
    assert record["requestId"] == request_id
    assert json.loads(record["request"]["body"])["messages"][0]["content"].startswith("Summarise")

    # The request body as it was sent.
    body = page.request.get(f"/dashboard/requests/{request_id}/body/request")
    assert body.ok and json.loads(body.body())["metadata"]["user_id"]
    assert body.headers["content-disposition"].startswith("attachment;")


def test_a_short_id_and_unknown_ids(dashboard_env: DashboardEnv, new_page: PageFactory) -> None:
    request_id = send_turn(dashboard_env, str(uuid.uuid4()), "short ids")
    page = new_page(allow=("HTTP 404", "HTTP 400", "status of 404", "status of 400"))
    page.goto(f"/dashboard/requests/{request_id[:12]}")
    expect(page.locator("#request-id")).to_have_text(request_id)
    answer = page.goto("/dashboard/requests/" + "0" * 32)
    assert answer is not None and answer.status == 404
    expect(page.locator("#problem")).to_contain_text("No request with id")
    answer = page.goto("/dashboard/requests/NOT-AN-ID")
    assert answer is not None and answer.status == 400


def test_hostile_content_is_shown_as_text(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    """The payloads in a prompt, a tool input, a tool result and a request header:
    visible as text, no dialog, no element made from them, nothing run."""
    session = str(uuid.uuid4())
    prompt, tool_input, tool_result, header = XSS[0] + XSS[2], XSS[1], XSS[3] + XSS[0], XSS[1]
    messages = [
        {"role": "user", "content": prompt},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"cmd": tool_input}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": tool_result}],
        },
    ]
    request_id = post_message(
        dashboard_env,
        claude_code_body(session, messages),
        {"x-claude-code-session-id": session, "x-fake": "sse:text_basic", "x-note": header},
    )
    wait_stored(dashboard_env, request_id)
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    for url in (
        f"/dashboard/requests?session={session}",
        f"/dashboard/requests/{request_id}",
    ):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img[src=x], [onerror]").count() == 0
        assert page.locator("a[href^='javascript:' i]").count() == 0
        own_scripts = page.locator("script").evaluate_all(
            "ss => ss.every(s => s.src.includes('/dashboard/static/') && !s.textContent)"
        )
        assert own_scripts
    body = page.locator("#request-body")
    for payload in ("<script>window.__pwned = 1;", "onerror=", "javascript:alert('link')"):
        expect(body).to_contain_text(payload)
    headers = page.locator("#request-headers tr", has_text="x-note")
    expect(headers).to_contain_text("<img src=x onerror=")
    assert dialogs == []
