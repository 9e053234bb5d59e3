"""The official anthropic SDK as a real client: through the proxy == direct."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import pytest

from tests.conftest import ProxyProcess
from tests.fake_upstream import FakeUpstream
from tests.fixtures import COMPLETE_STREAMS

MESSAGES = [{"role": "user", "content": "What is in this repository?"}]
MODEL = "claude-sonnet-4-5-20250929"


@pytest.fixture
async def clients(
    proxy: ProxyProcess, upstream: FakeUpstream
) -> AsyncIterator[tuple[anthropic.AsyncAnthropic, anthropic.AsyncAnthropic]]:
    via = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=proxy.url, max_retries=0)
    direct = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=upstream.url, max_retries=0)
    yield via, direct
    await via.close()
    await direct.close()


@pytest.mark.parametrize("name", COMPLETE_STREAMS)
async def test_create_non_streaming(name: str, clients) -> None:
    results = []
    for client in clients:
        message = await client.messages.create(
            model=MODEL,
            max_tokens=1024,
            messages=MESSAGES,
            extra_headers={"x-fake": f"json:{name}"},
        )
        results.append(message.model_dump())
    assert results[0] == results[1]
    assert results[0]["content"]


@pytest.mark.parametrize("name", COMPLETE_STREAMS)
async def test_stream_final_message(name: str, clients) -> None:
    results = []
    for client in clients:
        async with client.messages.stream(
            model=MODEL, max_tokens=1024, messages=MESSAGES, extra_headers={"x-fake": f"sse:{name}"}
        ) as stream:
            events = [event.type async for event in stream]
            final = await stream.get_final_message()
        results.append((events, final.model_dump()))
    assert results[0] == results[1]
    assert results[0][1]["stop_reason"]


async def test_midstream_overload_raises_same_error(clients) -> None:
    errors = []
    for client in clients:
        with pytest.raises(anthropic.APIStatusError) as info:
            async with client.messages.stream(
                model=MODEL,
                max_tokens=10,
                messages=MESSAGES,
                extra_headers={"x-fake": "sse:overloaded_midstream"},
            ) as stream:
                await stream.get_final_message()
        errors.append((type(info.value), info.value.body))
    assert errors[0] == errors[1]


async def test_count_tokens(clients) -> None:
    counts = [
        (await c.messages.count_tokens(model=MODEL, messages=MESSAGES)).input_tokens
        for c in clients
    ]
    assert counts == [42, 42]


async def test_raw_response_headers(clients) -> None:
    via, direct = clients
    raw_via = await via.messages.with_raw_response.create(
        model=MODEL, max_tokens=10, messages=MESSAGES, extra_headers={"x-fake": "json:text_basic"}
    )
    raw_direct = await direct.messages.with_raw_response.create(
        model=MODEL, max_tokens=10, messages=MESSAGES, extra_headers={"x-fake": "json:text_basic"}
    )
    assert raw_via.request_id and raw_via.request_id.startswith("req_fake")
    upstream_headers = {k: v for k, v in raw_direct.headers.items() if k.startswith("anthropic-")}
    assert upstream_headers
    for key, value in upstream_headers.items():
        assert raw_via.headers[key] == value
    assert (await raw_via.parse()).model_dump() == (await raw_direct.parse()).model_dump()


async def test_error_status_raises_same_exception(clients) -> None:
    for status, exc in ((429, anthropic.RateLimitError), (529, anthropic.InternalServerError)):
        seen = []
        for client in clients:
            with pytest.raises(exc) as info:
                await client.messages.create(
                    model=MODEL,
                    max_tokens=10,
                    messages=MESSAGES,
                    extra_headers={"x-fake": f"status:{status}"},
                )
            seen.append((info.value.status_code, info.value.body["error"]["type"]))
        assert seen[0] == seen[1]
