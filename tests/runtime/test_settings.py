"""Settings are read once, typed, and refuse bad values by naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runtime.settings import MIB, Settings, SettingsError, env_var_names
from tests.conftest import ROOT


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.workers) == ("127.0.0.1", 3001, 1)
    assert s.anthropic_forward_url == "https://api.anthropic.com"
    assert s.response_header_timeout == 300
    assert s.drain_timeout == 1920
    assert s.request_max_bytes == 32 * MIB
    assert s.log_level == "INFO"
    assert s.mongodb_uri is None


def test_values_parsed() -> None:
    s = Settings.from_env(
        {
            "PORT": "8080",
            "ANTHROPIC_RESPONSE_HEADER_TIMEOUT": "900.5",
            "SANIC_WORKERS": "4",
            "ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9/",
            "LOG_LEVEL": "debug",
            "REQUEST_MAX_BYTES": "1024",
            "UPSTREAM_READ_IDLE_TIMEOUT": "30",
            "WRITER_LINGER": "0",
        }
    )
    assert s.port == 8080 and s.workers == 4 and s.response_header_timeout == 900.5
    assert s.anthropic_forward_url == "http://127.0.0.1:9"
    assert s.log_level == "DEBUG" and s.request_max_bytes == 1024
    assert s.writer_linger == 0
    # Sanic's idle-like response timer must outlast both of our own timeouts.
    assert s.response_timeout_ceiling > 900.5


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("ANTHROPIC_RESPONSE_HEADER_TIMEOUT", "-1"),
        ("ANTHROPIC_RESPONSE_HEADER_TIMEOUT", "nan"),
        ("UPSTREAM_CONNECT_TIMEOUT", "0"),
        ("DRAIN_TIMEOUT", "soon"),
        ("REQUEST_MAX_BYTES", "1.5"),
        ("ANTHROPIC_FORWARD_URL", "api.anthropic.com"),
        ("LOG_LEVEL", "LOUD"),
        ("SANIC_WORKERS", "0"),
        ("MONGODB_URI", "postgres://x"),
        ("WRITER_LINGER", "-0.1"),
        ("WRITER_LINGER", "60"),
        ("STATS_ZONES", "Asia/Bombay_Typo"),
        ("STATS_ZONES", "UTC"),
        ("STATS_ZONES", "Asia/Kolkata,Europe/Paris,America/New_York,Asia/Tokyo,Europe/Berlin"),
    ],
)
def test_invalid_value_names_the_variable(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=var):
        Settings.from_env({var: value})


def test_stats_zones_are_iana_names_listed_once() -> None:
    s = Settings.from_env({"STATS_ZONES": " Asia/Kolkata, America/New_York,Asia/Kolkata,"})
    assert s.stats_zones == ("Asia/Kolkata", "America/New_York")
    assert Settings.from_env({}).stats_zones == ()
    with pytest.raises(SettingsError, match="Asia/Bombay_Typo"):
        Settings.from_env({"STATS_ZONES": "Asia/Kolkata,Asia/Bombay_Typo"})


def test_every_field_has_an_env_var() -> None:
    names = env_var_names()
    assert names["response_header_timeout"] == "ANTHROPIC_RESPONSE_HEADER_TIMEOUT"
    assert names["workers"] == "SANIC_WORKERS"
    assert len(set(names.values())) == len(names)


def test_app_refuses_to_start_on_invalid_setting(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        env={"PORT": "not-a-port", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "PORT" in result.stderr and "not-a-port" in result.stderr
