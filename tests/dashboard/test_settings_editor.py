"""The Settings page's header rules editor in a real browser, on the proxy the
dashboard tests share: add, edit, reorder (buttons and keys), disable, delete,
save and reload, checked through `GET /api/settings` and through traffic; the
API's validation messages next to what they name. Validation messages are read
from control/header_rules.py at run time (the code the proxy runs), never copied.

The proxy is shared: every test starts from rules of its own and puts back what
it found.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import DashboardEnv, PageFactory
from tests.dashboard.test_settings_support import (
    API,
    EMPTY,
    add_rule,
    field,
    headers_on_page,
    message,
    open_settings,
    put,
    rule_error,
    rules,
    save,
    start_from,
)

TAG = uuid.uuid4().hex[:8]
# A page of the proxy's origin (served by the test) to import the modules into.
STUB = "<!doctype html><title>stub</title><link rel=icon href='data:,'>"


@pytest.fixture(autouse=True)
def restore_rules(dashboard_env: DashboardEnv) -> Iterator[None]:
    found = dashboard_env.get_json(API)
    yield
    status, body = put(dashboard_env, found)
    assert status == 200, body


def test_header_rule_round_trip(dashboard_env: DashboardEnv, new_page: PageFactory) -> None:
    start_from(dashboard_env, EMPTY)
    page = open_settings(new_page)
    expect(page.locator("#request-rules [data-empty]")).to_be_visible()
    writes: list[dict[str, str]] = []
    page.on("request", lambda r: writes.append(r.all_headers()) if r.method == "PUT" else None)

    # Add: marked unsaved until saved.
    add_rule(page, "request", "x-dash-a", "set", value="one")
    add_rule(page, "request", "x-dash-b", "replace", find="old", value="new")
    add_rule(page, "response", "x-dash-resp", "set", value=f"on-{TAG}")
    expect(page.locator("#save-status")).to_have_text("Unsaved changes")
    expect(rules(page, "request").nth(0)).to_have_attribute("data-change", "new")
    expect(rules(page, "request").nth(0).locator("[data-state]")).to_have_text("unsaved: new")
    assert dashboard_env.get_json(API) == EMPTY  # nothing saved yet
    save(page)
    assert writes and writes[-1].get("sec-fetch-site") == "same-origin"
    expected = {
        "requestHeaderRules": [
            {"header": "x-dash-a", "action": "set", "value": "one", "enabled": True},
            {
                "header": "x-dash-b",
                "action": "replace",
                "value": "new",
                "find": "old",
                "enabled": True,
            },
        ],
        "responseHeaderRules": [
            {"header": "x-dash-resp", "action": "set", "value": f"on-{TAG}", "enabled": True}
        ],
    }
    assert dashboard_env.get_json(API) == expected
    expect(rules(page, "request").nth(0)).to_have_attribute("data-change", "")

    # A reload shows what was saved, and the rules are in force.
    page.reload()
    expect(page.locator("#save-status")).to_have_attribute("data-state", "clean")
    assert headers_on_page(page, "request") == ["x-dash-a", "x-dash-b"]
    expect(field(rules(page, "request").nth(1), "find")).to_have_value("old")
    expect(field(rules(page, "response").nth(0), "value")).to_have_value(f"on-{TAG}")
    marker = f"rules-{TAG}"
    answer = message(dashboard_env, {"x-dash-b": "old-value", "x-marker": marker})
    assert answer.get("x-dash-resp") == f"on-{TAG}"
    received = next(r for r in dashboard_env.upstream.received if ("x-marker", marker) in r.headers)
    assert ("x-dash-a", "one") in received.headers
    assert ("x-dash-b", "new-value") in received.headers

    # Reorder with the button, then back with the keyboard.
    rules(page, "request").nth(0).locator('[data-move="1"]').click()
    assert headers_on_page(page, "request") == ["x-dash-b", "x-dash-a"]
    expect(rules(page, "request").nth(1)).to_have_attribute("data-change", "moved")
    # The focus follows the rule (to its other button, now that it is last).
    expect(rules(page, "request").nth(1).locator('[data-move="-1"]')).to_be_focused()
    save(page)
    assert [r["header"] for r in dashboard_env.get_json(API)["requestHeaderRules"]] == [
        "x-dash-b",
        "x-dash-a",
    ]
    header_a = field(rules(page, "request").nth(1), "header")
    header_a.focus()
    page.keyboard.press("Alt+ArrowUp")
    assert headers_on_page(page, "request") == ["x-dash-a", "x-dash-b"]
    expect(field(rules(page, "request").nth(0), "header")).to_be_focused()
    page.keyboard.press("Control+s")
    expect(page.locator("#save-status")).to_have_attribute("data-state", "saved")
    assert dashboard_env.get_json(API)["requestHeaderRules"] == expected["requestHeaderRules"]
    # Stored as sent: the rows stayed, and so did the focus.
    expect(field(rules(page, "request").nth(0), "header")).to_be_focused()

    # Disable.
    field(rules(page, "request").nth(1), "enabled").uncheck()
    expect(rules(page, "request").nth(1)).to_have_class(re.compile(r"\bis-disabled\b"))
    save(page)
    assert dashboard_env.get_json(API)["requestHeaderRules"][1]["enabled"] is False
    page.reload()
    expect(page.locator("#save-status")).to_have_attribute("data-state", "clean")
    expect(field(rules(page, "request").nth(1), "enabled")).not_to_be_checked()

    # Discard undoes an edit without saving.
    field(rules(page, "request").nth(0), "value").fill("changed")
    expect(rules(page, "request").nth(0)).to_have_attribute("data-change", "edited")
    page.locator("#discard-rules").click()
    expect(field(rules(page, "request").nth(0), "value")).to_have_value("one")
    expect(page.locator("#save-rules")).to_be_disabled()

    # Delete.
    rules(page, "request").nth(0).locator("[data-delete]").click()
    expect(page.locator("#request-rules [data-deleted]")).to_have_text(
        "1 deleted rule is removed when you save."
    )
    expect(rules(page, "request").nth(0).locator("[data-delete]")).to_be_focused()
    save(page)
    stored = dashboard_env.get_json(API)
    assert [r["header"] for r in stored["requestHeaderRules"]] == ["x-dash-b"]
    assert stored["responseHeaderRules"] == expected["responseHeaderRules"]
    expect(page.locator("#request-rules [data-deleted]")).to_be_hidden()


def test_a_validation_error_is_shown_next_to_its_field_and_nothing_is_saved(
    dashboard_env: DashboardEnv, new_page: PageFactory, screenshot: Callable[..., Path]
) -> None:
    start = {
        "requestHeaderRules": [
            {"header": "x-keep", "action": "set", "value": "1", "enabled": True}
        ],
        "responseHeaderRules": [],
    }
    start_from(dashboard_env, start)
    page = open_settings(new_page, allow=["400"])

    # A header name the API refuses, on the second request rule.
    rule = add_rule(page, "request", "bad header", "set", value="v")
    sent = {
        **start,
        "requestHeaderRules": [
            *start["requestHeaderRules"],
            {"header": "bad header", "action": "set", "value": "v", "enabled": True},
        ],
    }
    error = rule_error(sent)
    assert (error.index, error.field) == (1, "header")
    prefix = f"requestHeaderRules[{error.index}].{error.field}: "
    assert str(error).startswith(prefix)
    page.locator("#save-rules").click()
    shown = rule.locator('[data-for="header"] [data-error]')
    expect(shown).to_have_text(str(error).removeprefix(prefix))
    expect(shown).to_be_visible()
    expect(field(rule, "header")).to_have_attribute("aria-invalid", "true")
    expect(field(rule, "header")).to_be_focused()
    expect(rule.locator('[data-for="value"] [data-error]')).to_be_hidden()
    expect(page.locator("#save-status")).to_have_attribute("data-state", "error")
    assert dashboard_env.get_json(API) == start  # nothing saved
    screenshot(page, "settings-error", full_page=False)

    # Editing the field clears its message; a replace without `find` is refused next to `find`.
    field(rule, "header").fill("x-good")
    expect(shown).to_be_hidden()
    field(rule, "action").select_option("replace")
    field(rule, "find").fill("")
    error = rule_error(
        {
            **start,
            "requestHeaderRules": [
                *start["requestHeaderRules"],
                {
                    "header": "x-good",
                    "action": "replace",
                    "find": "",
                    "value": "v",
                    "enabled": True,
                },
            ],
        }
    )
    assert (error.index, error.field) == (1, "find")
    page.locator("#save-rules").click()
    expect(rule.locator('[data-for="find"] [data-error]')).to_have_text(
        str(error).removeprefix("requestHeaderRules[1].find: ")
    )
    assert dashboard_env.get_json(API) == start

    # Leaving with unsaved edits asks first.
    with page.expect_event("dialog") as asked:
        page.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.dismiss()  # stay

    # Fixed, it saves; then leaving asks nothing.
    field(rule, "find").fill("a")
    save(page)
    assert dashboard_env.get_json(API)["requestHeaderRules"][1]["find"] == "a"
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.type))
    with page.expect_event("close"):
        page.close(run_before_unload=True)
    assert dialogs == []


def test_a_list_error_is_shown_on_its_list(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    start_from(dashboard_env, EMPTY)
    page = open_settings(new_page, allow=["400"])
    add = page.locator("#response-rules [data-add]")
    page.evaluate(
        "(button) => { for (let i = 0; i < 101; i++) button.click(); }", add.element_handle()
    )
    expect(rules(page, "response")).to_have_count(101)
    # Valid rules, only too many: typed in as input events, as a person would.
    page.evaluate(
        """() => document.querySelectorAll('#response-rules [data-field="header"]')
            .forEach((input, i) => {
                input.value = `x-r${i}`;
                input.dispatchEvent(new Event("input", { bubbles: true }));
            })"""
    )
    expect(field(rules(page, "response").nth(100), "header")).to_have_value("x-r100")
    error = rule_error(
        {
            "responseHeaderRules": [
                {"header": f"x-r{i}", "action": "set", "value": ""} for i in range(101)
            ]
        }
    )
    assert error.index is None
    page.locator("#save-rules").click()
    slot = page.locator("#response-rules [data-list-error]")
    expect(slot).to_have_text(str(error).removeprefix("responseHeaderRules: "))
    expect(page.locator("#request-rules [data-list-error]")).to_be_hidden()
    assert dashboard_env.get_json(API) == EMPTY


def test_the_error_locations_the_editor_reads(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    """Where the editor puts a message, for every shape the API words one in:
    `{error: "Invalid settings", details: "<where>: <reason>"}` and the whole
    "<where>: <reason>" as the error itself."""
    page = new_page()
    page.route(
        re.compile(r".*/dashboard/__settings_stub$"),
        lambda route: route.fulfill(status=200, content_type="text/html", body=STUB),
    )
    page.goto("/dashboard/__settings_stub")
    cases: list[tuple[dict[str, str], list[Any]]] = [
        (
            {"error": "Invalid settings", "details": "requestHeaderRules[3].find: is required"},
            ["requestHeaderRules", 3, "find", "is required"],
        ),
        (
            {"error": "responseHeaderRules[0]: must be an object", "details": ""},
            ["responseHeaderRules", 0, None, "must be an object"],
        ),
        (
            {"error": "Invalid settings", "details": "requestHeaderRules: must be a list"},
            ["requestHeaderRules", None, None, "must be a list"],
        ),
        (
            {"error": "Invalid settings", "details": "responseHeaderRules[2].value: a: b"},
            ["responseHeaderRules", 2, "value", "a: b"],
        ),
        (
            {"error": "Invalid settings", "details": "settings: body is not valid JSON"},
            [None, None, None, "Invalid settings: settings: body is not valid JSON"],
        ),
    ]
    found = page.evaluate(
        """async (errors) => {
            const { locateApiError } = await import("/dashboard/static/settings_rules.js");
            return errors.map(({ error, details }) => {
                const message = details ? `${error}: ${details}` : error;
                const w = locateApiError({ error, details, message });
                return [w.list, w.index, w.field, w.reason];
            });
        }""",
        [error for error, _ in cases],
    )
    assert found == [where for _, where in cases]


def test_the_rules_compare_whatever_the_order_of_their_keys(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    page = new_page()
    page.route(
        re.compile(r".*/dashboard/__settings_stub$"),
        lambda route: route.fulfill(status=200, content_type="text/html", body=STUB),
    )
    page.goto("/dashboard/__settings_stub")
    a = {"requestHeaderRules": [{"header": "x", "action": "set", "value": "1", "enabled": True}]}
    b = {  # the same rule, its keys in another order, and an empty list spelt out
        "requestHeaderRules": [{"enabled": True, "value": "1", "action": "set", "header": "x"}],
        "responseHeaderRules": [],
    }
    c = {"requestHeaderRules": [{"header": "x", "action": "set", "value": "2", "enabled": True}]}
    same, different = page.evaluate(
        """async ([a, b, c]) => {
            const { sameDocument } = await import("/dashboard/static/settings_rules.js");
            return [sameDocument(a, b), sameDocument(a, c)];
        }""",
        [a, b, c],
    )
    assert (same, different) == (True, False)


def test_the_servers_reading_of_a_save_is_shown(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    """When the API answers a save with rules other than those sent (its own
    normal form), the editor shows what it answered, not what it sent."""
    start_from(dashboard_env, EMPTY)
    page = open_settings(new_page)
    answer = {
        "requestHeaderRules": [
            {"header": "X-Normalised", "action": "set", "value": "v", "enabled": True}
        ],
        "responseHeaderRules": [],
    }
    page.route(
        re.compile(r".*/api/settings$"),
        lambda route: (
            route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))
            if route.request.method == "PUT"
            else route.continue_()
        ),
    )
    add_rule(page, "request", "x-normalised", "set", value="v")
    save(page)
    expect(field(rules(page, "request").nth(0), "header")).to_have_value("X-Normalised")
    expect(page.locator("#save-rules")).to_be_disabled()  # nothing left unsaved


def test_a_failed_load_leaves_nothing_to_save(
    dashboard_env: DashboardEnv, new_page: PageFactory
) -> None:
    page = new_page(allow=["503"])
    page.route(
        re.compile(r".*/api/settings$"),
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body=json.dumps({"error": "Database unavailable", "details": "try later"}),
        ),
    )
    puts: list[str] = []
    page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
    page.goto("/dashboard/settings")
    expect(page.locator("#rules-error")).to_have_text(
        "Could not load the header rules: Database unavailable: try later"
    )
    expect(page.locator("#save-status")).to_have_attribute("data-state", "error")
    page.locator("#request-rules [data-add]").click()
    field(rules(page, "request").nth(0), "header").fill("x-would-wipe")
    expect(page.locator("#save-rules")).to_be_disabled()
    page.keyboard.press("Control+s")
    # A save, begun in the key's handler, would have changed the status at once.
    expect(page.locator("#save-status")).to_have_text("Not loaded")
    assert puts == []
