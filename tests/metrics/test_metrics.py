"""Prometheus metrics: recorded per exchange, merged across workers, bounded labels."""

from __future__ import annotations

import ast
import asyncio
import json
import marshal
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY, generate_latest

from metrics import registry as m
from metrics.labels import (
    ENDPOINTS,
    STATUS_CLASSES,
    TOKEN_TYPES,
    UPSTREAM_ERROR_REASONS,
    ModelLabels,
    endpoint_label,
    error_reason,
    status_class,
)
from metrics.recorder import MetricsRecorder
from recording.documents import build_record_document, metrics_sink
from recording.handoff import encode_exchange
from recording.journal import Position, Record
from storage.pricing import PriceTable
from streaming.exchange import Exchange, Outcome
from streaming.usage import Usage, usage_of
from tests.conftest import ROOT, ProxyProcess, start_proxy
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


PRICES = PriceTable.load()
HAIKU = "claude-haiku-4-5"  # $1 / $5 per MTok


def _record(response: dict[str, Any] | bytes, path: str = "/v1/messages") -> Record:
    payload = response if isinstance(response, bytes) else json.dumps(response).encode()
    get = path != "/v1/messages"
    exchange = Exchange(
        method="GET" if get else "POST",
        path=path,
        query="",
        request_headers=[],
        request_body=b"" if get else b"{}",
        model=None if get else HAIKU,
    )
    exchange.status = 200
    exchange.response_chunks = [payload]
    exchange.finish(Outcome.COMPLETED)
    meta = marshal.loads(marshal.dumps(encode_exchange(exchange)))
    return Record("w1", Position(1, 0), Position(1, 1), meta, exchange.request_body, payload)


def _message(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "model": model, "content": [], "usage": usage}


def _samples_now(model: str) -> dict[str, float]:
    return {
        "cost": m.COST.labels(model)._value.get(),
        "unpriced": m.UNPRICED.labels(model)._value.get(),
        "incomplete": m.COST_INCOMPLETE.labels(model)._value.get(),
        "input": m.TOKENS.labels("input", model)._value.get(),
        "output": m.TOKENS.labels("output", model)._value.get(),
    }


def _counted(record: Record, model: str) -> tuple[dict[str, Any], dict[str, float]]:
    """The document of a record and what its metrics added under `model`."""
    before = _samples_now(model)
    document = build_record_document(record, PRICES, metrics_sink(MetricsRecorder()))
    after = _samples_now(model)
    return document, {k: after[k] - before[k] for k in after}


def test_content_metrics_count_the_cost_the_document_stores() -> None:
    usage = {"input_tokens": 100_000, "output_tokens": 1_000_000}
    document, added = _counted(_record(_message(HAIKU, usage)), HAIKU)
    # 0.1M x $1 + 1M x $5 = 5.10, counted once, as the document has it.
    assert document["cost"]["usd"] == pytest.approx(5.1)
    assert added == pytest.approx(
        {"cost": 5.1, "unpriced": 0, "incomplete": 0, "input": 100_000, "output": 1_000_000}
    )


def test_content_metrics_count_unpriced_and_incomplete_costs() -> None:
    usage = {"input_tokens": 10, "output_tokens": 10}
    # Asked for Haiku, answered by a model without a price: counted under the request's.
    document, added = _counted(_record(_message("mystery-9", usage)), HAIKU)
    assert document["unpriced"] is True and document["cost"] is None
    assert added == {"cost": 0, "unpriced": 1, "incomplete": 0, "input": 10, "output": 10}
    partly = {
        "input_tokens": 10,
        "iterations": [
            {"type": "message", "model": HAIKU, "input_tokens": 1_000_000, "output_tokens": 0},
            {"type": "message", "model": "mystery-9", "input_tokens": 10, "output_tokens": 5},
        ],
    }
    document, added = _counted(_record(_message(HAIKU, partly)), HAIKU)
    # The Haiku attempt alone: 1M x $1 = 1.00, a lower bound.
    assert document["costIncomplete"] is True
    assert added["incomplete"] == 1 and added["cost"] == pytest.approx(1.0)


def test_content_metrics_count_batch_results_at_the_batch_rate() -> None:
    usage = {"input_tokens": 1_000_000, "output_tokens": 0}
    line = {"custom_id": "a", "result": {"type": "succeeded", "message": _message(HAIKU, usage)}}
    body = (json.dumps(line) + "\n").encode() * 2
    document, added = _counted(_record(body, "/v1/messages/batches/b1/results"), HAIKU)
    # 2 x 1M x $1 x 0.5 = 1.00
    assert document["cost"]["usd"] == pytest.approx(1.0)
    assert added["cost"] == pytest.approx(1.0) and added["input"] == 2_000_000


def test_labels_are_bounded() -> None:
    models = ModelLabels(limit=2)
    assert models("claude-a") == "claude-a" and models("claude-b") == "claude-b"
    assert models("claude-c") == "other" and models("claude-a") == "claude-a"
    assert models(None) == "none" and models("x" * 200) == "invalid"
    assert models("bad model\n") == "invalid"
    assert endpoint_label("/v1/messages") == "/v1/messages"
    assert endpoint_label("/v1/files/file_0123") == "/v1/other"
    assert status_class(429) == "4xx" and status_class(None) == "none"


@pytest.mark.parametrize(
    ("reason", "status", "label"),
    [
        ("upstream status 429", 429, "status_4xx"),
        ("upstream status 529", 529, "status_5xx"),
        ("stream error: overloaded_error", 200, "stream_error"),
        ("stream ended before message_stop", 200, "stream_incomplete"),
        ("internal error", None, "internal_error"),
        ("upstream_idle_timeout", 200, "upstream_idle_timeout"),
        ("invalid_json", 400, "invalid_json"),
        (None, None, "unknown"),
        ("Request body is not valid JSON: x", 400, "other"),  # free text never leaks
        ("brand_new_reason", 502, "other"),
    ],
)
def test_error_reasons_fold_into_the_fixed_vocabulary(
    reason: str | None, status: int | None, label: str
) -> None:
    assert error_reason(reason, status) == label
    assert label in UPSTREAM_ERROR_REASONS


def _forwarder_reasons() -> set[str]:
    """The reason literals forwarding/ gives ProxyError (third argument or
    `reason=`) and StreamBroken (first argument)."""
    found: set[str] = set()
    for path in (ROOT / "forwarding").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            args: list[ast.expr] = []
            if node.func.id == "ProxyError":
                args = node.args[2:3] + [k.value for k in node.keywords if k.arg == "reason"]
            elif node.func.id == "StreamBroken":
                args = node.args[:1]
            found |= {a.value for a in args if isinstance(a, ast.Constant)}
    return found


def test_every_reason_the_forwarder_gives_has_its_own_label() -> None:
    reasons = _forwarder_reasons()
    assert {"upstream_unreachable", "upstream_idle_timeout", "invalid_json"} <= reasons
    assert {error_reason(r, 502) for r in reasons} <= set(UPSTREAM_ERROR_REASONS) - {"other"}


def test_the_token_vocabulary_is_the_usage_split() -> None:
    assert TOKEN_TYPES == tuple(Usage().by_type())


def test_known_series_exist_before_any_sample() -> None:
    """The scrape of a fresh process (in-process here: the default registry) has
    every fixed-vocabulary series at 0."""
    m.initialise_known_series()
    text = generate_latest(REGISTRY).decode()
    for reason in UPSTREAM_ERROR_REASONS:
        assert f'claude_proxy_upstream_errors_total{{reason="{reason}"}}' in text
    for kind in TOKEN_TYPES:
        assert f'claude_proxy_tokens_total{{model="none",type="{kind}"}}' in text
    for endpoint in ENDPOINTS:
        for status in STATUS_CLASSES:
            assert (
                f'claude_proxy_requests_total{{endpoint="{endpoint}",model="none",'
                f'status_class="{status}",stream="false"}}'
            ) in text
        assert (
            f'claude_proxy_request_duration_seconds_bucket{{endpoint="{endpoint}",'
            'le="600.0",model="none"}'
        ) in text
    assert 'claude_proxy_cost_usd_total{model="none"}' in text


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
    counted = {k: v for k, v in errors.items() if v}  # every known reason exists, at 0
    assert counted == {'claude_proxy_upstream_errors_total{reason="status_4xx"}': 3.0}
    # No unbounded labels: no request ids, keys or sessions.
    assert not re.search(r"[0-9a-f]{32}", text)
    assert "sk-" not in text
