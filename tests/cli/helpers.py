"""Running the real Claude Code CLI (npm) against a proxy process, cut off from the world.

The CLI is installed from npm into `.venv/node/` (pinned to `CLI_VERSION`; the npm
package is a wrapper whose optional per-platform package holds the native binary).
`cli_command` finds it or says what is missing. `cli_env` builds the CLI's whole
environment from nothing: HOME and XDG directories in tmp (no user configuration),
telemetry, error reports and auto-update off, the API at the proxy with a fake key, and
every other HTTP(S) connection sent to an `Outside` listener, which refuses it and
keeps its request line, so a test can assert that nothing but the proxy was contacted.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import ROOT, ProxyProcess, wait_recorded

CLI_PACKAGE = "@anthropic-ai/claude-code"
CLI_VERSION = "2.1.332"
NODE_DIR = ROOT / ".venv" / "node"
INSTALL_HINT = (
    f"npm install --prefix .venv/node --no-save --no-fund --no-audit {CLI_PACKAGE}@{CLI_VERSION}"
)
# The longest one CLI run may take; each run here is a few seconds.
CLI_TIMEOUT = 45.0


def _platform_package() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    return f"{CLI_PACKAGE}-{platform.system().lower()}-{arch or machine}"


def cli_command(node_dir: Path = NODE_DIR) -> tuple[Path | None, str]:
    """(the CLI's executable, "") or (None, what is missing, for a skip or failure)."""
    manifest = node_dir / "node_modules" / CLI_PACKAGE / "package.json"
    if not manifest.exists():
        missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
        why = f" ({' and '.join(missing)} missing on PATH)" if missing else ""
        return None, (
            f"Claude Code CLI {CLI_VERSION} is not installed in {node_dir}{why}; "
            f"install it with `make claude-cli` or `{INSTALL_HINT}`"
        )
    version = json.loads(manifest.read_text()).get("version")
    if version != CLI_VERSION:
        return None, (
            f"{node_dir} holds Claude Code CLI {version}, these tests pin {CLI_VERSION}; "
            f"reinstall with `{INSTALL_HINT}`"
        )
    # The platform package's binary works whether or not npm ran the wrapper's
    # postinstall (which only copies it over the wrapper's placeholder).
    native = node_dir / "node_modules" / _platform_package() / "claude"
    wrapper = node_dir / "node_modules" / ".bin" / "claude"
    for candidate in (native, wrapper):
        if candidate.exists() and os.access(candidate, os.X_OK):
            return candidate, ""
    return None, f"no Claude Code binary for this platform ({_platform_package()}) in {node_dir}"


# ---- the outside world, as a listener that refuses everything ---------------------------
@dataclass
class Outside:
    """An HTTP proxy on loopback that answers 403 to every request and CONNECT, keeping
    their first lines: set as the CLI's HTTP(S)_PROXY, it stands for the internet."""

    seen: list[str] = field(default_factory=list)
    port: int = 0

    def start(self) -> Outside:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._serve, name="outside", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed by stop()
            with conn:
                conn.settimeout(2)
                head = b""
                try:
                    while b"\r\n" not in head and len(head) < 8192:
                        data = conn.recv(4096)
                        if not data:
                            break
                        head += data
                except OSError:
                    pass
                self.seen.append(head.split(b"\r\n", 1)[0].decode("latin-1") or "<nothing>")
                try:
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass


# Off switches documented for Claude Code's environment: the last one implies the others,
# each is also set so a change in that implication cannot turn one back on.
PRIVACY = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
}


def cli_env(
    home: Path,
    base_url: str,
    outside: Outside,
    *,
    api_key: str,
    headers: dict[str, str] | None = None,
    privacy: bool = True,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The CLI's whole environment, built from nothing (nothing of the developer's
    ANTHROPIC_* or ~/.claude leaks in)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "tmp").mkdir(exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",  # the Bash tool needs a shell
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "TMPDIR": str(home / "tmp"),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": api_key,
    }
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = outside.url
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if headers:
        # The CLI's documented way to add request headers: one `Name: value` a line.
        env["ANTHROPIC_CUSTOM_HEADERS"] = "\n".join(f"{k}: {v}" for k, v in headers.items())
    if privacy:
        env.update(PRIVACY)
    env.update(extra or {})
    return env


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def result(self) -> dict[str, Any]:
        """The `--output-format json` result object (the last JSON line printed)."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        assert lines, f"no JSON result printed:\n{self.stdout}\n{self.stderr}"
        return json.loads(lines[-1])


def run_cli(
    command: Path,
    prompt: str,
    *,
    cwd: Path,
    env: dict[str, str],
    args: tuple[str, ...] = (),
    timeout: float = CLI_TIMEOUT,
) -> CliRun:
    """`claude -p PROMPT --output-format json`, non-interactive, stdin closed."""
    began = time.monotonic()
    proc = subprocess.run(
        [str(command), "-p", prompt, "--output-format", "json", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return CliRun(
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
        time.monotonic() - began,
    )


async def session_records(
    http: aiohttp.ClientSession,
    proxy: ProxyProcess,
    session: str,
    answered: int,
    forwarded: int,
    within: float = 30.0,
) -> list[dict[str, Any]]:
    """The log's full documents of one Claude Code session, oldest first, once the
    recorder has stored the `forwarded` records of requests that reached an upstream
    and the session's `answered` exchanges (status 200). The CLI's requests follow one
    another and the recorder stores a worker's records in order, so any request the
    proxy refused itself before the last answered one is stored by then too."""
    await wait_recorded(http, proxy, forwarded)
    deadline = time.monotonic() + within
    while True:
        async with http.get(f"{proxy.url}/api/requests?limit=1000") as resp:
            assert resp.status == 200, await resp.text()
            rows = [r for r in (await resp.json())["requests"] if r.get("sessionId") == session]
        if sum(r["statusCode"] == 200 for r in rows) >= answered:
            break
        assert time.monotonic() < deadline, f"{answered} answered exchanges not stored: {rows}"
        await asyncio.sleep(0.1)
    documents = []
    for row in rows:
        async with http.get(f"{proxy.url}/api/requests/{row['requestId']}") as resp:
            assert resp.status == 200, await resp.text()
            documents.append((await resp.json())["request"])
    return sorted(documents, key=lambda d: d["timestamp"])
