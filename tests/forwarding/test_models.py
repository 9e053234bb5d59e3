"""`GET /v1/models` for Claude Code's model discovery, and the `HEAD /` probe.

The pure parts (which names are listed, the page merge, the capped decoding) are
tested directly; the route itself through real proxy processes and the fake
upstream over sockets.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from control.routing_file import load_config
from forwarding.models import (
    EPOCH,
    MODELS_BUDGET,
    MODELS_PARSE_LIMIT,
    SOURCE_HEADER,
    RoutedCatalog,
    decode_capped,
    is_first_page,
    merge_page,
    routed_page,
)
from tests.conftest import ProxyProcess, free_port, start_proxy
from tests.control.routing_helpers import FP_A, KEY_A, write
from tests.fake_upstream import RATE_LIMIT_HEADERS, FakeUpstream, big_chunks, models_page

# Serial (make test's second phase): a slow upstream answered within the model list's time budget.
pytestmark = pytest.mark.serial

CONFIG = f"""
providers:
  - name: other
    base_url: http://127.0.0.1:9
rules:
  - name: glm
    match: {{model: glm-4.6}}
    action: {{provider: other}}
  - name: fast-alias
    match: {{model: [sonnet-fast, "claude-opus-5-5[1m]"]}}
    action: {{provider: other, model: glm-4.6-air}}
  - name: glm-family
    match: {{model: "glm-*"}}
    action: {{provider: other}}
  - name: kimi
    match: {{model: "prefix:kimi-"}}
    action: {{provider: other, model: kimi-k2}}
  - name: mini
    match: {{model: "exact:mini?"}}
    action: {{provider: other, model: upstream-only-model}}
  - name: shadowed
    match: {{model: claude-sonnet-4-5-20250929}}
    action: {{provider: other}}
  - name: vip
    match: {{model: vip-model, client_key: "{FP_A}"}}
    action: {{provider: other}}
  - name: reviewer
    match: {{model: reviewer-model, agent: "reviewer*"}}
    action: {{provider: other}}
"""
# What any client sees: literal names in file order; `glm-4.6-air` and `kimi-k2` are
# rewrite targets a rule also routes when sent as is, `upstream-only-model` is not;
# `vip-model` and `reviewer-model` only for that key or agent.
ROUTED = [
    "glm-4.6",
    "sonnet-fast",
    "claude-opus-5-5[1m]",
    "glm-4.6-air",
    "kimi-k2",
    "mini?",
    "claude-sonnet-4-5-20250929",
]
UPSTREAM_DEFAULT = "claude-sonnet-4-5-20250929"  # the fake's own list without x-fake
CONFIG_MTIME = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CREATED_AT = "2026-03-01T12:00:00Z"
SLOW = 5.0  # seconds the fake upstream stalls, well past MODELS_BUDGET
# Claude Code waits this long for its gateway's model list before it gives up on it.
CLAUDE_CODE_DISCOVERY_BUDGET = 3.0

CLAUDE_CODE = {
    "x-api-key": "sk-ant-api03-models-test",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    "user-agent": "claude-cli/2.1.3 (external, cli)",
}


def _model(name: str) -> dict[str, str]:
    return {"type": "model", "id": name, "display_name": name, "created_at": CREATED_AT}


def _catalog(tmp_path: Path, text: str = CONFIG) -> RoutedCatalog:
    path = write(tmp_path, text)
    os.utime(path, (CONFIG_MTIME.timestamp(), CONFIG_MTIME.timestamp()))
    return RoutedCatalog(load_config(path, explicit=True, environ={}))


# ---- which names are listed ---------------------------------------------------------


def test_listed_names_are_those_a_client_can_send_and_get_routed(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    assert catalog.models_for([("x-api-key", "sk-someone")]) == [_model(n) for n in ROUTED]
    assert catalog.models_for([]) == [_model(n) for n in ROUTED]


def test_rules_limited_to_a_key_or_agent_list_only_for_them(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    vip = [m["id"] for m in catalog.models_for([("x-api-key", KEY_A)])]
    assert vip == [*ROUTED, "vip-model"]
    agent = [("X-Claude-Code-Agent-Id", "reviewer-3")]
    assert [m["id"] for m in catalog.models_for(agent)] == [*ROUTED, "reviewer-model"]


def test_no_config_or_only_patterns_list_nothing(tmp_path: Path) -> None:
    only_globs = """
providers: [{name: p, base_url: "http://127.0.0.1:9"}]
rules:
  - match: {model: "claude-*"}
    action: {provider: p}
  - action: {provider: p}
"""
    assert _catalog(tmp_path, only_globs).models_for([]) == []
    empty = RoutedCatalog(load_config(str(tmp_path / "absent.yaml"), explicit=False, environ={}))
    assert empty.models_for([]) == [] and empty.created_at == EPOCH


def test_created_at_is_the_config_file_time(tmp_path: Path) -> None:
    assert _catalog(tmp_path).created_at == CREATED_AT


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("", True),
        ("limit=1000", True),
        ("limit=20&after_id=", True),
        ("limit=20&after_id=claude-x", False),
        ("before_id=claude-y", False),
    ],
)
def test_only_the_first_page_is_extended(query: str, first: bool) -> None:
    assert is_first_page(query) is first


# ---- the page ------------------------------------------------------------------------

ROUTED_MODELS = [_model("glm-4.6"), _model("kimi-k2")]


def test_merge_puts_missing_routed_models_first_and_keeps_the_cursor() -> None:
    upstream = models_page(["claude-a", "kimi-k2", "claude-b"], has_more=True)
    page = json.loads(merge_page(upstream, ROUTED_MODELS) or b"")
    assert [m["id"] for m in page["data"]] == ["glm-4.6", "claude-a", "kimi-k2", "claude-b"]
    assert page["first_id"] == "glm-4.6"
    assert page["last_id"] == "claude-b" and page["has_more"] is True
    assert page["data"][1] == json.loads(upstream)["data"][0]


def test_merge_into_an_empty_page_sets_both_ids() -> None:
    page = json.loads(merge_page(models_page([]), ROUTED_MODELS) or b"")
    assert page["data"] == ROUTED_MODELS
    assert (page["first_id"], page["last_id"], page["has_more"]) == ("glm-4.6", "kimi-k2", False)


@pytest.mark.parametrize(
    "body",
    [
        models_page(["glm-4.6", "kimi-k2"]),  # everything already listed
        b"not json",
        b'{"type":"error","error":{}}',
        b'{"data": {"id": "x"}}',
        b"[" * 100_000,
    ],
)
def test_merge_declines_when_nothing_is_added_or_it_is_no_page(body: bytes) -> None:
    assert merge_page(body, ROUTED_MODELS) is None


def test_routed_page_alone() -> None:
    page = json.loads(routed_page(ROUTED_MODELS))
    assert page == {
        "data": ROUTED_MODELS,
        "has_more": False,
        "first_id": "glm-4.6",
        "last_id": "kimi-k2",
    }


def test_decoding_is_capped() -> None:
    body = models_page(["claude-a"])
    assert decode_capped(body, None, 1000) == body
    assert decode_capped(gzip.compress(body), "gzip", 1000) == body
    deflated = zlib.compress(body)
    assert decode_capped(deflated, "deflate", 1000) == body
    # A small gzip that inflates past the limit is refused, not inflated whole.
    bomb = gzip.compress(b" " * (MODELS_PARSE_LIMIT * 8))
    assert len(bomb) < MODELS_PARSE_LIMIT // 100
    assert decode_capped(bomb, "gzip", MODELS_PARSE_LIMIT) is None
    assert decode_capped(body, None, len(body) - 1) is None
    assert decode_capped(gzip.compress(body)[:-9], "gzip", 1000) is None  # truncated
    assert decode_capped(b"\x00garbage", "gzip", 1000) is None
    assert decode_capped(body, "br", 1000) is None


# ---- through the proxy ---------------------------------------------------------------


@pytest.fixture(scope="module")
def routed(
    upstream: FakeUpstream, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("models")
    path = write(tmp, CONFIG, "routes.yaml")
    os.utime(path, (CONFIG_MTIME.timestamp(), CONFIG_MTIME.timestamp()))
    proxy = start_proxy(
        tmp,
        {"ANTHROPIC_FORWARD_URL": upstream.url, "CONFIG_FILE": path, "MONGODB_URI": mongo_uri},
    )
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def dead(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    """Nothing listens upstream; only KEY_A has a routed model."""
    tmp = tmp_path_factory.mktemp("models-dead")
    path = write(
        tmp,
        f"""
providers: [{{name: other, base_url: "http://127.0.0.1:9"}}]
rules:
  - match: {{model: glm-4.6, client_key: "{FP_A}"}}
    action: {{provider: other}}
""",
    )
    os.utime(path, (CONFIG_MTIME.timestamp(), CONFIG_MTIME.timestamp()))
    proxy = start_proxy(
        tmp,
        {
            "ANTHROPIC_FORWARD_URL": f"http://127.0.0.1:{free_port()}",
            "CONFIG_FILE": path,
            "REQUEST_LOG": "false",
        },
    )
    yield proxy
    proxy.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


async def _get(
    http: aiohttp.ClientSession, url: str, **headers: str
) -> tuple[aiohttp.ClientResponse, bytes]:
    merged = {**CLAUDE_CODE, **{k.replace("_", "-"): v for k, v in headers.items()}}
    async with http.get(url, headers=merged, allow_redirects=False) as resp:
        return resp, await resp.read()


def _ids(body: bytes) -> list[str]:
    return [m["id"] for m in json.loads(body)["data"]]


async def test_first_page_adds_routed_models_once(
    routed: ProxyProcess, fresh_upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    upstream_ids = ["claude-sonnet-4-5-20250929", "claude-haiku-4-5"]
    resp, body = await _get(
        http, f"{routed.url}/v1/models?limit=1000", x_fake="models:" + ",".join(upstream_ids)
    )
    assert resp.status == 200
    page = json.loads(body)
    # claude-sonnet-4-5-20250929 is routed too but the upstream lists it: not doubled.
    assert _ids(body) == [*ROUTED[:-1], *upstream_ids]
    assert page["data"][0] == _model("glm-4.6")
    assert page["first_id"] == "glm-4.6" and page["last_id"] == "claude-haiku-4-5"
    assert page["has_more"] is False
    assert resp.headers[SOURCE_HEADER] == "upstream+routing"
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["request-id"].startswith("req_fake")
    for name, value in RATE_LIMIT_HEADERS.items():
        assert resp.headers[name] == value
    # Forwarded exactly as any request: path, query and the client's headers.
    (received,) = fresh_upstream.received
    assert (received.method, received.path_qs) == ("GET", "/v1/models?limit=1000")
    for name, value in CLAUDE_CODE.items():
        assert (name, value) in [(k.lower(), v) for k, v in received.headers]


async def test_gzip_list_is_merged_and_sent_plain(
    routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, body = await _get(
        http,
        f"{routed.url}/v1/models",
        x_fake="models:claude-a,claude-b:more",
        x_fake_gzip="1",
        accept_encoding="gzip",
    )
    assert "content-encoding" not in resp.headers
    page = json.loads(body)
    assert _ids(body) == [*ROUTED, "claude-a", "claude-b"]
    assert page["has_more"] is True and page["last_id"] == "claude-b"


async def test_later_pages_are_relayed_byte_for_byte(
    routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, body = await _get(
        http, f"{routed.url}/v1/models?limit=2&after_id=claude-b", x_fake="models:claude-c"
    )
    assert resp.status == 200
    assert body == models_page(["claude-c"])
    assert SOURCE_HEADER not in resp.headers


async def test_nothing_to_add_keeps_the_upstream_bytes(
    routed: ProxyProcess, proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    # Every routed name is already listed upstream.
    resp, body = await _get(http, f"{routed.url}/v1/models", x_fake="models:" + ",".join(ROUTED))
    assert body == models_page(ROUTED)
    assert SOURCE_HEADER not in resp.headers
    # No routing config at all, gzip as the upstream sent it.
    resp, body = await _get(
        http,
        f"{proxy.url}/v1/models?limit=1000",
        x_fake="models:claude-a",
        x_fake_gzip="1",
        accept_encoding="gzip",
    )
    assert resp.headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == models_page(["claude-a"])


@pytest.mark.parametrize("scenario", [f"slow-headers:{SLOW:g}", f"slow-body:{SLOW:g}"])
async def test_slow_upstream_yields_routed_models_within_the_budget(
    scenario: str, routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    resp, body = await _get(http, f"{routed.url}/v1/models?limit=1000", x_fake=scenario)
    elapsed = loop.time() - start
    assert resp.status == 200
    assert body == routed_page([_model(n) for n in ROUTED])
    assert resp.headers[SOURCE_HEADER] == "routing"
    # Answered when the budget ran out, not when the upstream would have, and
    # the budget leaves Claude Code half a second for the hops around it.
    assert MODELS_BUDGET + 0.5 <= CLAUDE_CODE_DISCOVERY_BUDGET
    assert MODELS_BUDGET - 0.05 <= elapsed < SLOW


async def test_slow_upstream_without_routed_models_is_504(
    routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    # A later page gets no routed models, so there is nothing to fall back on.
    resp, body = await _get(
        http, f"{routed.url}/v1/models?after_id=claude-b", x_fake=f"slow-body:{SLOW:g}"
    )
    assert resp.status == 504
    error = json.loads(body)
    assert error["type"] == "error" and error["error"]["type"] == "timeout_error"
    assert "model discovery budget" in error["error"]["message"]


async def test_redirect_is_never_followed_nor_relayed(
    routed: ProxyProcess,
    proxy: ProxyProcess,
    fresh_upstream: FakeUpstream,
    http: aiohttp.ClientSession,
) -> None:
    resp, body = await _get(http, f"{routed.url}/v1/models", x_fake="redirect:307")
    assert resp.status == 200 and "location" not in resp.headers
    assert _ids(body) == ROUTED
    assert resp.headers[SOURCE_HEADER] == "routing"
    resp, body = await _get(http, f"{proxy.url}/v1/models", x_fake="redirect:301")
    assert resp.status == 502 and "location" not in resp.headers
    assert json.loads(body)["error"]["type"] == "api_error"
    assert [r.path_qs for r in fresh_upstream.received] == ["/v1/models", "/v1/models"]


@pytest.mark.parametrize("status", [401, 403, 429])
async def test_client_errors_are_relayed_unchanged(
    status: int, routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, body = await _get(http, f"{routed.url}/v1/models", x_fake=f"status:{status}")
    assert resp.status == status
    assert json.loads(body)["error"]["message"].startswith("fake ")
    assert SOURCE_HEADER not in resp.headers


@pytest.mark.parametrize("status", [500, 529])
async def test_server_errors_yield_routed_models(
    status: int, routed: ProxyProcess, proxy: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    resp, body = await _get(http, f"{routed.url}/v1/models", x_fake=f"status:{status}")
    assert resp.status == 200 and _ids(body) == ROUTED
    assert resp.headers[SOURCE_HEADER] == "routing"
    # Without routed models the upstream's error is relayed as before.
    resp, body = await _get(http, f"{proxy.url}/v1/models", x_fake=f"status:{status}")
    assert resp.status == status
    assert json.loads(body)["error"]["message"].startswith("fake ")


async def test_refused_connection(dead: ProxyProcess, http: aiohttp.ClientSession) -> None:
    resp, body = await _get(http, f"{dead.url}/v1/models?limit=1000", x_api_key=KEY_A)
    assert resp.status == 200
    assert json.loads(body) == json.loads(routed_page([_model("glm-4.6")]))
    assert resp.headers[SOURCE_HEADER] == "routing"
    resp, body = await _get(http, f"{dead.url}/v1/models?limit=1000")
    assert resp.status == 502
    assert "unreachable" in json.loads(body)["error"]["message"]


async def test_oversized_lists_are_relayed_unparsed(
    routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    # Sized past the parse limit: a valid page, yet relayed as is.
    pad = MODELS_PARSE_LIMIT + 1000
    resp, body = await _get(http, f"{routed.url}/v1/models", x_fake=f"models-padded:{pad}")
    assert body == models_page(["claude-padded-1"], pad=pad)
    assert SOURCE_HEADER not in resp.headers
    # Unsized: the part read before the limit is relayed, then the rest.
    size = MODELS_PARSE_LIMIT * 2 + 12345
    resp, body = await _get(http, f"{routed.url}/v1/models", x_fake=f"big:{size}")
    assert resp.status == 200
    assert hashlib.sha256(body).digest() == hashlib.sha256(b"".join(big_chunks(size))).digest()


async def _record(http: aiohttp.ClientSession, proxy: ProxyProcess, request_id: str) -> Any:
    for _ in range(100):
        async with http.get(f"{proxy.url}/api/requests/{request_id}") as resp:
            if resp.status == 200:
                return (await resp.json())["request"]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{request_id} never reached the log")


async def test_exchanges_are_recorded_like_any_forward(
    routed: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    merged, merged_body = await _get(http, f"{routed.url}/v1/models", x_fake="models:claude-a")
    fallback, fallback_body = await _get(http, f"{routed.url}/v1/models", x_fake="redirect:302")
    doc = await _record(http, routed, merged.headers["x-proxy-request-id"])
    assert doc["endpoint"] == "/v1/models" and doc["statusCode"] == 200
    assert doc["outcome"] == "completed"
    assert doc["response"]["body"] == json.loads(merged_body)
    assert doc["upstreamRequestId"] == merged.headers["request-id"]
    doc = await _record(http, routed, fallback.headers["x-proxy-request-id"])
    assert doc["statusCode"] == 200 and doc["response"]["body"] == json.loads(fallback_body)
    assert doc["outcome"] == "upstream_error" and doc["errorReason"] == "upstream_redirect"


async def test_head_root_is_a_plain_200(proxy: ProxyProcess, http: aiohttp.ClientSession) -> None:
    async with http.head(f"{proxy.url}/", allow_redirects=False) as resp:
        assert resp.status == 200
        assert "location" not in resp.headers
