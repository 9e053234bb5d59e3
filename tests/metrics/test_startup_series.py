"""Every series the Grafana dashboard queries is in /metrics right after start-up,
before any traffic, for every known value of the labels it groups by: a panel
shows 0, not "No data", and `rate()` sees the first increment."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator

import pytest

from metrics.labels import (
    ENDPOINTS,
    NO_MODEL,
    STATUS_CLASSES,
    STREAM_VALUES,
    TOKEN_TYPES,
    UPSTREAM_ERROR_REASONS,
)
from metrics.registry import LATENCY_BUCKETS
from tests.conftest import ProxyProcess, start_proxy
from tests.k8s.grafana import prometheus_targets

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
METRIC = re.compile(r"\bclaude_proxy_[a-zA-Z0-9_]+")
BY = re.compile(r"\bby\s*\(([^)]*)\)")
MATCHER = re.compile(r"(claude_proxy_[a-zA-Z0-9_]+)\{([^}]*)\}")
# Attached by Prometheus at scrape time, never by the app.
TARGET_LABELS = {"instance", "job"}
# The values each label must have from the start; `model` is unbounded, so only
# the one value known before traffic.
KNOWN_VALUES = {
    "status_class": set(STATUS_CLASSES),
    "reason": set(UPSTREAM_ERROR_REASONS),
    "type": set(TOKEN_TYPES),
    "endpoint": set(ENDPOINTS),
    "stream": set(STREAM_VALUES),
    "model": {NO_MODEL},
    "le": {f"{float(b)}" for b in LATENCY_BUCKETS} | {"+Inf"},
}


@pytest.fixture(scope="module")
def fresh_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    # Two workers and the recorder: the scrape merges their sample files.
    proxy = start_proxy(tmp_path_factory.mktemp("startup"), {"SANIC_WORKERS": "2"})
    yield proxy
    proxy.stop()


def _scrape(proxy: ProxyProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"{proxy.url}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    series: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = dict(LABEL.findall(match.group(2) or ""))
            series.setdefault(match.group(1), []).append((labels, float(match.group(3))))
    return series


def test_every_series_the_dashboard_queries_exists_before_traffic(
    fresh_proxy: ProxyProcess,
) -> None:
    series = _scrape(fresh_proxy)  # the first request the proxy gets
    targets = prometheus_targets()
    assert len(targets) >= 8
    checked = 0
    for where, target in targets:
        expr = target["expr"]
        grouped = {
            name.strip() for group in BY.findall(expr) for name in group.split(",") if name.strip()
        } - TARGET_LABELS
        matchers = {m: dict(LABEL.findall(body)) for m, body in MATCHER.findall(expr)}
        for metric in METRIC.findall(expr):
            samples = series.get(metric)
            assert samples, f"{where}: {metric} is not in /metrics before traffic"
            wanted = matchers.get(metric, {})
            samples = [s for s in samples if wanted.items() <= s[0].items()]
            assert samples, f"{where}: no {metric} series matches {wanted}"
            for label in grouped:
                assert label in KNOWN_VALUES, f"{where}: groups by {label}, no known values"
                present = {labels.get(label) for labels, _ in samples}
                missing = KNOWN_VALUES[label] - present
                assert not missing, f"{where}: {metric} lacks {label}={sorted(missing)}"
            if metric.endswith(("_total", "_bucket")):
                assert all(value == 0 for _, value in samples), f"{where}: {metric} counted"
            checked += 1
    assert checked >= 10
    # The combinations too, not only each value somewhere: the request counter
    # has every endpoint x status class x stream.
    requests = {
        (labels["endpoint"], labels["status_class"], labels["stream"])
        for labels, _ in series["claude_proxy_requests_total"]
    }
    assert len(requests) == len(ENDPOINTS) * len(STATUS_CLASSES) * len(STREAM_VALUES)
