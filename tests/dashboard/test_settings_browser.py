"""The Settings page in a real browser against a real proxy of its own: one
started with a routing file, a dashboard password, a MongoDB URI that carries a
password and a provider key in the environment, so the page has every kind of
secret to keep out. The editor's behaviour is tested in test_settings_editor.py.
"""

from __future__ import annotations

import secrets
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from pymongo import MongoClient
from pymongo.uri_parser import parse_uri

from dashboard.settings_view import redact_url
from runtime.settings import env_var_names
from tests.conftest import ProxyProcess, start_proxy
from tests.dashboard.conftest import DashboardEnv, PageFactory
from tests.dashboard.test_settings_support import (
    API,
    EMPTY,
    field,
    headers_on_page,
    open_settings,
    put,
    rules,
    start_from,
)
from tests.fake_upstream import FakeUpstream

TAG = uuid.uuid4().hex[:8]
KEY_VAR = f"SETTINGS_TEST_KEY_{TAG.upper()}"
# Secrets the page must never show, each unlike anything else on it.
PASSWORD = f"dash-pw-{secrets.token_hex(8)}"
PROVIDER_KEY = f"sk-provider-{secrets.token_hex(8)}"
HEADER_VALUE = f"header-value-{secrets.token_hex(6)}"


# ---- the proxy -----------------------------------------------------------------------
def _with_credentials(uri: str, user: str, password: str) -> str:
    scheme, rest = uri.split("://", 1)
    hosts, _, tail = rest.partition("/")
    path, question, query = tail.partition("?")
    query = f"{query}&authSource=admin" if question else "authSource=admin"
    return f"{scheme}://{user}:{password}@{hosts}/{path}?{query}"


@pytest.fixture(scope="module")
def credentialed_uri(mongo_uri: str) -> Iterator[tuple[str, str]]:
    """(a MongoDB URI with a password, that password): $MONGODB_URI as it is when
    it carries one, else a user created for this module."""
    parsed = parse_uri(mongo_uri)
    if parsed.get("password"):
        yield mongo_uri, parsed["password"]
        return
    user, password = f"settings_{TAG}", f"mongo-pw-{secrets.token_hex(8)}"
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, serverSelectionTimeoutMS=10000)
    try:
        client.admin.command("createUser", user, pwd=password, roles=["root"])
        yield _with_credentials(mongo_uri, user, password), password
    finally:
        client.admin.command("dropUser", user)
        client.close()


ROUTING_YAML = f"""
providers:
  - name: team-gateway
    format: anthropic
    base_url: {{upstream}}
    api_key_env: {KEY_VAR}
    headers:
      x-team: {HEADER_VALUE}
    fallback_provider: staging
    fallback_models:
      "claude-opus-*": claude-sonnet-4-5
  - name: staging
    base_url: {{upstream}}/staging
    breaker: off
rules:
  - name: subagents-on-haiku
    match:
      agent: "*"
      model: prefix:claude-opus-
    action:
      provider: team-gateway
      model: claude-haiku-4-5
  - match:
      model: [claude-sonnet-4-5, "claude-sonnet-4-5-*"]
    action:
      provider: team-gateway
  - name: ci-to-staging
    match:
      client_key: sha256:0123456789abcdef
    action:
      provider: staging
"""


@pytest.fixture(scope="module")
def settings_env(
    upstream: FakeUpstream,
    credentialed_uri: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DashboardEnv]:
    tmp = tmp_path_factory.mktemp("settings")
    config = tmp / "routing.yaml"
    config.write_text(ROUTING_YAML.format(upstream=upstream.url))
    proxy: ProxyProcess = start_proxy(
        tmp,
        {
            "MONGODB_URI": credentialed_uri[0],
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "DASHBOARD_PASSWORD": PASSWORD,
            "DATA_DIR": str(tmp / "data"),
            "CONFIG_FILE": str(config),
            KEY_VAR: PROVIDER_KEY,
        },
    )
    try:
        yield DashboardEnv(proxy, upstream, password=PASSWORD)
    finally:
        proxy.stop()


@pytest.fixture
def new_page(browser: Browser, settings_env: DashboardEnv) -> Iterator[PageFactory]:
    """The harness's page factory, on this module's proxy."""
    factory = PageFactory(browser, settings_env)
    yield factory
    problems = factory.close()
    if problems:
        pytest.fail("the page reported errors:\n" + "\n".join(problems))


# ---- the page --------------------------------------------------------------------------
def test_the_page_shows_routing_and_settings_without_a_secret(
    settings_env: DashboardEnv,
    credentialed_uri: tuple[str, str],
    new_page: PageFactory,
    screenshot: Callable[..., Path],
) -> None:
    start_from(
        settings_env,
        {
            "requestHeaderRules": [
                {"header": "x-forwarded-for", "action": "block"},
                {
                    "header": "anthropic-beta",
                    "action": "replace",
                    "find": "interleaved-thinking",
                    "value": "interleaved-thinking-2025-05-14",
                },
                {"header": "x-team", "action": "set", "value": "platform", "enabled": False},
            ],
            "responseHeaderRules": [
                {"header": "x-proxied-by", "action": "set", "value": "claude-proxy"}
            ],
        },
    )
    uri, mongo_password = credentialed_uri
    request = urllib.request.Request(
        settings_env.url + "/dashboard/settings", headers=settings_env.auth
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        source = response.read().decode()
    page = open_settings(new_page)
    rendered = page.content()
    for secret in (PASSWORD, mongo_password, PROVIDER_KEY, HEADER_VALUE):
        assert secret not in source and secret not in rendered, secret

    # Effective settings: every field of Settings, secrets as set / not set.
    rows = page.locator("#settings-table tbody tr")
    assert rows.count() == len(env_var_names())
    for name, env in env_var_names().items():
        expect(page.locator(f'tr[data-setting="{name}"] td').first).to_have_text(env)
    password_row = page.locator('tr[data-setting="dashboard_password"] td').nth(1)
    expect(password_row).to_have_text("set")
    uri_cell = page.locator('tr[data-setting="mongodb_uri"] td').nth(1)
    expect(uri_cell).to_have_text(redact_url(uri))
    assert parse_uri(uri)["username"] in uri_cell.inner_text()
    expect(page.locator('tr[data-setting="config_file"] td').nth(1)).to_contain_text("routing.yaml")

    # Routing: providers with the key's variable (never its value), rules in order.
    providers = page.locator("#routing-providers tbody tr")
    expect(providers).to_have_count(2)
    gateway = providers.nth(0)
    expect(gateway).to_contain_text("team-gateway")
    expect(gateway).to_contain_text(f"from {KEY_VAR} set")
    expect(gateway).to_contain_text("x-team")
    expect(gateway).to_contain_text("claude-opus-* → claude-sonnet-4-5")
    expect(providers.nth(1)).to_contain_text("off")  # the staging breaker
    routing_rules = page.locator("#routing-rules tbody tr")
    expect(routing_rules).to_have_count(3)
    expect(routing_rules.nth(0)).to_contain_text("subagents-on-haiku")
    expect(routing_rules.nth(0)).to_contain_text("prefix:claude-opus-")
    expect(routing_rules.nth(0)).to_contain_text("claude-haiku-4-5")
    expect(routing_rules.nth(1)).to_contain_text("rules[1]")  # unnamed: its place in the file
    expect(routing_rules.nth(1)).to_contain_text("claude-sonnet-4-5 or claude-sonnet-4-5-*")
    expect(routing_rules.nth(1)).to_contain_text("as requested")
    expect(routing_rules.nth(2)).to_contain_text("sha256:0123456789abcdef")
    expect(page.locator("#default-upstream")).to_have_text(settings_env.upstream.url)

    # The editor shows the stored rules as they are.
    assert headers_on_page(page, "request") == ["x-forwarded-for", "anthropic-beta", "x-team"]
    third = rules(page, "request").nth(2)
    expect(field(third, "enabled")).not_to_be_checked()
    expect(third.locator('[data-for="find"]')).to_be_hidden()
    expect(field(rules(page, "request").nth(1), "find")).to_have_value("interleaved-thinking")
    expect(field(rules(page, "request").nth(0), "value")).to_be_hidden()  # block has none
    screenshot(page, "settings-light")
    screenshot(open_settings(new_page, color_scheme="dark"), "settings-dark")


def test_a_cross_site_put_is_refused(settings_env: DashboardEnv) -> None:
    start_from(settings_env, EMPTY)
    attack = {"requestHeaderRules": [{"header": "x-evil", "action": "set", "value": "1"}]}
    for headers in (
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "http://evil.example"},
    ):
        status, body = put(settings_env, attack, headers)
        assert status == 403, (headers, body)
        assert body["error"] == "Cross-site request refused"
    assert settings_env.get_json(API) == EMPTY


def test_rule_text_renders_as_text(settings_env: DashboardEnv, new_page: PageFactory) -> None:
    payloads = [
        "<script>window.__xss=1</script>",
        '"><img src=x onerror="window.__xss=2">',
        "javascript:window.__xss=3",
    ]
    start_from(
        settings_env,
        {
            "requestHeaderRules": [
                {"header": "x-a", "action": "replace", "find": payloads[2], "value": payloads[0]},
            ],
            "responseHeaderRules": [{"header": "x-b", "action": "set", "value": payloads[1]}],
        },
    )
    page = open_settings(new_page)
    expect(field(rules(page, "request").nth(0), "value")).to_have_value(payloads[0])
    expect(field(rules(page, "request").nth(0), "find")).to_have_value(payloads[2])
    expect(field(rules(page, "response").nth(0), "value")).to_have_value(payloads[1])
    assert page.evaluate("window.__xss") is None
    assert page.locator("#header-rules img, #header-rules script").count() == 0
