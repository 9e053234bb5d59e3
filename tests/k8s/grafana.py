"""The Grafana dashboard (k8s/grafana/) as Grafana reads it: panels, variables,
Infinity queries, Prometheus targets, data source references."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from tests.k8s.manifests import K8S

GRAFANA = K8S / "grafana"
DASHBOARD: dict[str, Any] = json.loads((GRAFANA / "dashboard.json").read_text())
DATASOURCES: list[dict[str, Any]] = yaml.safe_load((GRAFANA / "datasources.yaml").read_text())[
    "datasources"
]
PROVIDERS: list[dict[str, Any]] = yaml.safe_load((GRAFANA / "dashboards.yaml").read_text())[
    "providers"
]

INFINITY = "yesoreyeram-infinity-datasource"
PROMETHEUS = "prometheus"
# Infinity column types (the backend parser's); timestamp_epoch is epoch milliseconds.
COLUMN_TYPES = {"string", "number", "timestamp_epoch"}
PANEL_TYPES = {"row", "stat", "timeseries", "table", "barchart"}
BUILT_IN_VARIABLES = {"__from", "__to"}
# A plain field name: valid both as a gjson path and as JSONata, which is what the
# backend parser tries in turn, and readable by this test without either.
SIMPLE_SELECTOR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


# --------------------------------------------------------------------------- the dashboard


def all_panels() -> list[dict[str, Any]]:
    """Top-level panels and the panels inside collapsed rows."""
    out = []
    for panel in DASHBOARD["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in DASHBOARD["templating"]["list"]}


@dataclass(frozen=True)
class InfinityQuery:
    where: str
    target: dict[str, Any]

    @property
    def url(self) -> str:
        return self.target["url"]

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def params(self) -> list[str]:
        return [k for k, _ in parse_qsl(urlsplit(self.url).query, keep_blank_values=True)]


def infinity_queries() -> list[InfinityQuery]:
    found = [
        InfinityQuery(f"panel {p['id']} {p['title']!r} {t['refId']}", t)
        for p in all_panels()
        for t in p.get("targets", [])
        if t["datasource"]["type"] == INFINITY
    ]
    for var in variables().values():
        if var["type"] == "query" and var["datasource"]["type"] == INFINITY:
            found.append(InfinityQuery(f"variable {var['name']}", var["query"]["infinityQuery"]))
    return found


def prometheus_targets() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"panel {p['id']} {p['title']!r} {t['refId']}", t)
        for p in all_panels()
        for t in p.get("targets", [])
        if t["datasource"]["type"] == PROMETHEUS
    ]


def interpolate(text: str, values: dict[str, str]) -> str:
    """Grafana's variable syntax ($name, ${name}, ${name:format}) with the formats used."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        fmt = match.group(2)
        assert name in values, f"{text!r} uses ${name}, which has no value here"
        assert fmt in (None, "raw"), f"{text!r}: format {fmt!r} is not handled by this test"
        return values[name]

    return VARIABLE.sub(replace, text)


def datasource_uids(kind: str) -> set[str]:
    return {ds["uid"] for ds in DATASOURCES if ds["type"] == kind}


def resolve_datasource(ref: dict[str, Any]) -> str:
    """The provisioned uid a panel's data source reference ends up at."""
    uid = ref["uid"]
    match = VARIABLE.fullmatch(uid)
    if match:
        var = variables().get(match.group(1) or match.group(3))
        assert var is not None and var["type"] == "datasource", f"{uid} is no data source variable"
        assert var["query"] == ref["type"], f"{uid} lists {var['query']}, panel wants {ref['type']}"
        uid = var["current"]["value"]
    return uid
