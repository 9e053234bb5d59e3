"""Model routing: rule matching (table-driven), the key fingerprint and the provider
seam. Reading and validating the YAML: test_routing_file.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.routing import (
    AGENT_HEADER,
    Pattern,
    Provider,
    ProviderFormat,
    RoutingConfig,
    agent_of,
    client_key_fingerprint,
    fingerprint,
)
from control.routing_file import load_config
from tests.control.routing_helpers import FP_A, KEY_A, write

ENV = {"MAIN_KEY": "sk-main", "ALT_KEY": "sk-alt"}

CONFIG = f"""\
providers:
  - name: main
    format: anthropic
    base_url: https://api.anthropic.com/
    api_key_env: MAIN_KEY
  - name: alt
    base_url: http://alt.internal:8080/anthropic
    api_key_env: ALT_KEY
    headers:
      x-team: platform
      x-num: 42
  - name: passthrough
    base_url: http://localhost:9000

rules:
  - name: ci-key
    match: {{client_key: "{FP_A}"}}
    action: {{provider: passthrough}}
  - name: explore-agent
    match:
      agent: prefix:explore-
      model: "claude-*"
    action: {{provider: alt, model: claude-haiku-4-5}}
  - name: any-agent-opus
    match: {{agent: "*", model: prefix:claude-opus-}}
    action: {{provider: alt}}
  - name: exact-sonnet
    match: {{model: claude-sonnet-4-5}}
    action: {{provider: main, model: claude-sonnet-4-5-20250929}}
  - match:
      model: ["claude-3-5-haiku-????????", "exact:odd*name"]
    action: {{provider: alt, model: claude-haiku-4-5}}
  - name: legacy
    match: {{model: "prefix:claude-2"}}
    action:
      provider: main
"""


@pytest.fixture
def config(tmp_path: Path) -> RoutingConfig:
    return load_config(write(tmp_path, CONFIG), explicit=True, environ=ENV)


@pytest.mark.parametrize(
    ("model", "agent", "key", "provider", "routed", "rule"),
    [
        # client key rule is first: it wins whatever the model or agent
        ("claude-sonnet-4-5", None, FP_A, "passthrough", None, "ci-key"),
        ("claude-opus-4-1", "explore-1", FP_A, "passthrough", None, "ci-key"),
        (None, None, FP_A, "passthrough", None, "ci-key"),
        # agent prefix + model glob
        ("claude-sonnet-4-5", "explore-12", None, "alt", "claude-haiku-4-5", "explore-agent"),
        ("gpt-4", "explore-12", None, None, None, None),  # glob needs claude-*
        # any agent + opus prefix; without an agent the rule does not apply
        ("claude-opus-4-1", "planner", None, "alt", None, "any-agent-opus"),
        ("claude-opus-4-1", None, None, None, None, None),
        # exact
        ("claude-sonnet-4-5", None, None, "main", "claude-sonnet-4-5-20250929", "exact-sonnet"),
        ("claude-sonnet-4-5-20250929", None, None, None, None, None),
        ("Claude-Sonnet-4-5", None, None, None, None, None),  # case-sensitive
        # glob with ? (exactly one character each) and an unnamed rule
        ("claude-3-5-haiku-20241022", None, None, "alt", "claude-haiku-4-5", "rules[4]"),
        ("claude-3-5-haiku-2024102", None, None, None, None, None),
        ("odd*name", None, None, "alt", "claude-haiku-4-5", "rules[4]"),
        ("oddXname", None, None, None, None, None),
        # prefix
        ("claude-2.1", None, None, "main", None, "legacy"),
        ("claude-3-opus", None, None, None, None, None),
        # no match, no model
        (None, None, None, None, None, None),
        (
            "claude-sonnet-4-5",
            None,
            "sha256:ffffffffffffffff",
            "main",
            "claude-sonnet-4-5-20250929",
            "exact-sonnet",
        ),
    ],
)
def test_route_table(
    config: RoutingConfig,
    model: str | None,
    agent: str | None,
    key: str | None,
    provider: str | None,
    routed: str | None,
    rule: str | None,
) -> None:
    route = config.route(model, agent, key)
    if provider is None:
        assert route is None
        return
    assert route is not None
    assert (route.provider.name, route.routed_model, route.rule) == (provider, routed, rule)


def test_first_match_wins_over_later_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        providers:
          - {name: a, base_url: "http://a"}
          - {name: b, base_url: "http://b"}
        rules:
          - {match: {model: "claude-*"}, action: {provider: a}}
          - {match: {model: claude-x}, action: {provider: b}}
          - {action: {provider: b, model: fallback}}
        """,
    )
    config = load_config(path, explicit=True, environ={})
    assert config.route("claude-x", None, None).provider.name == "a"  # type: ignore[union-attr]
    catch_all = config.route("other", None, None)
    assert catch_all is not None
    assert (catch_all.provider.name, catch_all.routed_model, catch_all.rule_line) == (
        "b",
        "fallback",
        7,
    )
    assert config.route(None, None, None).provider.name == "b"  # type: ignore[union-attr]


def test_providers_are_resolved_at_load(config: RoutingConfig) -> None:
    main, alt, passthrough = config.providers
    assert main == Provider(
        "main", ProviderFormat.ANTHROPIC, "https://api.anthropic.com", "sk-main", "MAIN_KEY"
    )
    assert alt.base_url == "http://alt.internal:8080/anthropic"
    assert alt.headers == (("x-team", "platform"), ("x-num", "42"))
    assert passthrough.api_key is None
    assert "sk-main" not in repr(main)  # keys stay out of logs


def test_provider_url_and_headers(config: RoutingConfig) -> None:
    main, alt, passthrough = config.providers
    assert (
        alt.url_for("/v1/messages?beta=true")
        == "http://alt.internal:8080/anthropic/v1/messages?beta=true"
    )
    client = [
        ("x-api-key", "sk-client"),
        ("Authorization", "Bearer t"),
        ("anthropic-beta", "b1,b2"),
        ("X-Team", "client-says"),
    ]
    assert main.upstream_headers(client) == [
        ("anthropic-beta", "b1,b2"),
        ("X-Team", "client-says"),
        ("x-api-key", "sk-main"),
    ]
    assert alt.upstream_headers(client) == [
        ("anthropic-beta", "b1,b2"),
        ("x-api-key", "sk-alt"),
        ("x-team", "platform"),
        ("x-num", "42"),
    ]
    assert passthrough.upstream_headers(client) == client  # the client's own credentials


def test_openai_seam_uses_bearer() -> None:
    provider = Provider("o", ProviderFormat.OPENAI, "https://api.openai.com", "sk-o")
    assert provider.credential_headers() == [("authorization", "Bearer sk-o")]


@pytest.mark.parametrize(
    ("text", "kind", "yes", "no"),
    [
        ("claude-x", "exact", ["claude-x"], ["claude-x1", "claude", "Claude-x"]),
        ("prefix:claude-", "prefix", ["claude-", "claude-x"], ["claud", "xclaude-"]),
        ("exact:a*b", "exact", ["a*b"], ["ab", "axb"]),
        ("exact:prefix:x", "exact", ["prefix:x"], ["x"]),
        ("a*", "glob", ["a", "abc", "a\nb"], ["ba"]),
        ("*-4-5", "glob", ["claude-sonnet-4-5"], ["claude-sonnet-4-5-1"]),
        ("a?c", "glob", ["abc", "a.c"], ["ac", "abbc"]),
        ("[a]*", "glob", ["[a]x"], ["ax"]),  # brackets are literal
        ("a.c", "exact", ["a.c"], ["abc"]),
        ("prefix:", "exact", ["prefix:"], ["prefix:x"]),
    ],
)
def test_pattern_syntax(text: str, kind: str, yes: list[str], no: list[str]) -> None:
    pattern = Pattern.parse(text)
    assert pattern.kind == kind
    assert all(pattern.matches(value) for value in yes)
    assert not any(pattern.matches(value) for value in no)


def test_empty_pattern_is_refused() -> None:
    with pytest.raises(ValueError):
        Pattern.parse("")


# ---------------------------------------------------------------------------------
# Request helpers
# ---------------------------------------------------------------------------------


def test_fingerprint_format() -> None:
    assert fingerprint(KEY_A) == FP_A
    assert len(FP_A) == len("sha256:") + 16


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("x-api-key", KEY_A)], FP_A),
        ([("X-Api-Key", f"  {KEY_A} ")], FP_A),
        ([("authorization", f"Bearer {KEY_A}")], FP_A),
        ([("Authorization", f"bearer   {KEY_A}")], FP_A),
        ({"Authorization": f"Bearer {KEY_A}"}, FP_A),
        ([("authorization", "Bearer other"), ("x-api-key", KEY_A)], FP_A),  # x-api-key first
        ([("authorization", f"Basic {KEY_A}")], None),
        ([("authorization", "Bearer ")], None),
        ([("x-api-key", "")], None),
        ([], None),
    ],
)
def test_client_key_fingerprint(headers: object, expected: str | None) -> None:
    assert client_key_fingerprint(headers) == expected  # type: ignore[arg-type]


def test_agent_of() -> None:
    assert agent_of([("X-Claude-Code-Agent-Id", " agent-7 ")]) == "agent-7"
    assert agent_of({AGENT_HEADER: "a"}) == "a"
    assert agent_of([("x-claude-code-agent-id", "")]) is None
    assert agent_of([]) is None
