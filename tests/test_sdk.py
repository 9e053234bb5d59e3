"""The official anthropic SDK as a real client: through the proxy == direct; and through
the proxy to an OpenAI-format provider, its streaming helpers accumulate the translated
stream into the message the non-streaming call returns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import pytest

from providers import from_openai_response
from tests.conftest import ProxyProcess, start_proxy
from tests.fake_openai import FakeOpenAI
from tests.fake_upstream import FakeUpstream
from tests.fixtures import COMPLETE_STREAMS
from tests.providers.openai_chunks import completion_from_chunks, scenario_chunks

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


# ---- through the proxy to an OpenAI-format provider -----------------------------------

OPENAI_TOOLS = [
    {"name": "get_weather", "input_schema": {"type": "object"}},
    {"name": "get_time", "input_schema": {"type": "object"}},
]


@pytest.fixture(scope="module")
def openai_backend() -> FakeOpenAI:
    fake = FakeOpenAI()
    fake.start_in_thread()
    return fake


@pytest.fixture(scope="module")
def openai_proxy(
    openai_backend: FakeOpenAI, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("sdk-openai")
    (tmp / "routes.yaml").write_text(
        f"""
providers:
  - {{name: local, format: openai, base_url: "{openai_backend.url}"}}
rules:
  - match: {{model: "prefix:fake:"}}
    action: {{provider: local}}
"""
    )
    proxy = start_proxy(
        tmp, {"ANTHROPIC_FORWARD_URL": upstream.url, "CONFIG_FILE": str(tmp / "routes.yaml")}
    )
    yield proxy
    proxy.stop()


@pytest.fixture
async def via_proxy(openai_proxy: ProxyProcess) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(
        api_key="sk-ant-test", base_url=openai_proxy.url, max_retries=0
    )
    yield client
    await client.close()


@pytest.mark.parametrize("name", ["text", "tools", "interleaved", "cached", "refusal"])
async def test_sdk_stream_through_the_proxy_accumulates_the_translated_message(
    name: str, via_proxy: anthropic.AsyncAnthropic
) -> None:
    request = {
        "model": f"fake:{name}",
        "max_tokens": 256,
        "messages": MESSAGES,
        "tools": OPENAI_TOOLS,
    }
    async with via_proxy.messages.stream(**request) as stream:
        events = [event.type async for event in stream]
        final = await stream.get_final_message()
    created = await via_proxy.messages.with_raw_response.create(**request)
    message = await created.parse()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    # The same message either way; only the id (the proxy's request id) differs.
    assert final.model_dump(exclude={"id"}) == message.model_dump(exclude={"id"})
    expected = from_openai_response(
        completion_from_chunks(scenario_chunks(name)),
        model=f"fake:{name}",
        request_id=created.headers["x-proxy-request-id"],
    )
    assert message.to_dict() == expected


async def test_sdk_raises_the_translated_backend_error(via_proxy: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as info:
        async with via_proxy.messages.stream(
            model="fake:status:429", max_tokens=10, messages=MESSAGES
        ) as stream:
            await stream.get_final_message()
    assert info.value.response.headers["retry-after"] == "7"
    with pytest.raises(anthropic.APIStatusError) as mid:
        async with via_proxy.messages.stream(
            model="fake:error-mid:5", max_tokens=10, messages=MESSAGES, tools=OPENAI_TOOLS
        ) as stream:
            await stream.get_final_message()
    assert mid.value.body["error"]["type"] == "api_error"  # type: ignore[index]
