"""Demotion, routing and header rules on the real request path, over real sockets."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from sanic import Sanic

from app import create_app
from control.demotion import promote_body_to_stream
from control.header_rules import HeaderRule
from control.plan import HeaderRuleSet
from control.routing import fingerprint
from runtime.settings import Settings
from tests.conftest import ROOT, ProxyProcess, start_proxy
from tests.fake_upstream import FakeUpstream
from tests.fixtures import COMPLETE_STREAMS, error_bytes, message_bytes

# Odd spacing and number spellings: the demoted body must keep every byte but `stream`.
BODY = (
    b'{ "model" : "claude-sonnet-4-5-20250929", "max_tokens": 1024 ,\n'
    b'  "temperature": 1.0, "stream": false, "big": 12345678901234567890,\n'
    b'  "messages": [{"role": "user", "content": "caf\\u00e9"}] }'
)


@pytest.fixture(scope="module")
def demoting(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    proxy = start_proxy(
        tmp_path_factory.mktemp("demote"),
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "ANTHROPIC_DEMOTE_NONSTREAMING": "true",
            "ANTHROPIC_RESPONSE_HEADER_TIMEOUT": "1",
        },
    )
    yield proxy
    proxy.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


@pytest.mark.parametrize("name", COMPLETE_STREAMS)
async def test_demoted_answer_equals_non_streaming_fixture(
    name: str, demoting: ProxyProcess, fresh_upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{demoting.url}/v1/messages", data=BODY, headers={"x-fake": f"sse:{name}"}
    ) as resp:
        body = await resp.read()
    assert resp.status == 200
    assert body == message_bytes(name)
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["request-id"].startswith("req_fake")
    assert resp.headers["anthropic-ratelimit-unified-5h-utilization"] == "0.42"
    sent = fresh_upstream.received[-1].body
    assert sent == promote_body_to_stream(BODY)
    assert sent.replace(b'"stream": true', b'"stream": false') == BODY


async def test_demoted_midstream_overload_is_529(
    demoting: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{demoting.url}/v1/messages", data=BODY, headers={"x-fake": "sse:overloaded_midstream"}
    ) as resp:
        body = await resp.read()
    assert resp.status == 529
    assert json.loads(body) == json.loads(error_bytes("overloaded_midstream"))


async def test_demotion_outlives_the_header_timeout(
    demoting: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    # Not demoted (stream:true is relayed as is) the 1 s header timeout applies...
    async with http.post(
        f"{demoting.url}/v1/messages", data=BODY, headers={"x-fake": "slow-headers:2"}
    ) as resp:
        assert resp.status == 504
    # ...while a demoted call that streams for ~3 s from the first moment succeeds.
    async with http.post(
        f"{demoting.url}/v1/messages",
        data=BODY,
        headers={"x-fake": "sse:thinking", "x-fake-delay-ms": "250"},
    ) as resp:
        assert resp.status == 200
        assert await resp.read() == message_bytes("thinking")


async def test_streaming_clients_are_not_demoted(
    demoting: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    body = BODY.replace(b'"stream": false', b'"stream": true')
    async with http.post(
        f"{demoting.url}/v1/messages", data=body, headers={"x-fake": "sse:text_basic"}
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")


# ---- routing ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secondary() -> FakeUpstream:
    fake = FakeUpstream()
    fake.start_in_thread()
    return fake


CLIENT_KEY = "sk-ant-client-007"


@pytest.fixture(scope="module")
def routed(
    upstream: FakeUpstream, secondary: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("routing")
    (tmp / "routes.yaml").write_text(
        f"""
providers:
  - name: secondary
    format: anthropic
    base_url: {secondary.url}
    api_key_env: SECONDARY_KEY
    headers:
      x-team: platform
rules:
  - name: haiku-elsewhere
    match: {{model: "prefix:claude-haiku"}}
    action: {{provider: secondary, model: claude-haiku-routed}}
  - name: reviewer-agent
    match: {{agent: "reviewer*"}}
    action: {{provider: secondary}}
  - name: vip-key
    match: {{client_key: "{fingerprint(CLIENT_KEY)}"}}
    action: {{provider: secondary}}
"""
    )
    proxy = start_proxy(
        tmp,
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "CONFIG_FILE": str(tmp / "routes.yaml"),
            "SECONDARY_KEY": "sk-secondary-provider-key",
        },
    )
    yield proxy
    proxy.stop()


def _echo_of(raw: bytes) -> tuple[dict[str, str], bytes]:
    echo = json.loads(raw)
    return {k.lower(): v for k, v in echo["headers"]}, base64.b64decode(echo["body_b64"])


@pytest.mark.parametrize(
    ("model", "headers", "where", "sent_model"),
    [
        ("claude-haiku-4-5", {}, "secondary", "claude-haiku-routed"),
        ("claude-sonnet-4-5", {}, "primary", "claude-sonnet-4-5"),
        (
            "claude-sonnet-4-5",
            {"X-Claude-Code-Agent-Id": "reviewer-7"},
            "secondary",
            "claude-sonnet-4-5",
        ),
        ("claude-sonnet-4-5", {"X-Claude-Code-Agent-Id": "writer"}, "primary", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5", {"x-api-key": CLIENT_KEY}, "secondary", "claude-sonnet-4-5"),
    ],
)
async def test_routing_rules_end_to_end(
    model: str,
    headers: dict[str, str],
    where: str,
    sent_model: str,
    routed: ProxyProcess,
    upstream: FakeUpstream,
    secondary: FakeUpstream,
    http: aiohttp.ClientSession,
) -> None:
    upstream.reset()
    secondary.reset()
    body = b'{"max_tokens": 5, "model": "%s", "messages": []}' % model.encode()
    request_headers = {"x-api-key": "sk-ant-user", **headers, "x-fake": "echo"}
    async with http.post(f"{routed.url}/v1/messages", data=body, headers=request_headers) as resp:
        received, sent = _echo_of(await resp.read())
    target, other = (secondary, upstream) if where == "secondary" else (upstream, secondary)
    assert len(target.received) == 1 and other.received == []
    assert sent == body.replace(model.encode(), sent_model.encode())
    if where == "secondary":
        assert received["x-api-key"] == "sk-secondary-provider-key"
        assert received["x-team"] == "platform"
    else:
        assert received["x-api-key"] == request_headers["x-api-key"]


def test_broken_config_stops_start_up_with_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("providers:\n  - name: a\n    format: anthropic\n    base_url: ftp://x\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        env={"CONFIG_FILE": str(config), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert f"{config}:4:" in result.stderr


# ---- header rules ----------------------------------------------------------------------


@pytest.fixture
def app(upstream: FakeUpstream) -> Sanic:
    return create_app(Settings.from_env({"ANTHROPIC_FORWARD_URL": upstream.url}))


async def test_header_rules_apply_to_requests_and_responses(app: Sanic) -> None:
    app.ctx.rulebook.current = HeaderRuleSet(
        request=(
            HeaderRule("x-stainless-os", "block"),
            HeaderRule("anthropic-beta", "replace", value="", find=",bad-beta"),
            HeaderRule("x-org-tag", "set", value="team-a"),
            HeaderRule("x-never", "set", value="1", enabled=False),
        ),
        response=(
            HeaderRule("anthropic-organization-id", "block"),
            HeaderRule("x-served-by", "set", value="proxy"),
        ),
    )
    _, resp = await app.asgi_client.post(
        "/v1/messages",
        content=b'{"model":"m"}',
        headers={"x-fake": "echo", "x-stainless-os": "Linux", "anthropic-beta": "a,bad-beta"},
    )
    received, _ = _echo_of(resp.body)
    assert "x-stainless-os" not in received and "x-never" not in received
    assert received["anthropic-beta"] == "a"
    assert received["x-org-tag"] == "team-a"
    assert "anthropic-organization-id" not in resp.headers
    assert resp.headers["x-served-by"] == "proxy"

    # Streaming responses get the response rules too.
    _, resp = await app.asgi_client.post(
        "/v1/messages", content=b'{"model":"m","stream":true}', headers={"x-fake": "sse:text_basic"}
    )
    assert resp.headers["x-served-by"] == "proxy"
    assert "anthropic-organization-id" not in resp.headers
