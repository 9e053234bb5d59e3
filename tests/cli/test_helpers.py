"""The CLI harness itself, without the CLI: the fake upstream's `call:` responders, the
fake model's turn detection and stream, finding the CLI, its environment, `Outside`."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streaming.accumulator import accumulate, finalize
from streaming.sse import SSEDecoder
from tests.cli import helpers
from tests.cli.fake_model import USAGE, ClaudeCodeOpenAI, FakeClaude, Plan, message_sse
from tests.cli.helpers import CLI_PACKAGE, CLI_VERSION, Outside, cli_command, cli_env
from tests.fake_upstream import FakeUpstream, Received, build_script


def _request(
    body: dict[str, Any], *, agent: str | None = None, path: str = "/v1/messages?beta=true"
) -> Received:
    headers = [("x-claude-code-session-id", "sess-1")]
    if agent:
        headers.append(("X-Claude-Code-Agent-Id", agent))
    return Received("POST", path, headers, json.dumps(body).encode())


def _fold(raw: bytes) -> dict[str, Any] | None:
    decoder = SSEDecoder()
    snapshot = None
    for event in [*decoder.decode(raw), *decoder.flush()]:
        assert event.event == json.loads(event.data)["type"]  # `event:` lines present
        snapshot = accumulate(json.loads(event.data), snapshot)
    return finalize(snapshot)


TOOLS = [{"name": "Read", "input_schema": {"type": "object"}}]
PROMPT = {"role": "user", "content": [{"type": "text", "text": "find it"}]}
# Claude Code 2.1 puts its environment in a system message after the prompt.
ENVIRONMENT = {"role": "system", "content": [{"type": "text", "text": "# Environment"}]}


def _model() -> FakeClaude:
    return FakeClaude(
        main=Plan("Read", {"file_path": "/w/n.txt"}, lambda text: f"MAIN saw {text}"),
        sub=Plan("Grep", {"pattern": "x"}, lambda text: f"SUB saw {text}"),
    )


# ---- the fake upstream's request-aware responders -------------------------------------
async def test_call_scenario_answers_with_what_the_responder_returns() -> None:
    fake = FakeUpstream()
    fake.start_in_thread()
    seen: list[Received] = []

    def responder(request: Received) -> Any:
        seen.append(request)
        if request.path_qs.startswith("/v1/messages/count_tokens"):
            return None  # the default answer
        return build_script(418, {"x-answer": "yes"}, b'{"made":"here"}', sse=False)

    value = fake.respond("probe", responder)
    assert value == "call:probe"
    async with aiohttp.ClientSession() as http:
        url = fake.url + "/v1/messages?beta=true"
        async with http.post(url, data=b'{"a":1}', headers={"x-fake": value}) as resp:
            assert resp.status == 418 and resp.headers["x-answer"] == "yes"
            assert resp.headers["request-id"].startswith("req_fake")
            assert await resp.read() == b'{"made":"here"}'
        url = fake.url + "/v1/messages/count_tokens"
        async with http.post(url, data=b"{}", headers={"x-fake": value}) as resp:
            assert await resp.json() == {"input_tokens": 42}
        async with http.post(url, data=b"{}", headers={"x-fake": "call:nobody"}) as resp:
            assert resp.status == 400
    assert [r.path_qs for r in seen] == ["/v1/messages?beta=true", "/v1/messages/count_tokens"]
    assert seen[0].body == b'{"a":1}' and ("x-fake", value) in seen[0].headers


def test_build_script_cuts_sse_after_each_event() -> None:
    raw = b"event: ping\ndata: {}\n\nevent: ping\ndata: {}\n\n"
    assert build_script(200, {}, raw, sse=True).chunks == (raw[:22], raw[22:])
    assert build_script(200, {}, raw, sse=False).chunks == (raw,)


# ---- the fake model ------------------------------------------------------------------------
def test_a_prompt_gets_a_tool_call_and_a_tool_result_gets_the_answer() -> None:
    model = _model()
    first = model(_request({"model": "m", "tools": TOOLS, "messages": [PROMPT, ENVIRONMENT]}))
    assert first is not None and first.sse
    ask = model.turns[-1]
    assert ask.kind == "main-ask" and ask.session == "sess-1" and ask.agent is None
    assert ask.reply is not None and ask.reply["stop_reason"] == "tool_use"
    (call,) = [b for b in ask.reply["content"] if b["type"] == "tool_use"]
    assert (call["name"], call["input"]) == ("Read", {"file_path": "/w/n.txt"})
    result = {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": call["id"], "content": [{"text": "42"}]},
            {"type": "text", "text": "<system-reminder>x</system-reminder>"},
        ],
    }
    history = [PROMPT, ENVIRONMENT, {"role": "assistant", "content": ask.reply["content"]}]
    model(_request({"model": "m", "tools": TOOLS, "messages": [*history, result]}))
    answer = model.turns[-1]
    assert answer.kind == "main-answer" and answer.reply is not None
    assert answer.reply["content"] == [{"type": "text", "text": "MAIN saw 42"}]
    assert answer.reply["id"] != ask.reply["id"]
    assert answer.reply["usage"] == USAGE["main-answer"]


def test_requests_with_an_agent_id_follow_the_subagent_plan() -> None:
    model = _model()
    model(_request({"model": "m", "tools": TOOLS, "messages": [PROMPT]}, agent="a1"))
    turn = model.turns[-1]
    assert (turn.kind, turn.agent) == ("sub-ask", "a1")
    assert turn.reply is not None and turn.reply["content"][1]["name"] == "Grep"
    error = {"type": "tool_result", "tool_use_id": "t", "content": "boom", "is_error": True}
    model(
        _request({"tools": TOOLS, "messages": [{"role": "user", "content": [error]}]}, agent="a1")
    )
    assert model.turns[-1].reply is not None
    assert model.turns[-1].reply["content"][0]["text"] == "SUB saw ERROR: boom"


def test_other_requests_get_the_default_answer() -> None:
    model = FakeClaude(main=Plan("Read", {}, str))
    assert model(_request({"model": "m", "messages": [PROMPT]})) is None  # no tools
    assert model(_request({}, path="/v1/messages/count_tokens?beta=true")) is None
    assert model(_request({"tools": TOOLS, "messages": [PROMPT]}, agent="a")) is None  # no sub
    assert [t.kind for t in model.turns] == ["other", "other", "other"]


def test_message_sse_folds_back_into_the_message() -> None:
    model = _model()
    model(_request({"model": "claude-x", "tools": TOOLS, "messages": [PROMPT]}))
    reply = model.turns[-1].reply
    assert reply is not None
    assert _fold(message_sse(reply)) == reply


def test_the_openai_fake_answers_past_claude_codes_trailing_system_messages() -> None:
    backend = ClaudeCodeOpenAI(auto_tool=("Read", {"file_path": "/w/n.txt"}))
    tools = [{"type": "function", "function": {"name": "Read", "parameters": {}}}]
    system = {"role": "system", "content": "# Environment"}
    asked = [{"role": "user", "content": "find it"}, system]
    chunks = backend._auto({"tools": tools, "messages": asked})
    calls = [c["choices"][0]["delta"].get("tool_calls") for c in chunks if c.get("choices")]
    names = [t[0]["function"].get("name") for t in calls if t]
    assert "Read" in names
    tool = {"role": "tool", "tool_call_id": "call_auto0001", "content": "the word"}
    done = backend._auto({"tools": tools, "messages": [*asked, tool, system]})
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in done if c.get("choices"))
    assert text == "Tool said: the word"
    assert backend.answers == [chunks, done]


# ---- finding the CLI -------------------------------------------------------------------------
def _install(root: Path, version: str) -> Path:
    package = root / "node_modules" / CLI_PACKAGE
    package.mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": CLI_PACKAGE, "version": version}))
    return root


def test_a_missing_cli_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    command, missing = cli_command(tmp_path)
    assert command is None
    assert CLI_VERSION in missing and "make claude-cli" in missing and str(tmp_path) in missing


def test_a_wrong_version_or_a_missing_binary_is_named(tmp_path: Path) -> None:
    command, missing = cli_command(_install(tmp_path / "old", "2.0.1"))
    assert command is None and "2.0.1" in missing and CLI_VERSION in missing
    command, missing = cli_command(_install(tmp_path / "nobin", CLI_VERSION))
    assert command is None and "no Claude Code binary" in missing


def test_the_platform_binary_is_preferred(tmp_path: Path) -> None:
    root = _install(tmp_path, CLI_VERSION)
    native = root / "node_modules" / helpers._platform_package() / "claude"
    wrapper = root / "node_modules" / ".bin" / "claude"
    for path in (native, wrapper):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    assert cli_command(root) == (native, "")
    native.unlink()
    assert cli_command(root) == (wrapper, "")


# ---- the CLI's environment and the stand-in for the internet --------------------------------
def test_the_environment_is_built_from_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_MODEL", "leaked")
    outside = Outside(port=4321)
    env = cli_env(tmp_path / "h", "http://127.0.0.1:9", outside, api_key="k", headers={"a": "1"})
    assert "ANTHROPIC_MODEL" not in env and os.environ["ANTHROPIC_MODEL"] == "leaked"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9" and env["ANTHROPIC_API_KEY"] == "k"
    assert env["ANTHROPIC_CUSTOM_HEADERS"] == "a: 1"
    assert env["HTTPS_PROXY"] == env["https_proxy"] == env["HTTP_PROXY"] == outside.url
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    for name in ("HOME", "CLAUDE_CONFIG_DIR", "XDG_CONFIG_HOME", "TMPDIR"):
        assert env[name].startswith(str(tmp_path / "h"))
    assert Path(env["TMPDIR"]).is_dir()
    bare = cli_env(tmp_path / "h", "http://x", outside, api_key="k", privacy=False)
    assert "DISABLE_TELEMETRY" not in bare and "ANTHROPIC_CUSTOM_HEADERS" not in bare


def test_outside_refuses_and_remembers_every_connection() -> None:
    outside = Outside().start()
    try:
        for line in (b"CONNECT api.example:443 HTTP/1.1", b"GET http://x/ HTTP/1.1"):
            with socket.create_connection(("127.0.0.1", outside.port), timeout=5) as sock:
                sock.sendall(line + b"\r\nHost: x\r\n\r\n")
                assert sock.recv(64).startswith(b"HTTP/1.1 403")
    finally:
        outside.stop()
    assert outside.seen == ["CONNECT api.example:443 HTTP/1.1", "GET http://x/ HTTP/1.1"]
