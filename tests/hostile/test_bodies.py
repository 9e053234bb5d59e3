"""Hostile request bodies on /v1/messages: a 400 in Anthropic's shape, no upstream
call, the refusal itself recorded, and the proxy keeps serving.

The basic cases (truncated object, list, empty, wrong `model`/`stream`/`max_tokens`,
invalid UTF-8) are in tests/streaming/test_forward.py::test_bad_messages_body_is_400;
these extend them."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.conftest import ProxyProcess
from tests.fake_upstream import FakeUpstream
from tests.hostile.conftest import assert_alive, assert_error, wait_record

BAD_BODIES = [
    (b"{", "not valid JSON"),
    (b'{"model": "m", "max_tokens": 1', "not valid JSON"),
    (b'{"model": "m"} trailing', "not valid JSON"),
    (b'{"model": "m",}', "not valid JSON"),
    (b"\x00\x01\x02", "not valid JSON"),
    (b'{"model": "caf\xc3"}', "not valid JSON"),  # truncated multi-byte sequence
    (b'{"model": "\xc0\xaf"}', "not valid JSON"),  # overlong encoding of "/"
    (b"null", "got a JSON NoneType"),
    (b'"a string"', "got a JSON str"),
    (b"42", "got a JSON int"),
    (b"true", "got a JSON bool"),
    (b'{"model": ["claude"]}', "model: must be a string"),
    (b'{"model": {"id": "claude"}}', "model: must be a string"),
    (b'{"model": true}', "model: must be a string"),
    (b'{"model": "m", "stream": 1}', "stream: must be a boolean"),
    (b'{"model": "m", "stream": null}', "stream: must be a boolean"),
    (b'{"model": "m", "stream": "true"}', "stream: must be a boolean"),
    (b'{"model": "m", "max_tokens": 1.5}', "max_tokens: must be an integer"),
    (b'{"model": "m", "max_tokens": true}', "max_tokens: must be an integer"),
    (b'{"model": "m", "max_tokens": [1]}', "max_tokens: must be an integer"),
]


@pytest.mark.parametrize(("body", "fragment"), BAD_BODIES)
async def test_bad_body_is_400_and_recorded(
    body: bytes, fragment: str, hproxy: ProxyProcess, fresh_upstream: FakeUpstream
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{hproxy.url}/v1/messages",
            data=body,
            headers={"content-type": "application/json"},
        ) as resp:
            payload = await resp.json()
            request_id = resp.headers["x-proxy-request-id"]
    assert_error((resp.status, payload), 400, "invalid_request_error")
    assert fragment in payload["error"]["message"]
    assert payload["request_id"] == request_id
    assert fresh_upstream.received == []
    record = await wait_record(hproxy, request_id)
    assert record["statusCode"] == 400 and record["outcome"] == "proxy_error"
    assert record["request"]["bodyBytes"] == len(body)


async def test_deeply_nested_json_is_refused_not_crashed(
    hproxy: ProxyProcess, fresh_upstream: FakeUpstream
) -> None:
    """Python's parser raises RecursionError (not ValueError) past ~1000 levels."""
    body = b'{"model": "m", "x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{hproxy.url}/v1/messages", data=body) as resp:
            payload = await resp.json()
    assert_error((resp.status, payload), 400, "invalid_request_error")
    assert "nested too deeply" in payload["error"]["message"]
    assert fresh_upstream.received == []
    await assert_alive(hproxy)


async def test_lone_surrogate_is_forwarded_and_logged(
    hproxy: ProxyProcess, fresh_upstream: FakeUpstream
) -> None:
    """`\\ud800` is valid JSON text but not encodable UTF-8 once parsed: the request
    is served and its record must still be storable (BSON strings are UTF-8)."""
    body = (
        b'{"model": "claude-sonnet-4-5-20250929", "max_tokens": 8, '
        b'"messages": [{"role": "user", "content": "bad \\ud800 surrogate"}]}'
    )
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{hproxy.url}/v1/messages", data=body) as resp:
            assert resp.status == 200
            request_id = resp.headers["x-proxy-request-id"]
    assert fresh_upstream.received[-1].body == body  # forwarded byte for byte
    record = await wait_record(hproxy, request_id)
    assert record["request"]["body"] == json.loads(body)


async def test_still_serving_after_bad_bodies(hproxy: ProxyProcess) -> None:
    await assert_alive(hproxy)
