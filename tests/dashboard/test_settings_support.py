"""Helpers shared by the Settings page's browser tests (test_settings_browser.py,
test_settings_editor.py); no tests here. The header rules are read and written
through the API with the password, as a script would (no Origin: allowed)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from control.header_rules import RuleError, parse_settings
from tests.dashboard.conftest import DashboardEnv, PageFactory

API = "/api/settings"
EMPTY: dict[str, list[Any]] = {"requestHeaderRules": [], "responseHeaderRules": []}


def put(
    env: DashboardEnv, document: object, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(
        env.url + API,
        data=json.dumps(document).encode(),
        method="PUT",
        headers={**env.auth, "content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def message(env: DashboardEnv, headers: dict[str, str]) -> Any:
    """A Messages call through the proxy; its response headers."""
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    }
    request = urllib.request.Request(
        env.url + "/v1/messages",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "x-api-key": "sk-ant-test",
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
            "x-fake": "json:text_basic",
            **headers,
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        return response.headers


def start_from(env: DashboardEnv, document: dict[str, Any]) -> None:
    status, body = put(env, document)
    assert status == 200, body


def open_settings(new_page: PageFactory, **options: Any) -> Page:
    page = new_page(**options)
    page.goto("/dashboard/settings")
    expect(page.locator("#save-status")).to_have_attribute("data-state", "clean")
    return page


def rules(page: Page, which: str) -> Locator:
    return page.locator(f"#{which}-rules li.rule")


def field(rule: Locator, name: str) -> Locator:
    return rule.locator(f'[data-field="{name}"]')


def add_rule(page: Page, which: str, header: str, action: str, **texts: str) -> Locator:
    page.locator(f"#{which}-rules [data-add]").click()
    rule = rules(page, which).last
    expect(field(rule, "header")).to_be_focused()  # a new rule is ready for typing
    field(rule, "header").fill(header)
    field(rule, "action").select_option(action)
    for name, text in texts.items():
        field(rule, name).fill(text)
    return rule


def headers_on_page(page: Page, which: str) -> list[str]:
    found = rules(page, which)
    return [field(found.nth(i), "header").input_value() for i in range(found.count())]


def save(page: Page) -> None:
    page.locator("#save-rules").click()
    expect(page.locator("#save-status")).to_have_attribute("data-state", "saved")


def rule_error(document: dict[str, Any]) -> RuleError:
    """The error the API answers for `document`, from the code the proxy runs."""
    with pytest.raises(RuleError) as caught:
        parse_settings(document)
    return caught.value
