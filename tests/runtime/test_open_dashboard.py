"""The locked-down default, as a user meets it: `python app.py` on a non-loopback
HOST without DASHBOARD_PASSWORD refuses to start with one line naming both settings
and the opt-out; DASHBOARD_OPEN=true starts it with a loud warning; a loopback HOST
(the default, `make run`) starts without either."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ROOT, start_proxy

# No database: the refusal and the warning are what these tests are about.
QUIET = {"REQUEST_LOG": "false", "ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    "env",
    [
        {"HOST": "0.0.0.0"},
        {"HOST": "0.0.0.0", "DASHBOARD_OPEN": "false", "DASHBOARD_PASSWORD": "  "},
    ],
)
def test_public_host_without_password_refuses_to_start(tmp_path: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        env={"PATH": "/usr/bin:/bin", **QUIET, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("configuration error: HOST=0.0.0.0 ")
    assert "DASHBOARD_PASSWORD" in line and "DASHBOARD_OPEN=true" in line
    assert "Traceback" not in result.stderr


async def test_opt_out_starts_open_with_a_loud_warning(tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path, {**QUIET, "HOST": "0.0.0.0", "DASHBOARD_OPEN": "true"})
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{proxy.url}/api/settings") as resp:
                status = resp.status
    finally:
        code = proxy.stop()
    assert code == 0, proxy.log()
    assert status == 200  # open, as the operator said
    warnings = [line for line in proxy.log().splitlines() if "WARNING" in line]
    assert any("DASHBOARD_OPEN=true" in w and "OPEN" in w and "prompt" in w for w in warnings), (
        proxy.log()
    )


async def test_loopback_host_starts_without_password(tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path, {**QUIET, "HOST": "127.0.0.1"})
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{proxy.url}/api/settings") as resp:
                status = resp.status
    finally:
        code = proxy.stop()
    assert code == 0, proxy.log()
    assert status == 200
    assert "DASHBOARD" not in proxy.log()
