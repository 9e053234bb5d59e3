"""The official anthropic SDK reading the translation of a fake OpenAI backend.

A tiny Messages server (the bridge below, in the test's loop) does what the forwarder
will: translate the request, call the fake OpenAI-compatible backend over a real
socket, translate its answer (streamed chunk by chunk as it arrives, or whole) and
its errors. The SDK's streaming helpers must accumulate exactly the message the
non-streaming call returns.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest
from aiohttp import web

from providers import (
    BackendFailure,
    OpenAIStreamTranslator,
    RequestRefused,
    anthropic_error_from_openai,
    estimate_input_tokens,
    from_openai_response,
    timeout_error,
    to_openai_request,
)
from providers.events import error_payload
from providers.openai_response import parse_completion
from tests.fake_openai import FakeOpenAI
from tests.providers.openai_chunks import completion_from_chunks, scenario_chunks

MODEL = "claude-haiku-4-5"
REQUEST_ID = "bridge0001"
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [
    {"name": "get_weather", "input_schema": {"type": "object"}},
    {"name": "get_time", "input_schema": {"type": "object"}},
]
COMPLETE = [
    "text",
    "tools",
    "interleaved",
    "forced",
    "cached",
    "reasoning",
    "length",
    "content_filter",
    "refusal",
    "stop_sequence",
]
FORWARDED = ("x-fake-openai", "x-fake-openai-split")


@pytest.fixture(scope="module")
def backend() -> FakeOpenAI:
    fake = FakeOpenAI(api_key="sk-backend")
    fake.start_in_thread()
    return fake


def bridge_app(backend: FakeOpenAI, session: aiohttp.ClientSession) -> web.Application:
    async def messages(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        try:
            openai_body = to_openai_request(body, model="fake-model")
        except RequestRefused as refused:
            return _error(400, "invalid_request_error", refused.message)
        headers = {"authorization": "Bearer sk-backend"}
        headers.update({k: v for k, v in request.headers.items() if k.lower() in FORWARDED})
        try:
            return await forward(request, body, openai_body, headers)
        except TimeoutError:
            status, raw, out_headers = timeout_error()
            return web.Response(status=status, body=raw, headers=out_headers)

    async def forward(
        request: web.Request,
        body: dict[str, Any],
        openai_body: dict[str, Any],
        headers: dict[str, str],
    ) -> web.StreamResponse:
        async with session.post(
            backend.url + "/chat/completions",
            json=openai_body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=1.0),
        ) as upstream:
            if upstream.status != 200:
                status, raw, out_headers = anthropic_error_from_openai(
                    upstream.status, await upstream.read(), upstream.headers
                )
                return web.Response(status=status, body=raw, headers=out_headers)
            stops = body.get("stop_sequences") or ()
            if not body.get("stream"):
                try:
                    try:
                        raw_body = await upstream.read()
                    except aiohttp.ClientPayloadError:
                        raise BackendFailure(502, "api_error", "cut") from None
                    message = from_openai_response(
                        parse_completion(raw_body),
                        model=body["model"],
                        request_id=REQUEST_ID,
                        stop_sequences=stops,
                    )
                except BackendFailure as failure:
                    status, raw, out_headers = failure.response()
                    return web.Response(status=status, body=raw, headers=out_headers)
                return web.json_response(message)
            translator = OpenAIStreamTranslator(
                model=body["model"], request_id=REQUEST_ID, stop_sequences=stops
            )
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            try:
                async for data in upstream.content.iter_any():
                    out = translator.feed(data)
                    if out:
                        await response.write(out)
            except aiohttp.ClientPayloadError:
                pass  # a cut body: finish() reports it
            await response.write(translator.finish())
            await response.write_eof()
            return response

    async def count(request: web.Request) -> web.Response:
        try:
            return web.json_response(estimate_input_tokens(await request.json()))
        except RequestRefused as refused:
            return _error(400, "invalid_request_error", refused.message)

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count)
    return app


def _error(status: int, error_type: str, message: str) -> web.Response:
    return web.json_response(error_payload(error_type, message), status=status)


@pytest.fixture
async def client(backend: FakeOpenAI) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with aiohttp.ClientSession() as session:
        runner = web.AppRunner(bridge_app(backend, session), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        sdk = anthropic.AsyncAnthropic(
            api_key="sk-ant-client", base_url=f"http://127.0.0.1:{port}", max_retries=0
        )
        yield sdk
        await sdk.close()
        await runner.cleanup()


def fake(scenario: str, split: int = 0) -> dict[str, str]:
    headers = {"x-fake-openai": scenario}
    if split:
        headers["x-fake-openai-split"] = str(split)
    return headers


async def stream_final(client: anthropic.AsyncAnthropic, headers: dict[str, str]) -> Any:
    async with client.messages.stream(
        model=MODEL,
        max_tokens=256,
        messages=MESSAGES,
        tools=TOOLS,
        stop_sequences=["END"],
        extra_headers=headers,
    ) as stream:
        return await stream.get_final_message()


@pytest.mark.parametrize("split", [0, 7])
@pytest.mark.parametrize("name", COMPLETE)
async def test_sdk_stream_accumulates_the_non_streaming_message(
    client: anthropic.AsyncAnthropic, name: str, split: int
) -> None:
    final = await stream_final(client, fake(name, split))
    created = await client.messages.create(
        model=MODEL,
        max_tokens=256,
        messages=MESSAGES,
        tools=TOOLS,
        stop_sequences=["END"],
        extra_headers=fake(name),
    )
    assert final.model_dump(exclude_none=True) == created.model_dump(exclude_none=True)
    expected = from_openai_response(
        completion_from_chunks(scenario_chunks(name)),
        model=MODEL,
        request_id=REQUEST_ID,
        stop_sequences=["END"],
    )
    assert created.to_dict() == expected


async def test_the_backend_gets_the_translated_request(
    client: anthropic.AsyncAnthropic, backend: FakeOpenAI
) -> None:
    await stream_final(client, fake("text"))
    sent = backend.received[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-backend"
    assert sent.body is not None
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["tools"][0] == {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object"}},
    }
    assert sent.body["stop"] == ["END"] and sent.body["max_tokens"] == 256


async def test_auto_answers_a_tool_turn(
    client: anthropic.AsyncAnthropic, backend: FakeOpenAI
) -> None:
    backend.auto_tool = ("get_weather", {"city": "Paris"})
    first = await stream_final(client, {})
    tool = first.content[-1]
    assert (first.stop_reason, tool.type, tool.input) == ("tool_use", "tool_use", {"city": "Paris"})
    second = await client.messages.create(
        model=MODEL,
        max_tokens=64,
        tools=TOOLS,
        messages=[
            *MESSAGES,
            {"role": "assistant", "content": [b.to_dict() for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "14°C"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn" and second.content[0].text == "Tool said: 14°C"


@pytest.mark.parametrize(
    ("scenario", "exception", "status", "error_type"),
    [
        ("status:429", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("status:429:quota", anthropic.APIStatusError, 402, "billing_error"),
        ("status:401", anthropic.AuthenticationError, 401, "authentication_error"),
        ("status:404", anthropic.NotFoundError, 404, "not_found_error"),
        ("status:400", anthropic.BadRequestError, 400, "invalid_request_error"),
        ("status:500", anthropic.InternalServerError, 500, "api_error"),
        ("status:502", anthropic.APIStatusError, 502, "api_error"),
        ("status:503", anthropic.APIStatusError, 529, "overloaded_error"),
    ],
)
async def test_errors_before_the_stream_raise_what_anthropic_would(
    client: anthropic.AsyncAnthropic,
    scenario: str,
    exception: type[anthropic.APIStatusError],
    status: int,
    error_type: str,
) -> None:
    with pytest.raises(exception) as info:
        await stream_final(client, fake(scenario))
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == error_type
    if status == 429:
        assert info.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("scenario", "error_type"),
    [("error-mid:5", "api_error"), ("cut:6", "api_error"), ("bad-json", "api_error")],
)
async def test_errors_during_the_stream_raise(
    client: anthropic.AsyncAnthropic, scenario: str, error_type: str
) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        await stream_final(client, fake(scenario, split=5))
    assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == error_type


async def test_unsupported_features_are_refused_by_name(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(
            model=MODEL, max_tokens=10, messages=MESSAGES, extra_body={"top_k": 5}
        )
    assert "`top_k`" in json.dumps(info.value.body)


async def test_count_tokens_is_an_estimate(client: anthropic.AsyncAnthropic) -> None:
    counted = await client.messages.count_tokens(model=MODEL, messages=MESSAGES, tools=TOOLS)
    assert counted.input_tokens > 0 and counted.to_dict()["estimated"] is True


async def test_a_stream_without_done_or_usage_still_completes(
    client: anthropic.AsyncAnthropic,
) -> None:
    for scenario in ("no-done", "no-usage"):
        final = await stream_final(client, fake(scenario, split=3))
        assert final.stop_reason == "end_turn" and final.content[0].text


async def test_unreported_usage_is_marked(client: anthropic.AsyncAnthropic) -> None:
    created = await client.messages.create(
        model=MODEL, max_tokens=10, messages=MESSAGES, extra_headers=fake("no-usage")
    )
    assert created.usage.input_tokens == 0
    assert created.to_dict()["usage"]["usage_unreported"] is True


async def test_a_backend_that_does_not_answer_in_time_is_a_504(
    client: anthropic.AsyncAnthropic,
) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        await stream_final(client, fake("slow:3"))
    assert info.value.status_code == 504
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "timeout_error"


@pytest.mark.parametrize(
    ("scenario", "status", "error_type"),
    [
        ("error-mid:5", 500, "api_error"),
        ("bad-json", 502, "api_error"),
        ("cut:3", 502, "api_error"),
    ],
)
async def test_non_streaming_failures(
    client: anthropic.AsyncAnthropic, scenario: str, status: int, error_type: str
) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        await client.messages.create(
            model=MODEL, max_tokens=10, messages=MESSAGES, extra_headers=fake(scenario)
        )
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == error_type
