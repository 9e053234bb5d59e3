"""The Grafana dashboard (k8s/grafana/) against the running app.

Every Infinity query of the dashboard is sent, with its variables filled in as Grafana
would, to a real proxy process that has logged exchanges with the fake upstream, using
the credentials the provisioned data source sends; the response must have the root
selector and every column the panel reads, with the right types. The routes and their
query parameters must be declared in the app's OpenAPI document, so a renamed route or
parameter fails here instead of silently falling back to defaults. Every Prometheus
expression may use only metric and label names the app's /metrics exposes.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import MongoClient

from tests.conftest import ProxyProcess, start_proxy
from tests.fake_upstream import RATE_LIMIT_HEADERS, FakeUpstream
from tests.k8s.grafana import (
    DATASOURCES,
    INFINITY,
    InfinityQuery,
    infinity_queries,
    interpolate,
    prometheus_targets,
    variables,
)

PASSWORD = "grafana-dashboard-test-password"
ORG = RATE_LIMIT_HEADERS["anthropic-organization-id"]
# What the fake upstream's scenarios put into the log, all answered with its rate-limit
# headers (so with ORG): streamed, JSON, and an error.
TRAFFIC = ("sse:tool_use", "json:thinking", "sse:text_basic", "sse:text_basic", "status:429")
REQUEST_BODY = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}


# --------------------------------------------------------------------------- the live app


@dataclass
class Live:
    proxy: ProxyProcess
    auth: str
    start_ms: int
    end_ms: int

    def get(self, path: str, *, auth: bool = True) -> tuple[int, Any]:
        headers = {"authorization": self.auth} if auth else {}
        request = urllib.request.Request(self.proxy.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def values(self, **override: str) -> dict[str, str]:
        """Variable values as Grafana fills them: the current option of each variable."""
        out = {"__from": str(self.start_ms), "__to": str(self.end_ms)}
        for name, var in variables().items():
            if var["type"] in ("custom", "query"):
                out[name] = var["current"]["value"]
        if out.get("org") == "$__all":
            out["org"] = variables()["org"]["allValue"]
        out.update(override)
        return out


def _send(url: str, scenario: str) -> None:
    body = dict(REQUEST_BODY, stream=scenario.startswith("sse:"))
    request = urllib.request.Request(
        url + "/v1/messages",
        data=json.dumps(body).encode(),
        headers={
            "x-fake": scenario,
            "x-api-key": "sk-ant-grafana-test",
            "content-type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        exc.read()


def _wait_for(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        ok, last = check()
        if ok:
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} never happened; last answer: {last!r}")


@pytest.fixture(scope="module")
def live(
    upstream: FakeUpstream, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    (api,) = [ds for ds in DATASOURCES if ds["type"] == INFINITY]
    user = api["basicAuthUser"]
    proxy = start_proxy(
        tmp_path_factory.mktemp("grafana"),
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "MONGODB_URI": mongo_uri,
            "DASHBOARD_PASSWORD": PASSWORD,
        },
    )
    try:
        start_ms = int(time.time() * 1000) - 3 * 3600 * 1000
        for scenario in TRAFFIC:
            _send(proxy.url, scenario)
        auth = "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        # Grafana's __to is "now" when the panel refreshes, a little after the traffic.
        handle = Live(proxy, auth, start_ms, int(time.time() * 1000) + 60_000)

        def logged() -> tuple[bool, Any]:
            status, body = handle.get("/api/requests?limit=1")
            return status == 200 and body.get("total", 0) >= len(TRAFFIC), (status, body)

        def counted() -> tuple[bool, Any]:
            window = f"start_date={handle.start_ms}&end_date={handle.end_ms}"
            status, body = handle.get(f"/api/stats?{window}")
            assert status != 404, f"GET /api/stats: {body}"
            ok = status == 200 and body.get("total_requests", 0) >= len(TRAFFIC)
            return ok, (status, body)

        _wait_for(logged, "the exchanges reaching the request log")
        _wait_for(counted, "the exchanges reaching /api/stats")
        yield handle
    finally:
        proxy.stop()
        database = f"proxy_test_{proxy.port}"
        with MongoClient(mongo_uri, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(database)


@functools.cache
def _openapi_paths(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/openapi.json", timeout=30) as resp:
        return json.loads(resp.read())["paths"]


def test_every_infinity_url_is_a_registered_route_with_declared_parameters(live: Live) -> None:
    paths = _openapi_paths(live.proxy.url)
    for q in infinity_queries():
        assert q.path in paths and "get" in paths[q.path], f"{q.where}: no GET {q.path} route"
        declared = {p["name"] for p in paths[q.path]["get"].get("parameters", [])}
        unknown = set(q.params) - declared
        assert not unknown, f"{q.where}: {q.path} declares no parameter {sorted(unknown)}"


def test_the_stats_api_needs_the_data_source_credentials(live: Live) -> None:
    # Without the Basic auth the provisioned data source sends, the panels stay empty.
    status, body = live.get("/api/stats/organizations", auth=False)
    assert status == 401, (status, body)


def _rows(body: Any, root: str) -> list[Any]:
    if root == "":
        return [body]
    assert isinstance(body, dict) and root in body, f"no {root!r} in {str(body)[:300]}"
    rows = body[root]
    assert isinstance(rows, list), f"{root!r} is a {type(rows).__name__}, not an array"
    return rows


def _check_value(value: Any, kind: str, where: str, live: Live) -> None:
    if kind == "timestamp_epoch":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r}"
        # Milliseconds near the range (day buckets start at a local midnight before it).
        assert live.start_ms - 2 * 86_400_000 <= value <= live.end_ms, f"{where}: {value}"
    elif kind == "number":
        assert value is None or (isinstance(value, int | float) and not isinstance(value, bool)), (
            f"{where}: {value!r} is not a number"
        )
    else:
        assert value is None or isinstance(value, str), f"{where}: {value!r} is not a string"


SCENARIOS = {
    # The dashboard as it opens: every variable at its current value (org: All).
    "defaults": {},
    "one-org-berlin": {"org": ORG, "tz": "Europe/Berlin"},
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("query", infinity_queries(), ids=lambda q: q.where)
def test_every_infinity_query_returns_the_fields_its_panel_reads(
    live: Live, query: InfinityQuery, scenario: str
) -> None:
    url = interpolate(query.url, live.values(**SCENARIOS[scenario]))
    status, body = live.get(url)
    assert status == 200, f"{query.where}: GET {url} -> {status} {body}"
    rows = _rows(body, query.target["root_selector"])
    assert rows, f"{query.where}: GET {url} returned no rows although requests were logged"
    columns = query.target.get("columns", [])
    if not columns:  # the organization variable: one value per row
        assert all(isinstance(r, str) for r in rows), rows
        return
    for i, row in enumerate(rows):
        assert isinstance(row, dict), f"{query.where}: row {i} is {row!r}"
        for column in columns:
            where = f"{query.where}: GET {url} row {i} {column['selector']}"
            assert column["selector"] in row, f"{where} missing (keys: {sorted(row)})"
            _check_value(row[column["selector"]], column["type"], where, live)
    numbers = [c["selector"] for c in columns if c["type"] == "number"]
    assert any(row[name] for row in rows for name in numbers), (
        f"{query.where}: GET {url}: every number the panel plots is zero or null"
    )


def test_the_organization_variable_lists_the_logged_organization(live: Live) -> None:
    (q,) = [q for q in infinity_queries() if q.where == "variable org"]
    status, body = live.get(interpolate(q.url, live.values()))
    assert status == 200 and _rows(body, q.target["root_selector"]) == [ORG], body


def test_all_organizations_means_no_organization_filter(live: Live) -> None:
    window = f"start_date={live.start_ms}&end_date={live.end_ms}"
    all_value = variables()["org"]["allValue"]
    _, unfiltered = live.get(f"/api/stats?{window}")
    status, everything = live.get(f"/api/stats?{window}&org={all_value}")
    assert status == 200, everything
    assert everything["total_requests"] == unfiltered["total_requests"] == len(TRAFFIC)
    _, one = live.get(f"/api/stats?{window}&org={ORG}")
    _, none = live.get(f"/api/stats?{window}&org=org-nobody")
    assert one["total_requests"] == len(TRAFFIC) and none["total_requests"] == 0


def test_every_bucket_and_time_zone_option_is_accepted(live: Live) -> None:
    options = {
        name: [o["value"] for o in variables()[name]["options"]] for name in ("bucket", "tz")
    }
    for name, values in options.items():
        routes = {q.path: q for q in infinity_queries() if f"${{{name}}}" in q.url}
        assert routes, f"no query uses ${name}"
        for q in routes.values():
            for value in values:
                url = interpolate(q.url, live.values(**{name: value}))
                status, body = live.get(url)
                assert status == 200, f"{name}={value}: GET {url} -> {status} {body}"


def test_the_rate_limit_panels_show_the_upstream_headers(live: Live) -> None:
    (q,) = {q.path: q for q in infinity_queries() if q.target["root_selector"] == "latest"}.values()
    _, body = live.get(interpolate(q.url, live.values(org=ORG)))
    (latest,) = body["latest"]
    headers = RATE_LIMIT_HEADERS
    assert latest["organizationId"] == ORG
    assert latest["requestsRemaining"] == int(headers["anthropic-ratelimit-requests-remaining"])
    assert latest["tokensLimit"] == int(headers["anthropic-ratelimit-tokens-limit"])
    assert latest["unifiedUtilization5h"] == float(
        headers["anthropic-ratelimit-unified-5h-utilization"]
    )
    assert latest["unifiedUtilization7d"] == float(
        headers["anthropic-ratelimit-unified-7d-utilization"]
    )


# --------------------------------------------------------------------------- Prometheus

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s")
LABEL_NAME = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')
METRIC = re.compile(r"\bclaude_proxy_[a-zA-Z0-9_]+")
AGGREGATION_BY = re.compile(r"\bby\s*\(([^)]*)\)")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
# Labels Prometheus itself attaches to every scraped sample.
TARGET_LABELS = {"instance", "job"}


def _exposed(live: Live) -> dict[str, set[str]]:
    """Sample name -> label names, from the app's /metrics."""
    with urllib.request.urlopen(live.proxy.url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            out.setdefault(match.group(1), set()).update(LABEL_NAME.findall(match.group(2) or ""))
    return out


def test_prometheus_queries_use_only_exposed_metrics_and_labels(live: Live) -> None:
    exposed = _exposed(live)
    targets = prometheus_targets()
    assert len(targets) >= 8
    used = set()
    for where, target in targets:
        expr = target["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), where
        metrics = METRIC.findall(expr)
        assert metrics, f"{where}: {expr!r} reads none of the proxy's metrics"
        used |= set(metrics)
        labels = set(TARGET_LABELS)
        for metric in metrics:
            assert metric in exposed, f"{where}: {metric} is not in /metrics"
            labels |= exposed[metric]
            # Counters and histogram buckets only make sense as a rate.
            counter = metric.endswith(("_total", "_bucket"))
            in_rate = re.search(rf"\b(rate|increase)\(\s*{metric}(\{{[^}}]*\}})?\[\w+\]\)", expr)
            assert bool(in_rate) == counter, f"{where}: {metric} rate use in {expr!r}"
        by_labels = {
            name.strip()
            for group in AGGREGATION_BY.findall(expr)
            for name in group.split(",")
            if name.strip()
        }
        assert by_labels <= labels, f"{where}: grouping by {sorted(by_labels - labels)}"
        if "histogram_quantile" in expr:
            assert "le" in by_labels and all(m.endswith("_bucket") for m in metrics), where
        legend = set(LEGEND_LABEL.findall(target.get("legendFormat", "")))
        assert legend <= (by_labels if by_labels else labels), f"{where}: legend {legend}"
    histograms = {m for m in used if m.endswith("_bucket")}
    assert {
        "claude_proxy_request_duration_seconds_bucket",
        "claude_proxy_time_to_first_byte_seconds_bucket",
    } <= histograms
