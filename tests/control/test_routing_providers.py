"""OpenAI-format providers, fallbacks and breakers in the routing YAML, and the
plans built from them (the first provider's and each fallback's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from control.header_rules import HeaderRule
from control.plan import HeaderRuleSet, plan_fallback, plan_upstream
from control.routing import (
    BreakerSettings,
    ConfigError,
    Fallback,
    OpenAISettings,
    Pattern,
    ProviderFormat,
    RoutingConfig,
)
from control.routing_file import load_config
from streaming.exchange import Exchange
from tests.control.routing_helpers import write

ENV = {"LOCAL_KEY": "sk-local", "TEAM_KEY": "sk-team"}

CONFIG = """\
providers:
  - name: local
    format: openai
    base_url: http://127.0.0.1:8000/v1/
    api_key_env: LOCAL_KEY
    headers: {x-tenant: cc}
    openai: {max_tokens_field: max_completion_tokens, thinking: reasoning_effort}
    fallback_provider: team
    fallback_models:
      qwen3-coder: claude-haiku-4-5
      "prefix:gpt-": claude-sonnet-4-5
    breaker: {failures: 3, cooldown: 2.5}
  - name: team
    base_url: https://api.anthropic.com
    api_key_env: TEAM_KEY
    fallback_provider: plain
  - name: plain
    base_url: http://plain.internal
    breaker: off
rules:
  - name: subagents
    match: {agent: "*"}
    action: {provider: local, model: qwen3-coder}
  - name: gpt
    match: {model: "prefix:gpt-"}
    action: {provider: local}
  - name: rest
    action: {provider: team}
"""


@pytest.fixture
def config(tmp_path: Path) -> RoutingConfig:
    return load_config(write(tmp_path, CONFIG), explicit=True, environ=ENV)


def test_openai_provider_options_fallback_and_breaker_are_read(config: RoutingConfig) -> None:
    local, team, plain = config.providers
    assert local.format is ProviderFormat.OPENAI
    assert local.chat_completions_url == "http://127.0.0.1:8000/v1/chat/completions"
    assert local.openai == OpenAISettings("max_completion_tokens", "reasoning_effort")
    assert local.fallback == Fallback(
        "team",
        (
            (Pattern.parse("qwen3-coder"), "claude-haiku-4-5"),
            (Pattern.parse("prefix:gpt-"), "claude-sonnet-4-5"),
        ),
        line=8,
    )
    assert local.breaker == BreakerSettings(3, 2.5)
    # Defaults: anthropic format, the default breaker; `off` means none.
    assert team.openai == OpenAISettings() and team.breaker == BreakerSettings(5, 30.0)
    assert team.fallback is not None and team.fallback.models == ()
    assert plain.breaker is None and plain.fallback is None


def test_fallback_model_mapping(config: RoutingConfig) -> None:
    local, team, plain = config.providers
    # The mapping is keyed on the model the failing provider was asked for...
    assert config.fallback_for(local, "qwen3-coder", "claude-opus-4-5") == (
        team,
        "claude-haiku-4-5",
    )
    assert config.fallback_for(local, "gpt-5", "gpt-5") == (team, "claude-sonnet-4-5")
    # ...and without a match the fallback gets the model the client asked for.
    assert config.fallback_for(local, "llama-3", "claude-opus-4-5") == (team, "claude-opus-4-5")
    assert config.fallback_for(team, "x", "y") == (plain, "y")
    assert config.fallback_for(plain, "x", "y") is None


def test_openai_headers_carry_no_client_header_and_the_providers_own(
    config: RoutingConfig,
) -> None:
    local = config.providers[0]
    assert local.openai_headers(stream=True) == [
        ("content-type", "application/json"),
        ("accept", "text/event-stream"),
        ("accept-encoding", "identity"),
        ("user-agent", "claude-proxy"),
        ("authorization", "Bearer sk-local"),
        ("x-tenant", "cc"),
    ]
    assert ("accept", "application/json") in local.openai_headers(stream=False)


_ANTHROPIC = """\
providers:
  - name: a
    base_url: http://a
rules: []
"""
_OPENAI = _ANTHROPIC.replace("    base_url", "    format: openai\n    base_url")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            _ANTHROPIC.replace("rules", "    fallback_provider: b\nrules"),
            4,
            "unknown fallback_provider 'b'",
        ),
        (
            _ANTHROPIC.replace("rules", "    fallback_provider: a\nrules"),
            4,
            "fallback cycle: a → a",
        ),
        (
            """\
providers:
  - {name: a, base_url: "http://a", fallback_provider: b}
  - {name: b, base_url: "http://b", fallback_provider: c}
  - {name: c, base_url: "http://c", fallback_provider: a}
""",
            4,
            "fallback cycle: a → b → c → a",
        ),
        (
            _ANTHROPIC.replace("rules", "    fallback_models: {x: y}\nrules"),
            4,
            "fallback_models needs fallback_provider",
        ),
        (
            _ANTHROPIC.replace("rules", "  - {name: b, base_url: 'http://b'}\nrules").replace(
                "    base_url: http://a\n",
                "    base_url: http://a\n    fallback_provider: b\n    fallback_models:\n"
                "      '': y\n",
            ),
            6,
            "a fallback_models key must not be empty",
        ),
        (
            _ANTHROPIC.replace("rules", "  - {name: b, base_url: 'http://b'}\nrules").replace(
                "    base_url: http://a\n",
                "    base_url: http://a\n    fallback_provider: b\n    fallback_models: {x: ''}\n",
            ),
            5,
            "fallback model of 'x' must not be empty",
        ),
        (
            _ANTHROPIC.replace(
                "rules", "    fallback_models: [x]\n    fallback_provider: a\nrules"
            ),
            4,
            "fallback_models must be a mapping",
        ),
        (
            _OPENAI.replace("rules", "    openai: {thinking: maybe}\nrules"),
            5,
            "thinking must be one of",
        ),
        (
            _OPENAI.replace("rules", "    openai: {max_tokens_field: tokens}\nrules"),
            5,
            "max_tokens_field must be one of max_tokens, max_completion_tokens",
        ),
        (_OPENAI.replace("rules", "    openai: {colour: red}\nrules"), 5, "unknown key 'colour'"),
        (_ANTHROPIC.replace("rules", "    breaker: {failures: 0}\nrules"), 4, "failures must be"),
        (_ANTHROPIC.replace("rules", "    breaker: {failures: two}\nrules"), 4, "failures must be"),
        (_ANTHROPIC.replace("rules", "    breaker: {cooldown: -1}\nrules"), 4, "cooldown must be"),
        (_ANTHROPIC.replace("rules", "    breaker: {cooldown: nan}\nrules"), 4, "cooldown must be"),
        (
            _ANTHROPIC.replace("rules", "    breaker: on\nrules"),
            4,
            "breaker (or `off`) must be a mapping",
        ),
        (
            _ANTHROPIC.replace("rules", "    breaker: {timeout: 3}\nrules"),
            4,
            "unknown key 'timeout'",
        ),
    ],
)
def test_provider_errors_name_file_line_and_reason(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, explicit=True, environ={})
    assert caught.value.line == line, str(caught.value)
    assert fragment in caught.value.reason, str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


# ---- plans -----------------------------------------------------------------------------

RULES = HeaderRuleSet(request=(HeaderRule("x-org", "set", value="o1"),))


def _exchange(body: dict[str, object], headers: list[tuple[str, str]] | None = None) -> Exchange:
    raw = json.dumps(body).encode()
    exchange = Exchange("POST", "/v1/messages", "beta=true", headers or [], raw)
    exchange.request_json = body
    exchange.model = body.get("model")  # type: ignore[assignment]
    exchange.stream_requested = body.get("stream") is True
    return exchange


def _plan(config: RoutingConfig, exchange: Exchange, *, demote: bool = False):
    return plan_upstream(
        exchange,
        "/v1/messages?beta=true",
        default_base="https://default",
        routing=config,
        rules=RULES,
        demote_enabled=demote,
    )


def test_an_openai_route_is_planned_untranslated_with_its_own_headers(
    config: RoutingConfig,
) -> None:
    client = [("x-api-key", "sk-ant-client"), ("x-claude-code-agent-id", "explore-1")]
    exchange = _exchange({"model": "claude-opus-4-5", "stream": True, "messages": []}, client)
    plan = _plan(config, exchange)
    assert (plan.provider, plan.format, plan.model, plan.routed_model) == (
        "local",
        ProviderFormat.OPENAI,
        "qwen3-coder",
        "qwen3-coder",
    )
    assert plan.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert plan.body == exchange.request_body  # translated by the forwarder
    assert plan.stream and not plan.demote
    names = [name for name, _ in plan.headers]
    assert "x-api-key" not in names and "x-claude-code-agent-id" not in names
    assert ("x-org", "o1") in plan.headers  # the header rules still apply


def test_demotion_asks_an_openai_backend_for_a_stream(config: RoutingConfig) -> None:
    exchange = _exchange({"model": "gpt-5", "messages": []})
    plain = _plan(config, exchange)
    assert not plain.stream and not plain.demote and plain.model == "gpt-5"
    assert plain.routed_model is None
    demoted = _plan(config, exchange, demote=True)
    assert demoted.stream and demoted.demote
    assert demoted.body == exchange.request_body


def test_fallback_plans_follow_the_chain(config: RoutingConfig) -> None:
    exchange = _exchange(
        {"model": "claude-opus-4-5", "stream": False, "messages": []},
        [("x-api-key", "sk-ant-client"), ("x-claude-code-agent-id", "a")],
    )
    first = _plan(config, exchange, demote=True)

    def fallback(failed):
        return plan_fallback(
            exchange,
            "/v1/messages?beta=true",
            failed,
            routing=config,
            rules=RULES,
            demote_enabled=True,
        )

    second = fallback(first)
    assert second is not None
    assert (second.provider, second.format, second.model) == (
        "team",
        ProviderFormat.ANTHROPIC,
        "claude-haiku-4-5",
    )
    assert second.url == "https://api.anthropic.com/v1/messages?beta=true"
    # Only `model` (and, demoted, `stream`) changed in the client's bytes.
    assert json.loads(second.body) == {
        "model": "claude-haiku-4-5",
        "stream": True,
        "messages": [],
    }
    assert ("x-api-key", "sk-team") in second.headers and second.demote
    third = fallback(second)
    assert third is not None and third.provider == "plain"
    # Unmapped: the client's own model, so the body is the client's (demoted) body.
    assert third.model == "claude-opus-4-5" and third.routed_model is None
    assert json.loads(third.body)["model"] == "claude-opus-4-5"
    assert ("x-api-key", "sk-ant-client") in third.headers
    assert fallback(third) is None


def test_the_default_upstream_has_no_fallback(config: RoutingConfig) -> None:
    exchange = _exchange({"model": "m"})
    exchange.request_json = None  # not routed: no body to match on
    plan = _plan(RoutingConfig(), exchange)
    assert plan.target is None and plan.provider == "anthropic"
    kwargs = {"routing": config, "rules": RULES, "demote_enabled": False}
    assert plan_fallback(exchange, "/v1/messages", plan, **kwargs) is None  # type: ignore[arg-type]
