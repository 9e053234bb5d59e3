"""`/api/stats*` on the running proxy: requests in, the numbers out, bad input 400."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.conftest import ProxyProcess, start_proxy
from tests.fake_upstream import FakeUpstream

BODY = json.dumps(
    {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
).encode()


@pytest.fixture(scope="module")
def served(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    proxy = start_proxy(tmp_path_factory.mktemp("stats"), {"ANTHROPIC_FORWARD_URL": upstream.url})
    yield proxy
    proxy.stop()


async def _get(
    http: aiohttp.ClientSession, proxy: ProxyProcess, path: str, **params: Any
) -> tuple[int, Any]:
    async with http.get(
        f"{proxy.url}{path}", params={k: str(v) for k, v in params.items()}
    ) as resp:
        return resp.status, await resp.json()


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


async def test_requests_through_the_proxy_show_up_in_every_stat(served: ProxyProcess, http) -> None:
    # omitted_thinking: Opus 5.5 answers, 150 of its output tokens were thinking.
    for scenario in ("sse:tool_use", "json:thinking", "status:429", "sse:omitted_thinking"):
        async with http.post(
            f"{served.url}/v1/messages",
            data=BODY,
            headers={"x-fake": scenario, "x-api-key": "sk-x"},
        ) as resp:
            await resp.read()
    for _ in range(100):
        status, usage = await _get(http, served, "/api/stats")
        if usage["total_requests"] == 4:
            break
        await asyncio.sleep(0.1)
    assert status == 200 and usage["total_requests"] == 4
    _, listing = await _get(http, served, "/api/requests", limit=10)
    documents = listing["requests"]
    assert usage["total_tokens"] == sum(d["tokens"] for d in documents) > 0
    assert usage["total_input_tokens"] == sum(
        (d["usage"] or {}).get("input_tokens", 0) for d in documents
    )
    assert usage["total_cost_usd"] == pytest.approx(
        sum((d["cost"] or {}).get("usd") or 0 for d in documents)
    )
    assert usage["total_errors"] == 1
    assert usage["requests_by_model"]["claude-sonnet-4-5-20250929"]["request_count"] == 4
    # Thinking is reported beside output, never added to the totals.
    assert usage["total_thinking_tokens"] == 150
    assert usage["total_tokens"] == sum(d["tokens"] for d in documents)
    assert usage["requests_by_model"]["claude-sonnet-4-5-20250929"]["thinking_tokens"] == 150
    assert usage["cost_incomplete_requests"] == 0 and usage["unpriced_requests"] == 0

    now = datetime.now(UTC)
    window = {"start": _ms(now - timedelta(hours=2)), "end": _ms(now + timedelta(minutes=1))}
    _, hourly = await _get(http, served, "/api/stats/hourly", **window, tz="Europe/Paris")
    assert sum(r["requests"] for r in hourly["hourlyStats"]) == 4
    assert sum(r["thinking_tokens"] for r in hourly["hourlyStats"]) == 150
    assert {r["cost_incomplete_requests"] for r in hourly["hourlyStats"]} == {0}
    assert hourly["todayRequests"] == 4 and hourly["todayTokens"] == usage["total_tokens"]
    assert all(isinstance(r["ts"], int) for r in hourly["hourlyStats"])
    _, daily = await _get(http, served, "/api/stats/dashboard")
    assert len(daily["dailyStats"]) == 30 and daily["dailyStats"][-1]["requests"] == 4
    assert daily["dailyStats"][-1]["thinking_tokens"] == 150
    _, models = await _get(http, served, "/api/stats/models", **window)
    assert [m["model"] for m in models["modelStats"]] == ["claude-sonnet-4-5-20250929"]
    assert models["modelStats"][0]["thinking_tokens"] == 150
    _, orgs = await _get(http, served, "/api/stats/organizations")
    assert orgs == {"organizations": ["org-fake-0001"]}
    _, latency = await _get(http, served, "/api/stats/latency", **window)
    assert latency["latency"][0]["requests"] == 4 and latency["latency"][0]["p50_ms"] is not None
    _, limits = await _get(http, served, "/api/stats/ratelimits", **window, org="all")
    assert limits["latest"][0]["unifiedUtilization5h"] == 0.42
    assert limits["buckets"][0]["organizationId"] == "org-fake-0001"
    _, only = await _get(http, served, "/api/stats", org="org-none")
    assert only["total_requests"] == 0 and only["requests_by_model"] == {}


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/api/stats/hourly", {}, "start"),
        ("/api/stats/hourly", {"start": "2026-11-01", "end": "2026-11-02", "bucket": 7}, "bucket"),
        (
            "/api/stats/hourly",
            {"start": "2026-11-01", "end": "2026-11-02", "tz": "Mars/Base"},
            "tz",
        ),
        ("/api/stats/hourly", {"start": "2026-11-01", "end": "2027-11-02", "bucket": 1}, "range"),
        ("/api/stats/models", {"start": "yesterday", "end": "2026-11-02"}, "start"),
        ("/api/stats/models", {"start": "2026-11-03", "end": "2026-11-02"}, "end"),
        ("/api/stats/latency", {"start": "2026-11-01"}, "end"),
        (
            "/api/stats/ratelimits",
            {"start": "2026-11-01", "end": "2026-11-02", "bucket": "x"},
            "bucket",
        ),
        ("/api/stats", {"start_date": "2026-13-45"}, "start_date"),
        ("/api/stats/dashboard", {"start": "1990-01-01", "end": "2026-11-02"}, "range"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    served: ProxyProcess, http, path: str, params: dict[str, Any], named: str
) -> None:
    status, body = await _get(http, served, path, **params)
    assert status == 400
    # The seed's ErrorResponse: the parameter in both the sentence and the details.
    assert set(body) == {"error", "details"}, body
    assert body["error"] == f"Invalid parameter '{named}'", body
    assert body["details"].startswith(f"{named}: "), body


async def test_a_range_without_data_is_zero_filled(served: ProxyProcess, http) -> None:
    status, hourly = await _get(
        http, served, "/api/stats/hourly", start="2020-01-01", end="2020-01-02", tz="Asia/Tokyo"
    )
    assert status == 200
    assert len(hourly["hourlyStats"]) == 24 and {r["requests"] for r in hourly["hourlyStats"]} == {
        0
    }
    assert hourly["hourlyStats"][0]["label"] == "2020-01-01 00:00"


async def test_token_totals_and_times_are_int64_in_the_spec(served: ProxyProcess, http) -> None:
    async with http.get(f"{served.url}/openapi.json") as resp:
        schemas = (await resp.json())["components"]["schemas"]
    for name, fields in {
        "UsageStats": ("total_tokens", "total_input_tokens", "total_thinking_tokens"),
        "ModelUsage": ("tokens", "output_tokens", "thinking_tokens"),
        "DailyStat": ("tokens", "cache_read_tokens", "thinking_tokens", "ts"),
        "HourlyStat": ("tokens", "ts"),
        "ModelStat": ("tokens", "thinking_tokens"),
        "HourlyStatsResponse": ("todayTokens",),
    }.items():
        properties = schemas[name]["properties"]
        for field in fields:
            assert properties[field] == {**properties[field], "type": "integer", "format": "int64"}
    # Every integer is 64-bit unless openapi/integers.py names it bounded; the
    # incomplete count sits beside the cost.
    assert schemas["UsageStats"]["properties"]["cost_incomplete_requests"]["format"] == "int64"
    assert "cost_incomplete_requests" in schemas["DailyStat"]["required"]
