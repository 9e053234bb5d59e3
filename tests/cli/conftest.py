"""Fixtures for the real Claude Code CLI tests: the CLI, a proxy process with its own
fake Anthropic upstream and request log, the stand-in for the internet, a workspace."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.fake_model import ClaudeCodeOpenAI
from tests.cli.helpers import Outside, cli_command
from tests.conftest import ProxyProcess, start_proxy
from tests.fake_upstream import FakeUpstream

SECRET = "pelican"
OPENAI_KEY = "sk-openai-cli-test-key"
OPENAI_PROVIDER = "local-openai"
OPENAI_RULE = "subagents-to-openai"
OPENAI_MODEL = "fake-small"


@pytest.fixture(scope="session")
def claude_cli() -> Path:
    """The pinned CLI; missing, the tests skip naming what is missing, except in CI
    (`CI` set, as `.ci/run` runs), where they must run and so fail."""
    command, missing = cli_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Claude Code CLI tests: {missing}")
        pytest.skip(missing)
    return command


@pytest.fixture(scope="module")
def cli_upstream() -> FakeUpstream:
    """A fake Anthropic API for this module alone, so what it received is the CLI's."""
    fake = FakeUpstream()
    fake.start_in_thread()
    return fake


@pytest.fixture(scope="module")
def cli_proxy(
    cli_upstream: FakeUpstream, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    handle = start_proxy(
        tmp_path_factory.mktemp("cli_proxy"),
        {"ANTHROPIC_FORWARD_URL": cli_upstream.url, "MONGODB_URI": mongo_uri},
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def openai_backend() -> ClaudeCodeOpenAI:
    fake = ClaudeCodeOpenAI(api_key=OPENAI_KEY)
    fake.start_in_thread()
    return fake


@pytest.fixture(scope="module")
def routed_upstream() -> FakeUpstream:
    """The routed proxy's own fake Anthropic API: what each proxy forwarded is counted
    apart (`wait_recorded` compares with the proxy's own total)."""
    fake = FakeUpstream()
    fake.start_in_thread()
    return fake


@pytest.fixture(scope="module")
def routed_proxy(
    routed_upstream: FakeUpstream,
    openai_backend: ClaudeCodeOpenAI,
    mongo_uri: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    """A proxy whose routing sends every subagent request (an agent id present) to the
    fake OpenAI backend; the main agent's requests go to the fake Anthropic API."""
    tmp = tmp_path_factory.mktemp("routed_proxy")
    config = tmp / "routing.yaml"
    config.write_text(
        f"""providers:
  - name: {OPENAI_PROVIDER}
    format: openai
    base_url: {openai_backend.url}
    api_key_env: CLI_TEST_OPENAI_KEY
    openai:
      thinking: ignore   # Claude Code always asks for adaptive thinking
rules:
  - name: {OPENAI_RULE}
    match:
      agent: "*"
    action:
      provider: {OPENAI_PROVIDER}
      model: {OPENAI_MODEL}
"""
    )
    handle = start_proxy(
        tmp,
        {
            "ANTHROPIC_FORWARD_URL": routed_upstream.url,
            "MONGODB_URI": mongo_uri,
            "CONFIG_FILE": str(config),
            "CLI_TEST_OPENAI_KEY": OPENAI_KEY,
        },
    )
    yield handle
    handle.stop()


@pytest.fixture
def outside() -> Iterator[Outside]:
    listener = Outside().start()
    yield listener
    listener.stop()


@dataclass(frozen=True)
class Workspace:
    home: Path  # HOME, XDG dirs, CLAUDE_CONFIG_DIR, TMPDIR
    work: Path  # the CLI's working directory
    note: Path  # a small file in it that a tool reads


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    work = tmp_path / "work"
    work.mkdir()
    note = work / "notes.txt"
    note.write_text(f"the secret word is {SECRET}\n")
    return Workspace(tmp_path / "home", work, note)
