"""The real Claude Code CLI (npm, pinned in tests/cli/helpers.py) through `python app.py`.

`claude -p` runs non-interactively with ANTHROPIC_BASE_URL at the proxy, a fake key,
its HOME in tmp and every other HTTP(S) connection sent to `Outside`, which stands
for the internet. The fake Anthropic upstream plays the model (tests/cli/fake_model.py):
it asks for a tool, Claude Code runs it and sends the result, the model answers from
that result. The tests read what the CLI printed, what the upstream received and what
the proxy logged; expected costs are computed here from list prices, and checked
against the CLI's own `total_cost_usd` too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cli.conftest import (
    OPENAI_KEY,
    OPENAI_MODEL,
    OPENAI_PROVIDER,
    OPENAI_RULE,
    SECRET,
    Workspace,
)
from tests.cli.fake_model import (
    USAGE,
    ClaudeCodeOpenAI,
    FakeClaude,
    Plan,
    Turn,
    last_tool_result,
)
from tests.cli.helpers import CLI_VERSION, CliRun, Outside, cli_env, run_cli, session_records
from tests.conftest import ProxyProcess
from tests.fake_upstream import FakeUpstream

KEY = "sk-ant-api03-cli-test-not-a-real-key"
MODEL = "claude-opus-5-5"
PROMPT = "What is the secret word in notes.txt?"
MTOK = 1_000_000
# Claude Opus 5.5 list prices, USD per million tokens (platform.claude.com/docs/en/models/
# opus-5-5/overview, checked 2026-12): input 4, output 20, 5-minute cache write 5,
# 1-hour write 8, cache read 0.20.
OPUS_5_5 = {"input": 4.0, "output": 20.0, "write_5m": 5.0, "write_1h": 8.0, "read": 0.20}


def usd(usage: dict[str, Any], rates: dict[str, float]) -> float:
    split = usage.get("cache_creation") or {}
    hour = split.get("ephemeral_1h_input_tokens", 0)
    five = usage.get("cache_creation_input_tokens", 0) - hour
    return (
        usage["input_tokens"] * rates["input"]
        + usage["output_tokens"] * rates["output"]
        + five * rates["write_5m"]
        + hour * rates["write_1h"]
        + usage.get("cache_read_input_tokens", 0) * rates["read"]
    ) / MTOK


def found_secret(prefix: str, source: str = "") -> Callable[[str], str]:
    """An answer that repeats the secret word only if the tool result holds it (after
    `source`, when given: the subagent's report rather than the prompt)."""

    def answer(text: str) -> str:
        match = re.search(rf"{source}[^\n]*?secret word is (\w+)", text)
        return f"{prefix}: the secret word is {match.group(1)}." if match else f"{prefix}: none"

    return answer


def start(
    claude_cli: Path,
    workspace: Workspace,
    proxy: ProxyProcess,
    outside: Outside,
    fake: str,
    *,
    privacy: bool = True,
    extra: dict[str, str] | None = None,
) -> CliRun:
    """The CLI on PROMPT; `fake` (the upstream's `x-fake` value) goes on every request
    as a custom header, the CLI's documented way to add one."""
    env = cli_env(
        workspace.home,
        proxy.url,
        outside,
        api_key=KEY,
        headers={"x-fake": fake},
        privacy=privacy,
        extra=extra,
    )
    run = run_cli(claude_cli, PROMPT, cwd=workspace.work, env=env, args=("--model", MODEL))
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    return run


def by_reply(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Log documents by the id of the message they answered with."""
    return {d["response"]["body"]["id"]: d for d in documents}


def assert_logged(doc: dict[str, Any], turn: Turn, session: str) -> None:
    """One exchange in the log as Claude Code made it: its session, the request and the
    streamed answer folded into the message, usage verbatim and cost at list price."""
    assert turn.reply is not None
    assert doc["sessionId"] == session
    assert (doc["method"], doc["endpoint"], doc["query"]) == ("POST", "/v1/messages", "beta=true")
    assert doc["userAgent"].startswith(f"claude-cli/{CLI_VERSION} ")
    assert doc["clientKeyFingerprint"].startswith("sha256:")
    assert KEY not in json.dumps(doc)
    assert (doc["statusCode"], doc["outcome"], doc["isStreaming"]) == (200, "completed", True)
    assert doc["stopReason"] == turn.reply["stop_reason"]
    # Bodies as sent: the request, and the streamed answer folded into its message.
    assert doc["request"]["body"] == json.loads(turn.request.body)
    assert doc["response"]["body"] == turn.reply
    sent = USAGE[turn.kind]
    assert {k: doc["usage"][k] for k in sent} == sent
    assert doc["cost"]["usd"] == pytest.approx(usd(sent, OPUS_5_5), rel=1e-9)
    assert doc["cost"]["pricedAs"] == MODEL and doc["unpriced"] is False


def assert_tool_round_trip(ask: Turn, answer: Turn, tool: str) -> str:
    """The tool the model asked for came back as a tool_result for that same call;
    returns the result's text."""
    assert ask.reply is not None
    (call,) = [b for b in ask.reply["content"] if b["type"] == "tool_use"]
    assert call["name"] == tool
    result = last_tool_result(json.loads(answer.request.body)["messages"])
    assert result is not None and result["tool_use_id"] == call["id"]
    assert not result.get("is_error"), result
    content = result["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


async def test_a_tool_using_turn_through_the_proxy(
    claude_cli: Path,
    cli_proxy: ProxyProcess,
    cli_upstream: FakeUpstream,
    outside: Outside,
    workspace: Workspace,
) -> None:
    model = FakeClaude(Plan("Read", {"file_path": str(workspace.note)}, found_secret("FINAL")))
    fake = cli_upstream.respond("read-turn", model)
    run = start(claude_cli, workspace, cli_proxy, outside, fake)

    result = run.result()
    assert result["is_error"] is False and result["num_turns"] == 2
    assert result["result"] == f"FINAL: the secret word is {SECRET}."
    assert [t.kind for t in model.turns] == ["main-ask", "main-answer"]
    ask, answer = model.turns
    assert SECRET in assert_tool_round_trip(ask, answer, "Read")
    # One session id on every request, the one the CLI reports; no subagent.
    assert {t.session for t in model.turns} == {result["session_id"]}
    assert {t.agent for t in model.turns} == {None}
    assert outside.seen == []  # nothing but the proxy was contacted

    async with aiohttp.ClientSession() as http:
        docs = await session_records(
            http, cli_proxy, result["session_id"], len(model.turns), len(cli_upstream.received)
        )
    assert len(docs) == 2
    logged = by_reply(docs)
    for turn in model.turns:
        assert turn.reply is not None
        assert_logged(logged[turn.reply["id"]], turn, result["session_id"])
        assert logged[turn.reply["id"]]["conversation"]["thread"] == "main"
    # The proxy's bill is the CLI's own, computed independently from the same usage.
    assert sum(d["cost"]["usd"] for d in docs) == pytest.approx(result["total_cost_usd"])


async def test_a_subagent_on_the_anthropic_path(
    claude_cli: Path,
    cli_proxy: ProxyProcess,
    cli_upstream: FakeUpstream,
    outside: Outside,
    workspace: Workspace,
) -> None:
    task = {
        "description": "Find the secret word",
        "prompt": f"Read {workspace.note} and report the secret word.",
        "subagent_type": "general-purpose",
        "run_in_background": False,  # its report comes back as the tool result
    }
    model = FakeClaude(
        main=Plan("Agent", task, found_secret("FINAL", source="SUB:")),
        sub=Plan("Read", {"file_path": str(workspace.note)}, found_secret("SUB")),
    )
    fake = cli_upstream.respond("subagent-turn", model)
    run = start(claude_cli, workspace, cli_proxy, outside, fake)

    result = run.result()
    assert result["result"] == f"FINAL: the secret word is {SECRET}."
    assert result["subagent_stats"]["completed"] == 1
    kinds = [t.kind for t in model.turns]
    assert kinds == ["main-ask", "sub-ask", "sub-answer", "main-answer"]
    main_ask, sub_ask, sub_answer, main_answer = model.turns
    assert SECRET in assert_tool_round_trip(sub_ask, sub_answer, "Read")
    report = assert_tool_round_trip(main_ask, main_answer, "Agent")
    assert f"SUB: the secret word is {SECRET}." in report
    # The subagent's requests carry its agent id, the main agent's none; one session.
    assert main_ask.agent is None and main_answer.agent is None
    assert sub_ask.agent and sub_ask.agent == sub_answer.agent
    assert {t.session for t in model.turns} == {result["session_id"]}
    assert outside.seen == []

    async with aiohttp.ClientSession() as http:
        docs = await session_records(
            http, cli_proxy, result["session_id"], len(model.turns), len(cli_upstream.received)
        )
    assert len(docs) == 4
    logged = by_reply(docs)
    for turn in model.turns:
        assert turn.reply is not None
        doc = logged[turn.reply["id"]]
        assert_logged(doc, turn, result["session_id"])
        thread = "subagent" if turn.agent else "main"
        assert (doc["conversation"]["thread"], doc["conversation"]["agentId"]) == (
            thread,
            turn.agent,
        )
    assert sum(d["cost"]["usd"] for d in docs) == pytest.approx(result["total_cost_usd"])


def test_outside_catches_what_the_cli_contacts_when_not_told_otherwise(
    claude_cli: Path,
    cli_proxy: ProxyProcess,
    cli_upstream: FakeUpstream,
    outside: Outside,
    workspace: Workspace,
) -> None:
    """Without the off switches this CLI version reaches for api.anthropic.com on its
    own (telemetry and the like): the stand-in for the internet sees those attempts
    and refuses them, so the empty `outside.seen` of the other tests means something."""
    model = FakeClaude(Plan("Read", {"file_path": str(workspace.note)}, found_secret("FINAL")))
    fake = cli_upstream.respond("unguarded", model)
    run = start(claude_cli, workspace, cli_proxy, outside, fake, privacy=False)
    assert run.result()["result"] == f"FINAL: the secret word is {SECRET}."
    assert outside.seen, "the CLI contacted nothing beyond the proxy even unguarded"
    assert all(line == "CONNECT api.anthropic.com:443 HTTP/1.1" for line in outside.seen), (
        outside.seen
    )


# ---- the subagent routed to an OpenAI-format backend ------------------------------------
def _openai_usage(chunks: list[dict[str, Any]]) -> dict[str, int]:
    (usage,) = [c["usage"] for c in chunks if c.get("usage")]
    return usage


@pytest.mark.parametrize(
    "betas",
    [
        # Claude Code 2.1.332 with its default betas sends, on every request, a system
        # message with a per-message `output_config.effort` and a deferred-tool
        # placeholder with `defer_loading: true`.
        pytest.param({}, id="default"),
        # Without the experimental betas it sends neither.
        pytest.param({"CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS": "1"}, id="no-experimental-betas"),
    ],
)
async def test_a_subagent_routed_to_an_openai_backend(
    betas: dict[str, str],
    claude_cli: Path,
    routed_proxy: ProxyProcess,
    routed_upstream: FakeUpstream,
    openai_backend: ClaudeCodeOpenAI,
    outside: Outside,
    workspace: Workspace,
) -> None:
    task = {
        "description": "Find the secret word",
        "prompt": f"Read {workspace.note} and report the secret word.",
        "subagent_type": "general-purpose",
        "run_in_background": False,
    }
    # The subagent is played by the OpenAI backend: a Read call, then "Tool said: …".
    model = FakeClaude(main=Plan("Agent", task, found_secret("FINAL", source="Tool said:")))
    openai_backend.auto_tool = ("Read", {"file_path": str(workspace.note)})
    first = len(openai_backend.received)
    fake = routed_upstream.respond(f"routed-{len(betas)}", model)
    run = start(claude_cli, workspace, routed_proxy, outside, fake, extra=betas)

    result = run.result()
    assert result["result"] == f"FINAL: the secret word is {SECRET}.", run.stdout
    assert result["subagent_stats"]["completed"] == 1
    assert outside.seen == []
    # The Anthropic API saw the main agent only; the subagent went to the backend.
    assert [t.kind for t in model.turns] == ["main-ask", "main-answer"]
    report = assert_tool_round_trip(*model.turns, "Agent")
    assert f"the secret word is {SECRET}" in report and "Tool said:" in report

    calls = openai_backend.received[first:]
    assert len(calls) == 2, [c.body for c in calls]  # a tool call, then the answer
    answers = openai_backend.answers[-2:]
    for call in calls:
        assert call.path == "/v1/chat/completions"
        assert call.headers["authorization"] == f"Bearer {OPENAI_KEY}"
        assert KEY not in json.dumps(call.headers)  # the client's key stays home
        body = call.body
        assert body is not None and body["model"] == OPENAI_MODEL
        # Streamed, with usage asked for; no silent retry without streaming.
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        functions = {t["function"]["name"]: t["function"] for t in body["tools"]}
        assert functions["Read"]["parameters"]["required"] == ["file_path"]
        assert "reasoning_effort" not in body  # the route's thinking option: ignore
        if not betas:
            # The deferred-tool placeholder went as a function; the system message
            # stating the environment (and the per-message effort) stayed in place.
            assert "DeferredToolPlaceholder" in functions
            environment = [
                m
                for m in body["messages"][1:]
                if m["role"] == "system" and str(workspace.work) in json.dumps(m["content"])
            ]
            assert environment and all(set(m) == {"role", "content"} for m in environment)
    ask_body, answer_body = calls[0].body, calls[1].body
    assert ask_body is not None and answer_body is not None
    (assistant,) = [m for m in answer_body["messages"] if m.get("tool_calls")]
    (tool_call,) = assistant["tool_calls"]
    assert tool_call["function"]["name"] == "Read"
    assert json.loads(tool_call["function"]["arguments"]) == {"file_path": str(workspace.note)}
    (tool,) = [m for m in answer_body["messages"] if m["role"] == "tool"]
    assert tool["tool_call_id"] == tool_call["id"]
    assert f"secret word is {SECRET}" in json.dumps(tool["content"])

    forwarded = len(routed_upstream.received) + len(openai_backend.received)
    async with aiohttp.ClientSession() as http:
        answered = len(model.turns) + len(calls)
        docs = await session_records(http, routed_proxy, result["session_id"], answered, forwarded)
    # Nothing was refused on the subagent's route: the CLI never had to retry.
    assert [d["statusCode"] for d in docs] == [200] * 4, [d["errorReason"] for d in docs]
    main_docs = [d for d in docs if d["conversation"]["agentId"] is None]
    sub_docs = [d for d in docs if d["conversation"]["agentId"] is not None]
    logged = by_reply(main_docs)
    for turn in model.turns:
        assert turn.reply is not None
        assert_logged(logged[turn.reply["id"]], turn, result["session_id"])
        assert logged[turn.reply["id"]]["provider"] == "anthropic"
    assert [d["stopReason"] for d in sub_docs] == ["tool_use", "end_turn"]
    # The working directory Claude Code states, whichever message states it.
    assert {d["conversation"]["projectPath"] for d in docs} == {str(workspace.work)}
    for doc, chunks in zip(sub_docs, answers, strict=True):
        assert doc["sessionId"] == result["session_id"]
        assert doc["conversation"]["thread"] == "subagent"
        assert (doc["provider"], doc["providerFormat"]) == (OPENAI_PROVIDER, "openai")
        assert (doc["originalModel"], doc["routedModel"]) == (MODEL, OPENAI_MODEL)
        assert doc["routeRule"] == OPENAI_RULE
        tried = [(a["provider"], a["format"], a["model"], a["status"]) for a in doc["attempts"]]
        assert tried == [(OPENAI_PROVIDER, "openai", OPENAI_MODEL, 200)]
        assert (doc["statusCode"], doc["outcome"], doc["isStreaming"]) == (200, "completed", True)
        usage = _openai_usage(chunks)
        assert doc["usage"]["input_tokens"] == usage["prompt_tokens"]
        assert doc["usage"]["output_tokens"] == usage["completion_tokens"]
        # A model the price table does not know is flagged, never billed at $0.
        assert doc["cost"] is None and doc["unpriced"] is True
    (tool_use,) = [b for b in sub_docs[0]["response"]["body"]["content"] if b["type"] == "tool_use"]
    assert (tool_use["name"], tool_use["input"]) == ("Read", {"file_path": str(workspace.note)})
