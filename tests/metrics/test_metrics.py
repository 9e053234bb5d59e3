"""Prometheus metrics: recorded per exchange, merged across workers, bounded labels."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import aiohttp
import pytest

from metrics.labels import ModelLabels, endpoint_label, status_class
from streaming.usage import Usage, usage_of
from tests.conftest import ProxyProcess, start_proxy
from tests.fake_upstream import FakeUpstream
from tests.fixtures import message_bytes


def test_usage_split_and_totals() -> None:
    usage = usage_of(json.loads(message_bytes("tool_use")))
    assert usage == Usage(
        input=3412, output=142, cache_write_5m=1830, cache_write_1h=0, cache_read=0
    )
    assert usage.total == 3412 + 142 + 1830
    legacy = usage_of({"usage": {"input_tokens": 1, "cache_creation_input_tokens": 7}})
    assert legacy is not None and legacy.cache_write_5m == 7
    assert usage_of({"type": "error", "error": {}}) is None


def test_labels_are_bounded() -> None:
    models = ModelLabels(limit=2)
    assert models("claude-a") == "claude-a" and models("claude-b") == "claude-b"
    assert models("claude-c") == "other" and models("claude-a") == "claude-a"
    assert models(None) == "none" and models("x" * 200) == "invalid"
    assert models("bad model\n") == "invalid"
    assert endpoint_label("/v1/messages") == "/v1/messages"
    assert endpoint_label("/v1/files/file_0123") == "/v1/other"
    assert status_class(429) == "4xx" and status_class(None) == "none"


@pytest.fixture(scope="module")
def two_workers(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    proxy = start_proxy(
        tmp_path_factory.mktemp("metrics"),
        {"ANTHROPIC_FORWARD_URL": upstream.url, "SANIC_WORKERS": "2"},
    )
    yield proxy
    proxy.stop()


def _samples(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


async def test_metrics_merged_across_workers(two_workers: ProxyProcess) -> None:
    url = f"{two_workers.url}/v1/messages"
    body = b'{"model":"claude-sonnet-4-5-20250929","stream":true}'
    async with aiohttp.ClientSession() as http:

        async def one(scenario: str) -> None:
            # A fresh connection each time, so both workers take requests.
            async with http.post(
                url, data=body, headers={"x-fake": scenario, "connection": "close"}
            ) as resp:
                await resp.read()

        await asyncio.gather(
            *(one("sse:tool_use") for _ in range(10)), *(one("status:429") for _ in range(3))
        )
        # Transport metrics are counted by the workers as each response ends;
        # tokens and cost by the recorder process once it folded the records.
        for _ in range(100):
            async with http.get(f"{two_workers.url}/metrics") as resp:
                text = await resp.text()
            if "claude_proxy_tokens_total{" in text and "records_stored_total 13" in text:
                break
            await asyncio.sleep(0.1)
    requests = _samples(text, "claude_proxy_requests_total{")
    ok = [v for k, v in requests.items() if 'status_class="2xx"' in k]
    limited = [v for k, v in requests.items() if 'status_class="4xx"' in k]
    assert sum(ok) == 10 and sum(limited) == 3
    tokens = _samples(text, "claude_proxy_tokens_total{")
    assert tokens['claude_proxy_tokens_total{model="claude-sonnet-4-5-20250929",type="input"}'] == (
        3412 * 10
    )
    assert (
        tokens[
            'claude_proxy_tokens_total{model="claude-sonnet-4-5-20250929",type="cache_write_5m"}'
        ]
        == 1830 * 10
    )
    assert 'le="600.0"' in text
    assert "claude_proxy_build_info{" in text
    errors = _samples(text, "claude_proxy_upstream_errors_total{")
    assert errors == {'claude_proxy_upstream_errors_total{reason="status_4xx"}': 3.0}
    # No unbounded labels: no request ids, keys or sessions.
    assert not re.search(r"[0-9a-f]{32}", text)
    assert "sk-" not in text
