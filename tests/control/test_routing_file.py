"""The routing YAML: errors name file, line and reason; defaults and scalars."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.routing import ConfigError, RoutingConfig
from control.routing_file import config_from_environ, load_config
from tests.conftest import ROOT
from tests.control.routing_helpers import FP_A, write

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
            _BASE.replace("    base_url", "    openai: {thinking: ignore}\n    base_url"),
            3,
            "apply to providers of format openai only",
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
    assert [p.name for p in config.providers] == ["anthropic-team", "staging", "local-vllm"]
    assert len(config.rules) == 4
    route = config.route("claude-opus-4-1", "agent-1", None)
    assert route is not None and route.routed_model == "claude-haiku-4-5"
    route = config.route("x", None, "sha256:0123456789abcdef")
    assert route is not None and route.provider.name == "staging"
    route = config.route("claude-haiku-4-5", "explore-7", None)
    assert route is not None and route.provider.format.value == "openai"
    assert config.fallback_for(route.provider, "qwen3-coder-30b", "claude-x") == (
        config.providers[0],
        "claude-haiku-4-5",
    )
