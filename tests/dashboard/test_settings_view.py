"""The Settings page without a browser: what the read-only views show, what
they keep out (secrets), and the page as the app serves it."""

from __future__ import annotations

import base64
import json
from dataclasses import fields
from pathlib import Path

import pytest
from markupsafe import escape
from sanic import Sanic

from app import create_app
from control.header_rules import ACTIONS, USES
from control.routing import RoutingConfig
from control.routing_file import load_config
from dashboard.settings_page import rule_vocabulary
from dashboard.settings_view import (
    NOT_SET,
    REDACTED,
    SET,
    UNPARSED_URL,
    effective_settings,
    is_secret_field,
    redact_url,
    routing_view,
)
from runtime.settings import Settings, env_var_names

KEY_VALUE = "sk-provider-key-value-4f1e"
HEADER_VALUE = "custom-credential-77ab"
HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'

ROUTING_YAML = """
providers:
  - name: gateway
    base_url: https://gateway.example/anthropic
    api_key_env: GATEWAY_KEY
    headers:
      api-key: {header}
      x-team: platform
    fallback_provider: local
    fallback_models:
      "claude-opus-*": claude-sonnet-4-5
  - name: local
    base_url: http://127.0.0.1:8080
    breaker:
      failures: 3
      cooldown: 12.5
rules:
  - name: {hostile}
    match:
      model: [claude-opus-4-5, "prefix:claude-3-"]
      client_key: [sha256:ffffffffffffffff, sha256:0000000000000000]
    action:
      provider: gateway
      model: claude-sonnet-4-5
  - match:
      agent: "*"
    action:
      provider: local
"""


def _routing(tmp_path: Path) -> RoutingConfig:
    path = tmp_path / "config.yaml"
    text = ROUTING_YAML.format(header=HEADER_VALUE, hostile=json.dumps(HOSTILE))
    path.write_text(text)
    return load_config(str(path), explicit=True, environ={"GATEWAY_KEY": KEY_VALUE})


# ---- URLs -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mongodb://127.0.0.1:27017", "mongodb://127.0.0.1:27017"),
        ("mongodb://app:s3cret@db:27017/log", "mongodb://app@db:27017/log"),
        (
            "mongodb://app:p%40ss%2Fw@h1:1,h2:2/?replicaSet=rs0",
            "mongodb://app@h1:1,h2:2/?replicaSet=rs0",
        ),
        ("mongodb+srv://app:s3cret@cluster.example.net/", "mongodb+srv://app@cluster.example.net/"),
        ("mongodb://app:s3cret@db?authSource=admin", "mongodb://app@db?authSource=admin"),
        ("mongodb://:s3cret@db/", "mongodb://db/"),
        (
            "mongodb://db/?tlsCertificateKeyFilePassword=s3cret&w=majority",
            f"mongodb://db/?tlsCertificateKeyFilePassword={REDACTED}&w=majority",
        ),
        (
            "mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:s3cret",
            f"mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties={REDACTED}",
        ),
        ("https://user:s3cret@gateway.example/v1", "https://user@gateway.example/v1"),
        # A password with an unencoded `/` or `?`: where it ends is a guess, so nothing is shown.
        ("mongodb://app:s3/cret@db/log", UNPARSED_URL),
        ("mongodb://app:s3?cret@db", UNPARSED_URL),
        ("not-a-url:s3cret@db", UNPARSED_URL),
        ("https://api.anthropic.com", "https://api.anthropic.com"),
    ],
)
def test_urls_lose_their_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url) and "p%40ss" not in redact_url(url)


# ---- effective settings --------------------------------------------------------------------
def test_every_setting_is_listed_with_its_variable() -> None:
    rows = effective_settings(Settings())
    assert [row.name for row in rows] == [f.name for f in fields(Settings)]
    assert {row.name: row.env for row in rows} == env_var_names()
    assert all(row.is_default for row in rows)  # Settings() is all defaults


def test_secrets_show_only_whether_they_are_set() -> None:
    settings = Settings.from_env(
        {
            "DASHBOARD_PASSWORD": "pw-9b1c",
            "MONGODB_URI": "mongodb://proxy:mongo-pw-3d2a@db.internal:27017/?authSource=admin",
            "ANTHROPIC_FORWARD_URL": "https://u:fwd-pw-71c0@gateway.example",
        }
    )
    rows = {row.name: row for row in effective_settings(settings)}
    shown = " ".join(row.value for row in rows.values())
    for secret in ("pw-9b1c", "mongo-pw-3d2a", "fwd-pw-71c0"):
        assert secret not in shown
    assert rows["dashboard_password"].value == SET and rows["dashboard_password"].secret
    assert rows["mongodb_uri"].value == "mongodb://proxy@db.internal:27017/?authSource=admin"
    assert rows["anthropic_forward_url"].value == "https://u@gateway.example"
    unset = {row.name: row for row in effective_settings(Settings())}
    assert unset["dashboard_password"].value == NOT_SET and not unset["dashboard_password"].is_set
    assert unset["mongodb_uri"].value == NOT_SET


def test_fields_named_like_secrets_count_as_secrets() -> None:
    # A field added later is covered by its name, before anyone lists it.
    for name in ("dashboard_password", "admin_token", "provider_api_key", "webhook_secret"):
        assert is_secret_field(name), name
    for name in ("mongodb_uri", "journal_max_bytes", "host", "cors_origins"):
        assert not is_secret_field(name), name


def test_values_are_shown_with_their_units() -> None:
    settings = Settings.from_env(
        {
            "REQUEST_MAX_BYTES": str(32 * 1024 * 1024),
            "DRAIN_TIMEOUT": "90",
            "WRITER_LINGER": "0.05",
            "LOG_RETENTION_DAYS": "30",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "OPENAPI_DOCS": "false",
        }
    )
    rows = {row.name: row for row in effective_settings(settings)}
    assert rows["request_max_bytes"].value == "33,554,432 bytes (32 MiB)"
    assert rows["drain_timeout"].value == "90 s" and not rows["drain_timeout"].is_default
    assert rows["writer_linger"].value == "0.05 s" and rows["writer_linger"].is_default
    assert rows["log_retention_days"].value == "30 days"
    assert rows["cors_origins"].value == "https://a.example, https://b.example"
    assert rows["openapi_docs"].value == "false"
    assert rows["config_file"].value == NOT_SET


# ---- routing ----------------------------------------------------------------------------
def test_routing_shows_providers_and_rules_without_keys(tmp_path: Path) -> None:
    view = routing_view(_routing(tmp_path), Settings())
    assert view.path == str(tmp_path / "config.yaml")
    assert view.default_upstream == "https://api.anthropic.com"
    gateway, local = view.providers
    assert (gateway.name, gateway.format, gateway.base_url) == (
        "gateway",
        "anthropic",
        "https://gateway.example/anthropic",
    )
    assert (gateway.key_env, gateway.key_set) == ("GATEWAY_KEY", True)
    assert gateway.header_names == ("api-key", "x-team")
    assert gateway.fallback == "local"
    assert gateway.fallback_models == (("claude-opus-*", "claude-sonnet-4-5"),)
    assert local.key_env is None and not local.key_set and local.fallback is None
    assert local.breaker == "opens after 3 failures, for 12.5 s"
    assert KEY_VALUE not in repr(view) and HEADER_VALUE not in repr(view)

    first, second = view.rules
    assert (first.position, first.name, first.provider, first.rewrite) == (
        1,
        HOSTILE,
        "gateway",
        "claude-sonnet-4-5",
    )
    assert first.models == ("claude-opus-4-5", "prefix:claude-3-")
    assert first.client_keys == ("sha256:0000000000000000", "sha256:ffffffffffffffff")
    assert first.agents is None
    assert (second.position, second.name, second.agents, second.models) == (
        2,
        "rules[1]",
        ("*",),
        None,
    )
    assert second.rewrite is None


def test_the_editor_learns_the_rule_vocabulary_from_the_validation() -> None:
    vocabulary = json.loads(rule_vocabulary())
    assert vocabulary["actions"] == list(ACTIONS)
    assert {a: set(f) for a, f in vocabulary["uses"].items()} == {
        a: set(f) for a, f in USES.items()
    }


# ---- the page as served -------------------------------------------------------------------
def _app(routing: RoutingConfig | None = None, **env: str) -> Sanic:
    settings = Settings.from_env(
        {"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9", "REQUEST_LOG": "false", **env}
    )
    return create_app(settings, routing=routing or RoutingConfig())


def _basic(password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"me:{password}".encode()).decode()}


async def test_the_page_escapes_and_keeps_secrets_out(tmp_path: Path) -> None:
    app = _app(
        _routing(tmp_path),
        DASHBOARD_PASSWORD="dash-pw-5e6f",
        MONGODB_URI="mongodb://proxy:mongo-pw-0a9b@db:27017/",
    )
    _, resp = await app.asgi_client.get("/dashboard/settings")
    assert resp.status == 401
    _, resp = await app.asgi_client.get("/dashboard/settings", headers=_basic("dash-pw-5e6f"))
    assert resp.status == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    page = resp.text
    for secret in ("dash-pw-5e6f", "mongo-pw-0a9b", KEY_VALUE, HEADER_VALUE):
        assert secret not in page, secret
    assert HOSTILE not in page and str(escape(HOSTILE)) in page
    assert "GATEWAY_KEY" in page and "mongodb://proxy@db:27017/" in page
    # Without the request log the rules live in this process only: the page says so.
    assert 'id="rules-not-persisted"' in page
    assert 'aria-current="page">Settings' in page


async def test_without_a_routing_file_the_page_says_where_requests_go() -> None:
    _, resp = await _app().asgi_client.get("/dashboard/settings")
    assert resp.status == 200
    assert 'id="routing-off"' in resp.text
    assert "http://127.0.0.1:9" in resp.text
    assert 'id="routing-providers"' not in resp.text
