"""Requests routed to an OpenAI-format provider, through a real proxy process to the
fake OpenAI-compatible backend, over sockets: translated both ways, JSON and SSE."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from control.demotion import StreamToMessage
from providers import from_openai_response
from tests.conftest import ProxyProcess, start_proxy
from tests.fake_openai import FakeOpenAI
from tests.fake_upstream import FakeUpstream
from tests.providers.openai_chunks import completion_from_chunks, scenario_chunks

KEY = "sk-local-backend"
CLIENT = {"x-api-key": "sk-ant-client-secret", "anthropic-version": "2023-06-01"}
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [
    {"name": "get_weather", "input_schema": {"type": "object"}},
    {"name": "get_time", "input_schema": {"type": "object"}},
]
COMPLETE = ["text", "tools", "interleaved", "forced", "cached", "reasoning", "length", "refusal"]


@pytest.fixture(scope="module")
def backend() -> FakeOpenAI:
    fake = FakeOpenAI(api_key=KEY)
    fake.start_in_thread()
    return fake


def routes(backend: FakeOpenAI) -> str:
    return f"""
providers:
  - name: local
    format: openai
    base_url: {backend.url}
    api_key_env: LOCAL_KEY
    breaker: off
  - name: local-split
    format: openai
    base_url: {backend.url}
    api_key_env: LOCAL_KEY
    headers: {{x-fake-openai-split: "7"}}
    breaker: off
  - name: thinker
    format: openai
    base_url: {backend.url}
    api_key_env: LOCAL_KEY
    openai: {{max_tokens_field: max_completion_tokens, thinking: reasoning_effort}}
    breaker: off
rules:
  - match: {{agent: split}}
    action: {{provider: local-split}}
  - match: {{agent: thinker}}
    action: {{provider: thinker}}
  - match: {{model: "prefix:fake:"}}
    action: {{provider: local}}
  - name: haiku-locally
    match: {{model: claude-haiku-4-5}}
    action: {{provider: local, model: "fake:tools"}}
"""


def _start(
    backend: FakeOpenAI,
    upstream: FakeUpstream,
    factory: pytest.TempPathFactory,
    **env: str,
) -> ProxyProcess:
    tmp = factory.mktemp("openai")
    (tmp / "routes.yaml").write_text(routes(backend))
    return start_proxy(
        tmp,
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "CONFIG_FILE": str(tmp / "routes.yaml"),
            "LOCAL_KEY": KEY,
            "ANTHROPIC_RESPONSE_HEADER_TIMEOUT": "2",
            "UPSTREAM_READ_IDLE_TIMEOUT": "5",
            **env,
        },
    )


@pytest.fixture(scope="module")
def routed(
    backend: FakeOpenAI, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    proxy = _start(backend, upstream, tmp_path_factory)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def demoting(
    backend: FakeOpenAI, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    proxy = _start(backend, upstream, tmp_path_factory, ANTHROPIC_DEMOTE_NONSTREAMING="true")
    yield proxy
    proxy.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


def body(model: str, *, stream: bool, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 256,
        "stream": stream,
        "messages": MESSAGES,
        "tools": TOOLS,
        **extra,
    }


async def post(
    http: aiohttp.ClientSession,
    proxy: ProxyProcess,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
    path: str = "/v1/messages",
) -> tuple[aiohttp.ClientResponse, bytes]:
    async with http.post(
        f"{proxy.url}{path}", json=payload, headers={**CLIENT, **(headers or {})}
    ) as resp:
        return resp, await resp.read()


def fold(sse: bytes) -> tuple[int, dict[str, Any]]:
    folder = StreamToMessage()
    folder.feed(sse)
    status, raw = folder.result()
    return status, json.loads(raw)


def expected(name: str, request_id: str, model: str | None = None) -> dict[str, Any]:
    return from_openai_response(
        completion_from_chunks(scenario_chunks(name)),
        model=model or f"fake:{name}",
        request_id=request_id,
    )


def event_names(sse: bytes) -> list[str]:
    return [
        line[len("event: ") :] for line in sse.decode().splitlines() if line.startswith("event:")
    ]


@pytest.mark.parametrize("name", COMPLETE)
async def test_json_and_sse_answers_are_the_same_message(
    name: str, routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, raw = await post(http, routed, body(f"fake:{name}", stream=False))
    assert resp.status == 200 and resp.headers["content-type"] == "application/json"
    assert json.loads(raw) == expected(name, resp.headers["x-proxy-request-id"])

    resp, sse = await post(http, routed, body(f"fake:{name}", stream=True))
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    status, message = fold(sse)
    assert status == 200
    assert message == expected(name, resp.headers["x-proxy-request-id"])
    # Every event has its `event:` line (Claude Code retries streams without them).
    assert sse.count(b"\ndata: ") + sse.startswith(b"data: ") == len(event_names(sse))
    assert event_names(sse)[0] == "message_start" and event_names(sse)[-1] == "message_stop"


async def test_chunks_split_anywhere_translate_the_same(
    routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, sse = await post(
        http, routed, body("fake:tools", stream=True), {"x-claude-code-agent-id": "split"}
    )
    assert fold(sse) == (200, expected("tools", resp.headers["x-proxy-request-id"]))


async def test_a_rule_rewrites_the_model_the_backend_is_asked_for(
    routed: ProxyProcess, backend: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    _, raw = await post(http, routed, body("claude-haiku-4-5", stream=False))
    assert json.loads(raw)["model"] == "fake:tools"
    assert backend.received[-1].body["model"] == "fake:tools"  # type: ignore[index]


async def test_the_backend_gets_the_translation_and_none_of_the_clients_credentials(
    routed: ProxyProcess, backend: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    await post(http, routed, body("fake:text", stream=True, stop_sequences=["END"]))
    sent = backend.received[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in sent.headers and "anthropic-version" not in sent.headers
    assert sent.body is not None
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["stop"] == ["END"] and sent.body["max_tokens"] == 256
    assert sent.body["tools"][0]["function"]["name"] == "get_weather"


async def test_provider_options_shape_the_request(
    routed: ProxyProcess, backend: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    thinking = {"type": "enabled", "budget_tokens": 20000}
    resp, _ = await post(
        http,
        routed,
        body("fake:text", stream=False, thinking=thinking),
        {"x-claude-code-agent-id": "thinker"},
    )
    assert resp.status == 200
    sent = backend.received[-1].body
    assert sent is not None
    assert sent["reasoning_effort"] == "high" and sent["max_completion_tokens"] == 256
    assert "max_tokens" not in sent


@pytest.mark.parametrize("stream", [False, True])
async def test_what_the_backend_cannot_express_is_refused_with_400(
    stream: bool, routed: ProxyProcess, backend: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    before = len(backend.received)
    resp, raw = await post(http, routed, body("fake:text", stream=stream, top_k=5))
    assert resp.status == 400
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error" and "`top_k`" in error["message"]
    thinking = {"type": "enabled", "budget_tokens": 2048}
    resp, raw = await post(http, routed, body("fake:text", stream=stream, thinking=thinking))
    assert resp.status == 400 and "thinking" in json.loads(raw)["error"]["message"]
    assert len(backend.received) == before  # never sent without the feature


async def test_large_bodies_are_translated_off_the_loop_alike(
    routed: ProxyProcess, backend: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    text = "é" * 200_000  # 400 kB of UTF-8: past the in-place translation limit
    payload = {
        "model": "fake:auto",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": text}],
    }
    resp, raw = await post(http, routed, payload)
    assert resp.status == 200
    assert json.loads(raw)["content"][0]["text"] == "Echo: " + text[:200]
    assert backend.received[-1].body["messages"][-1]["content"] == text  # type: ignore[index]
    resp, raw = await post(http, routed, {**payload, "top_k": 3})
    assert resp.status == 400 and "`top_k`" in json.loads(raw)["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_rate_limit_keeps_its_status_and_retry_after(
    stream: bool, routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, raw = await post(http, routed, body("fake:status:429", stream=stream))
    assert resp.status == 429
    assert resp.headers["retry-after"] == "7"
    assert resp.headers["x-ratelimit-remaining-requests"] == "0"
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(
    ("scenario", "status", "error_type"),
    [("status:503", 529, "overloaded_error"), ("status:401", 401, "authentication_error")],
)
async def test_backend_errors_arrive_in_anthropics_shape(
    scenario: str, status: int, error_type: str, routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, raw = await post(http, routed, body(f"fake:{scenario}", stream=True))
    assert resp.status == status
    assert json.loads(raw)["error"]["type"] == error_type


async def test_an_error_in_the_stream_ends_it_with_an_error_event(
    routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, sse = await post(http, routed, body("fake:error-mid:5", stream=True))
    assert resp.status == 200  # the stream had started: its status stands
    assert _ended_with_error(sse)["type"] == "api_error"


def _ended_with_error(sse: bytes) -> dict[str, Any]:
    """The error of a stream that started and ended with an `error` event, never
    a `message_stop`."""
    names = event_names(sse)
    assert names[0] == "message_start" and names[-1] == "error"
    assert "message_stop" not in names
    last = sse.decode().strip().splitlines()[-1]
    error: dict[str, Any] = json.loads(last[len("data: ") :])["error"]
    return error


async def test_a_cut_stream_ends_with_an_error_event(
    routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, sse = await post(http, routed, body("fake:cut:4", stream=True))
    assert resp.status == 200
    assert event_names(sse)[-1] == "error" and "message_stop" not in event_names(sse)


async def test_a_backend_silent_mid_stream_ends_it_with_a_timeout_error_event(
    routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    # Two chunks, then 7 s of silence: past UPSTREAM_READ_IDLE_TIMEOUT (5 s here).
    resp, sse = await post(http, routed, body("fake:stall:2:7", stream=True))
    assert resp.status == 200  # the stream had started: its status stands
    assert "UPSTREAM_READ_IDLE_TIMEOUT" in _ended_with_error(sse)["message"]


async def test_translated_events_are_flushed_as_the_backend_sends_them(
    routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    started = time.monotonic()
    async with http.post(
        f"{routed.url}/v1/messages", json=body("fake:stall:2:3", stream=True), headers=CLIENT
    ) as resp:
        first = await resp.content.readuntil(b"\n\n")
        first_at = time.monotonic() - started
        rest = await resp.read()
    assert first.startswith(b"event: message_start")
    # The first events came while the backend was still silent (3 s), not after it.
    assert first_at < 2.5
    assert time.monotonic() - started >= 3
    assert b"event: message_stop" in rest


async def test_count_tokens_is_an_estimate_without_a_backend_call(
    routed: ProxyProcess, backend: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    before = len(backend.received)
    payload = {"model": "fake:text", "messages": MESSAGES}
    resp, raw = await post(http, routed, payload, path="/v1/messages/count_tokens")
    assert resp.status == 200
    answer = json.loads(raw)
    assert answer["estimated"] is True and answer["input_tokens"] > 0
    resp, raw = await post(http, routed, {**payload, "top_k": 1}, path="/v1/messages/count_tokens")
    assert resp.status == 400
    assert len(backend.received) == before


async def test_endpoints_without_a_translation_are_refused(
    routed: ProxyProcess, backend: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    before = len(backend.received)
    resp, raw = await post(http, routed, {"model": "fake:text"}, path="/v1/messages/batches")
    assert resp.status == 400
    assert "Chat Completions" in json.loads(raw)["error"]["message"]
    assert len(backend.received) == before


async def test_a_slow_backend_times_out_as_anthropic_would(
    routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, raw = await post(http, routed, body("fake:slow:3", stream=True))
    assert resp.status == 504
    assert json.loads(raw)["error"]["type"] == "timeout_error"


@pytest.mark.parametrize("name", ["text", "tools"])
async def test_demotion_folds_the_translated_stream(
    name: str, demoting: ProxyProcess, backend: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    resp, raw = await post(http, demoting, body(f"fake:{name}", stream=False))
    assert resp.status == 200 and resp.headers["content-type"] == "application/json"
    assert json.loads(raw) == expected(name, resp.headers["x-proxy-request-id"])
    assert backend.received[-1].body["stream"] is True  # type: ignore[index]


async def test_a_demoted_stream_that_fails_midway_is_an_error_answer(
    demoting: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, raw = await post(http, demoting, body("fake:error-mid:5", stream=False))
    # The backend's server_error, mid-stream: api_error, answered with its status.
    assert resp.status == 500
    assert json.loads(raw)["error"]["type"] == "api_error"


async def test_many_streams_at_once(routed: ProxyProcess, http: aiohttp.ClientSession) -> None:
    answers = await asyncio.gather(
        *(post(http, routed, body("fake:tools", stream=True)) for _ in range(8))
    )
    for resp, sse in answers:
        assert fold(sse) == (200, expected("tools", resp.headers["x-proxy-request-id"]))
