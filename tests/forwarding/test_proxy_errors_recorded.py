"""An error the proxy answers itself is logged with the body the client got, through a
real proxy process and its recorder: a translation refusal naming the feature, a body
refused before routing, an unreachable provider, an open circuit breaker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import ProxyProcess, free_port, start_proxy
from tests.fake_openai import FakeOpenAI
from tests.fake_upstream import FakeUpstream

JSON = {"content-type": "application/json", "x-api-key": "sk-ant-client-secret"}
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def backend() -> FakeOpenAI:
    fake = FakeOpenAI()
    fake.start_in_thread()
    return fake


@pytest.fixture(scope="module")
def proxy(
    backend: FakeOpenAI,
    upstream: FakeUpstream,
    mongo_uri: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("proxy_errors")
    (tmp / "routes.yaml").write_text(
        f"""
providers:
  - name: local
    format: openai
    base_url: {backend.url}
    breaker: off
  - name: gone
    base_url: http://127.0.0.1:{free_port()}
    breaker: {{failures: 1, cooldown: 600}}
rules:
  - match: {{model: "prefix:fake:"}}
    action: {{provider: local}}
  - match: {{model: "prefix:gone:"}}
    action: {{provider: gone}}
"""
    )
    handle = start_proxy(
        tmp,
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "MONGODB_URI": mongo_uri,
            "CONFIG_FILE": str(tmp / "routes.yaml"),
        },
    )
    yield handle
    handle.stop()


async def post(
    http: aiohttp.ClientSession, proxy: ProxyProcess, payload: bytes
) -> tuple[int, dict[str, Any], str]:
    """(status, the body the client got, the proxy's request id)."""
    async with http.post(f"{proxy.url}/v1/messages", data=payload, headers=JSON) as resp:
        return resp.status, json.loads(await resp.read()), resp.headers["x-proxy-request-id"]


async def logged(http: aiohttp.ClientSession, proxy: ProxyProcess, request_id: str) -> Any:
    for _ in range(300):
        async with http.get(f"{proxy.url}/api/requests/{request_id}") as resp:
            if resp.status == 200:
                return (await resp.json())["request"]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{request_id} never reached the log")


def body(model: str, **fields: Any) -> bytes:
    return json.dumps({"model": model, "max_tokens": 5, "messages": MESSAGES, **fields}).encode()


async def test_a_translation_refusal_is_logged_with_the_message_the_client_got(
    proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    status, answer, request_id = await post(http, proxy, body("fake:text", top_k=40))
    assert status == 400 and "`top_k`" in answer["error"]["message"]
    doc = await logged(http, proxy, request_id)
    assert (doc["statusCode"], doc["outcome"]) == (400, "proxy_error")
    assert doc["response"]["body"] == answer
    assert doc["response"]["bodyBytes"] == len(json.dumps(answer, separators=(",", ":")))
    assert doc["response"]["isStreaming"] is False


async def test_a_body_refused_before_routing_is_logged_with_its_answer(
    proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    status, answer, request_id = await post(http, proxy, b'{"model": "m", "stream": "yes"}')
    assert status == 400 and "stream" in answer["error"]["message"]
    doc = await logged(http, proxy, request_id)
    assert doc["response"]["body"] == answer


async def test_unreachable_then_circuit_open_are_logged_with_their_answers(
    proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    status, unreachable, first = await post(http, proxy, body("gone:a", stream=True))
    assert status == 502 and unreachable["error"]["type"] == "api_error"
    # The one failure opened the breaker: the proxy answers at once.
    status, circuit_open, second = await post(http, proxy, body("gone:a", stream=True))
    assert status == 529 and "circuit breaker" in circuit_open["error"]["message"]
    doc = await logged(http, proxy, first)
    assert (doc["statusCode"], doc["response"]["body"]) == (502, unreachable)
    doc = await logged(http, proxy, second)
    assert (doc["statusCode"], doc["response"]["body"]) == (529, circuit_open)
