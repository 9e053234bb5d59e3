"""Model routing: rule matching (table-driven), config validation with line numbers,
the key fingerprint and the provider seam."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from control.routing import (
    AGENT_HEADER,
    ConfigError,
    Pattern,
    Provider,
    ProviderFormat,
    RoutingConfig,
    agent_of,
    client_key_fingerprint,
    config_from_environ,
    fingerprint,
    load_config,
)

ROOT = Path(__file__).resolve().parents[2]
KEY_A = "sk-ant-api03-client-a"
FP_A = "sha256:" + hashlib.sha256(KEY_A.encode()).hexdigest()[:16]
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


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


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
# Config errors: file, line and reason
# ---------------------------------------------------------------------------------

_BASE = """\
providers:
  - name: main
    base_url: https://api.anthropic.com
rules:
  - match: {model: x}
    action: {provider: main}
"""


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            _BASE.replace("  - name: main\n", "  - name: main\n    colour: blue\n"),
            3,
            "unknown key 'colour'",
        ),
        ("providers: []\nsurprise: 1\n", 2, "unknown key 'surprise'"),
        (_BASE.replace("match: {model: x}", "match: {modle: x}"), 5, "unknown key 'modle'"),
        (_BASE + "    extra: 1\n", 7, "unknown key 'extra'"),
        (
            _BASE.replace("action: {provider: main}", "action: {provider: mian}"),
            6,
            "unknown provider 'mian'",
        ),
        (
            _BASE.replace("https://api.anthropic.com", "ftp://x"),
            3,
            "base_url must be an http(s) URL",
        ),
        (_BASE.replace("https://api.anthropic.com", "api.anthropic.com"), 3, "base_url"),
        (_BASE.replace("https://api.anthropic.com", "https://"), 3, "base_url"),
        (_BASE.replace("https://api.anthropic.com", "https://u:p@x"), 3, "credentials"),
        (_BASE.replace("https://api.anthropic.com", "https://x/?a=1"), 3, "query"),
        (
            _BASE.replace("rules:", "  - name: main\n    base_url: http://other\nrules:"),
            4,
            "duplicate provider name 'main' (first defined at line 2)",
        ),
        (
            _BASE.replace("    base_url", "    api_key: sk-live\n    base_url"),
            3,
            "keys are never read from the file",
        ),
        (
            _BASE.replace("    base_url", "    api_key_env: NOPE_NOT_SET\n    base_url"),
            3,
            "environment variable NOPE_NOT_SET",
        ),
        (
            _BASE.replace("    base_url", "    api_key_env: 1BAD-NAME\n    base_url"),
            3,
            "not a variable name",
        ),
        (
            _BASE.replace("    base_url", "    format: openai\n    base_url"),
            3,
            "'openai' is not supported yet",
        ),
        (
            _BASE.replace("    base_url", "    format: grpc\n    base_url"),
            3,
            "unknown format 'grpc'",
        ),
        (
            _BASE.replace("    base_url", "    headers: {host: x}\n    base_url"),
            3,
            "hop-by-hop or framing",
        ),
        (
            _BASE.replace("    base_url", "    headers: {x-api-key: k}\n    base_url"),
            3,
            "carries a credential",
        ),
        (
            _BASE.replace("    base_url", "    headers: {Authorization: k}\n    base_url"),
            3,
            "credential",
        ),
        (
            _BASE.replace("    base_url", "    headers: {bad header: k}\n    base_url"),
            3,
            "not a valid header name",
        ),
        (
            _BASE.replace("    base_url", '    headers: {x-a: "a\\r\\nb: c"}\n    base_url'),
            3,
            "control",
        ),
        (
            _BASE.replace("    base_url", "    headers: [x]\n    base_url"),
            3,
            "headers must be a mapping",
        ),
        (
            _BASE.replace("    base_url", "    headers:\n      X-A: 1\n      x-a: 2\n    base_url"),
            5,
            "header 'x-a' is given twice",
        ),
        (_BASE.replace("  - name: main\n", "  - name:\n"), 2, "name must be a text value"),
        (_BASE.replace("  - name: main\n", "  - name: ''\n"), 2, "name must not be empty"),
        (_BASE.replace("    base_url: https://api.anthropic.com\n", ""), 2, "needs 'base_url'"),
        (_BASE.replace("match: {model: x}", "match: {model: ''}"), 5, "must not be empty"),
        (_BASE.replace("match: {model: x}", "match: {model: []}"), 5, "must not be an empty list"),
        (
            _BASE.replace("match: {model: x}", "match: {model: {a: b}}"),
            5,
            "model must be a text value",
        ),
        (
            _BASE.replace("match: {model: x}", "match: {client_key: abc}"),
            5,
            "sha256:<16 hex digits>",
        ),
        (_BASE.replace("match: {model: x}", "match: {client_key: 'sha256:0123'}"), 5, "sha256:"),
        (
            _BASE.replace("match: {model: x}", "match: {model: x, model: y}"),
            5,
            "duplicate key 'model'",
        ),
        (_BASE.replace("    action: {provider: main}\n", ""), 5, "a rule needs 'action'"),
        (
            _BASE.replace("action: {provider: main}", "action: {model: m}"),
            6,
            "action needs 'provider'",
        ),
        (_BASE.replace("action: {provider: main}", "action: main"), 6, "action must be a mapping"),
        ("providers: {name: x}\n", 1, "providers must be a list"),
        ("rules: 3\n", 1, "rules must be a list"),
        ("- a\n- b\n", 1, "the config must be a mapping"),
        ("providers:\n  - name: a\n   base_url: x\n", 3, "invalid YAML"),
        ("providers: [\n", 2, "invalid YAML"),
        ("a: 1\n---\nb: 2\n", 2, "invalid YAML"),
        ("rules:\n  - action: {provider: nobody}\n", 2, "unknown provider 'nobody' (none defined)"),
    ],
)
def test_config_errors_name_file_line_and_reason(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, explicit=True, environ={})
    error = caught.value
    assert error.path == path
    assert error.line == line, str(error)
    assert fragment in error.reason, str(error)
    assert str(error).startswith(f"{path}:{line}: ")


def test_error_message_never_echoes_an_api_key(tmp_path: Path) -> None:
    path = write(
        tmp_path, _BASE.replace("    base_url", "    api_key: sk-live-secret\n    base_url")
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, explicit=True, environ={})
    assert "sk-live-secret" not in str(caught.value)


def test_key_with_control_characters_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, _BASE.replace("    base_url", "    api_key_env: K\n    base_url"))
    with pytest.raises(ConfigError, match="control") as caught:
        load_config(path, explicit=True, environ={"K": "sk\r\nx-evil: 1"})
    assert "x-evil" not in str(caught.value)


def test_missing_default_file_means_no_routing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None, explicit=False, environ={})
    assert config == RoutingConfig()
    assert config.route("claude-x", "a", FP_A) is None
    assert config_from_environ({}) == RoutingConfig()
    assert config_from_environ({"CONFIG_FILE": "  "}) == RoutingConfig()


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not found") as caught:
        config_from_environ({"CONFIG_FILE": missing})
    assert caught.value.path == missing
    assert caught.value.line is None
    with pytest.raises(ConfigError):
        load_config(missing, explicit=True, environ={})


def test_default_file_is_used_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, _BASE)
    config = config_from_environ({})
    assert config.path == "config.yaml"
    assert config.route("x", None, None) is not None


@pytest.mark.parametrize("text", ["", "# only a comment\n", "~\n", "providers:\nrules:\n"])
def test_empty_config_routes_nothing(tmp_path: Path, text: str) -> None:
    config = load_config(write(tmp_path, text), explicit=True, environ={})
    assert config.rules == ()
    assert config.route("m", None, None) is None


def test_unreadable_config_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"providers: \xff\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "bad.yaml"), explicit=True, environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path), explicit=False, environ={})  # a directory


def test_scalars_are_read_as_written(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        providers:
          - {name: on, base_url: "http://a", headers: {x-flag: yes, x-v: 1.10}}
        rules:
          - {match: {model: 2024}, action: {provider: on}}
        """,
    )
    config = load_config(path, explicit=True, environ={})
    assert config.providers[0].name == "on"
    assert config.providers[0].headers == (("x-flag", "yes"), ("x-v", "1.10"))
    assert config.route("2024", None, None) is not None


def test_example_config_is_valid() -> None:
    config = load_config(
        str(ROOT / "config.example.yaml"), explicit=True, environ={"TEAM_ANTHROPIC_KEY": "k"}
    )
    assert [p.name for p in config.providers] == ["anthropic-team", "staging"]
    assert len(config.rules) == 3
    route = config.route("claude-opus-4-1", "agent-1", None)
    assert route is not None and route.routed_model == "claude-haiku-4-5"
    route = config.route("x", None, "sha256:0123456789abcdef")
    assert route is not None and route.provider.name == "staging"


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
