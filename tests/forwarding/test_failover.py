"""Failover between providers and the circuit breaker, through a real proxy process
to fake Anthropic and OpenAI-format backends, over sockets."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from control.demotion import StreamToMessage
from tests.conftest import ProxyProcess, free_port, start_proxy
from tests.fake_openai import FakeOpenAI
from tests.fake_upstream import FakeUpstream
from tests.fixtures import stream_bytes

MESSAGES = [{"role": "user", "content": "hello"}]
CLIENT = {"x-api-key": "sk-ant-client", "anthropic-version": "2023-06-01"}
COOLDOWN = 2.0  # `brittle`: short enough to wait for, long enough to act within


@pytest.fixture(scope="module")
def backend() -> FakeOpenAI:
    fake = FakeOpenAI()
    fake.start_in_thread()
    return fake


@pytest.fixture(scope="module")
def primary() -> FakeUpstream:
    fake = FakeUpstream()
    fake.start_in_thread()
    return fake


@pytest.fixture(scope="module")
def failing(
    backend: FakeOpenAI,
    primary: FakeUpstream,
    upstream: FakeUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("failover")
    agents = ["team", "local", "dead", "fragile", "brittle", "lonely"]
    rules = "\n".join(f"  - {{match: {{agent: {a}}}, action: {{provider: {a}}}}}" for a in agents)
    (tmp / "routes.yaml").write_text(
        f"""
providers:
  - name: team
    base_url: {primary.url}
    fallback_provider: local
    fallback_models: {{"*": "fake:text"}}
    breaker: off
  - name: local
    format: openai
    base_url: {backend.url}
    fallback_provider: backup
    fallback_models: {{"prefix:fake:": claude-sonnet-4-5}}
    breaker: off
  - name: backup
    base_url: {upstream.url}
    breaker: off
  - name: dead
    base_url: http://127.0.0.1:{free_port()}
    fallback_provider: local
    fallback_models: {{"*": "fake:tools"}}
  - name: fragile
    base_url: {primary.url}
    fallback_provider: local
    fallback_models: {{"*": "fake:text"}}
    breaker: {{failures: 2, cooldown: 600}}
  - name: brittle
    base_url: {primary.url}
    fallback_provider: local
    fallback_models: {{"*": "fake:text"}}
    breaker: {{failures: 1, cooldown: {COOLDOWN}}}
  - name: lonely
    base_url: {primary.url}
    breaker: {{failures: 1, cooldown: 600}}
rules:
{rules}
"""
    )
    proxy = start_proxy(
        tmp,
        {"ANTHROPIC_FORWARD_URL": upstream.url, "CONFIG_FILE": str(tmp / "routes.yaml")},
    )
    yield proxy
    proxy.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


@pytest.fixture(autouse=True)
def clean(primary: FakeUpstream, upstream: FakeUpstream) -> None:
    primary.reset()
    upstream.reset()


async def send(
    http: aiohttp.ClientSession,
    proxy: ProxyProcess,
    agent: str,
    *,
    model: str = "claude-opus-4-5",
    stream: bool = True,
    fake: str | None = None,
) -> tuple[aiohttp.ClientResponse, bytes]:
    headers = {**CLIENT, "x-claude-code-agent-id": agent}
    if fake is not None:
        headers["x-fake"] = fake
    payload = {"model": model, "max_tokens": 64, "stream": stream, "messages": MESSAGES}
    async with http.post(f"{proxy.url}/v1/messages", json=payload, headers=headers) as resp:
        return resp, await resp.read()


def fold(sse: bytes) -> dict[str, Any]:
    folder = StreamToMessage()
    folder.feed(sse)
    status, raw = folder.result()
    assert status == 200, raw
    return json.loads(raw)


async def metric(
    http: aiohttp.ClientSession, proxy: ProxyProcess, name: str, **labels: str
) -> float:
    async with http.get(f"{proxy.url}/metrics") as resp:
        text = (await resp.read()).decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in /metrics")


@pytest.mark.parametrize("status", [529, 429, 500])
async def test_an_anthropic_failure_fails_over_to_the_openai_fallback(
    status: int,
    failing: ProxyProcess,
    primary: FakeUpstream,
    backend: FakeOpenAI,
    http: aiohttp.ClientSession,
) -> None:
    resp, sse = await send(http, failing, "team", fake=f"status:{status}")
    assert resp.status == 200
    assert len(primary.received) == 1
    assert backend.received[-1].body["model"] == "fake:text"  # type: ignore[index]
    assert fold(sse)["content"] == [{"type": "text", "text": "Hello wörld — 你好 🙂!"}]
    reason = {529: "overloaded", 429: "rate_limited", 500: "server_error"}[status]
    counted = await metric(
        http,
        failing,
        "claude_proxy_failovers_total",
        **{"from": "team", "to": "local", "reason": reason},
    )
    assert counted == 1


async def test_an_openai_failure_fails_over_to_an_anthropic_fallback(
    failing: ProxyProcess, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    resp, sse = await send(http, failing, "local", model="fake:status:529", fake="sse:text_basic")
    assert resp.status == 200
    assert sse == stream_bytes("text_basic")  # the fallback's stream, byte for byte
    sent = json.loads(upstream.received[-1].body)
    assert sent["model"] == "claude-sonnet-4-5"  # the fallback's model mapping
    # The client's own credentials go to an Anthropic-format fallback without a key.
    assert ("x-api-key", "sk-ant-client") in upstream.received[-1].headers


async def test_a_refused_connection_fails_over(
    failing: ProxyProcess, backend: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    resp, raw = await send(http, failing, "dead", stream=False)
    assert resp.status == 200
    assert json.loads(raw)["stop_reason"] == "tool_use"
    assert backend.received[-1].body["model"] == "fake:tools"  # type: ignore[index]


async def test_when_every_provider_fails_the_last_error_is_the_answer(
    failing: ProxyProcess, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    resp, raw = await send(http, failing, "local", model="fake:status:503", fake="status:529")
    assert resp.status == 529
    assert json.loads(raw)["error"]["type"] == "overloaded_error"
    assert len(upstream.received) == 1


async def test_client_errors_never_fail_over(
    failing: ProxyProcess, primary: FakeUpstream, backend: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    before = len(backend.received)
    resp, _ = await send(http, failing, "team", fake="status:400")
    assert resp.status == 400
    assert len(backend.received) == before


async def test_no_failover_once_an_anthropic_stream_started(
    failing: ProxyProcess, backend: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    before = len(backend.received)
    resp, sse = await send(http, failing, "team", fake="drop:3")
    assert resp.status == 200
    assert sse.startswith(b"event: message_start")
    assert b"event: error" in sse and b"message_stop" not in sse
    assert len(backend.received) == before  # the fallback was never asked


async def test_no_failover_once_a_translated_stream_started(
    failing: ProxyProcess, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    resp, sse = await send(http, failing, "local", model="fake:error-mid:4")
    assert resp.status == 200
    assert b"event: error" in sse and b"message_stop" not in sse
    assert upstream.received == []


async def test_the_breaker_opens_and_skips_to_the_fallback(
    failing: ProxyProcess,
    primary: FakeUpstream,
    backend: FakeOpenAI,
    http: aiohttp.ClientSession,
) -> None:
    for _ in range(2):
        resp, _ = await send(http, failing, "fragile", fake="status:529")
        assert resp.status == 200  # the fallback answered
    assert len(primary.received) == 2
    assert await metric(http, failing, "claude_proxy_breaker_state", provider="fragile") == 2
    # Open: skipped before any request is made, even one it would have answered.
    asked = len(backend.received)
    resp, sse = await send(http, failing, "fragile", fake="sse:text_basic")
    assert resp.status == 200 and fold(sse)["model"] == "fake:text"
    assert len(primary.received) == 2 and len(backend.received) == asked + 1
    skipped = await metric(
        http,
        failing,
        "claude_proxy_failovers_total",
        **{"from": "fragile", "reason": "circuit_open"},
    )
    assert skipped == 1


async def test_half_open_probe_fails_then_succeeds_and_closes(
    failing: ProxyProcess, primary: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    await send(http, failing, "brittle", fake="status:529")  # opens it (1 failure)
    await send(http, failing, "brittle", fake="json:text_basic")
    assert len(primary.received) == 1  # skipped while open
    await asyncio.sleep(COOLDOWN + 0.2)
    await send(http, failing, "brittle", fake="status:500")  # the probe fails: open again
    assert len(primary.received) == 2
    await send(http, failing, "brittle", fake="json:text_basic")
    assert len(primary.received) == 2
    assert await metric(http, failing, "claude_proxy_breaker_state", provider="brittle") == 2
    await asyncio.sleep(COOLDOWN + 0.2)
    resp, _ = await send(http, failing, "brittle", fake="json:text_basic")  # the probe succeeds
    assert resp.status == 200 and len(primary.received) == 3
    assert await metric(http, failing, "claude_proxy_breaker_state", provider="brittle") == 0
    await send(http, failing, "brittle", fake="json:text_basic")  # closed: straight there
    assert len(primary.received) == 4


async def test_an_open_breaker_without_fallback_answers_529_at_once(
    failing: ProxyProcess, primary: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    resp, raw = await send(http, failing, "lonely", fake="status:529")
    assert resp.status == 529 and len(primary.received) == 1  # the provider's own answer
    resp, raw = await send(http, failing, "lonely", fake="json:text_basic")
    assert resp.status == 529 and len(primary.received) == 1
    assert 500 < int(resp.headers["retry-after"]) <= 600
    error = json.loads(raw)["error"]
    assert error["type"] == "overloaded_error" and "circuit breaker" in error["message"]
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-proxy-request-id"])
