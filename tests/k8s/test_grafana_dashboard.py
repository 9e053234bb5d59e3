"""The Grafana dashboard (k8s/grafana/), its structure: panel ids and grid, data
source references, variables, well-formed Infinity queries, the provisioning files
and the ConfigMaps the overlays ship. Against the running app: test_grafana_live.py.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tests.k8s.grafana import (
    BUILT_IN_VARIABLES,
    COLUMN_TYPES,
    DASHBOARD,
    DATASOURCES,
    GRAFANA,
    INFINITY,
    PANEL_TYPES,
    PROMETHEUS,
    PROVIDERS,
    SIMPLE_SELECTOR,
    VARIABLE,
    all_panels,
    datasource_uids,
    infinity_queries,
    prometheus_targets,
    resolve_datasource,
    variables,
)
from tests.k8s.manifests import OVERLAYS, objects, rendered_docs


def test_panel_ids_are_unique_and_the_grid_is_valid() -> None:
    panels = all_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    assert all(isinstance(i, int) and i > 0 for i in ids)
    boxes = []
    for p in panels:
        assert p["type"] in PANEL_TYPES, f"panel {p['id']}: type {p['type']}"
        assert p.get("title"), f"panel {p['id']} has no title"
        grid = p["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"}, f"panel {p['id']}: gridPos {grid}"
        assert all(isinstance(v, int) for v in grid.values())
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["y"] >= 0
        assert grid["x"] + grid["w"] <= 24, f"panel {p['id']} is wider than the grid"
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        for other_id, other in boxes:
            assert not cells & other, f"panels {other_id} and {p['id']} overlap"
        boxes.append((p["id"], cells))
        if p["type"] != "row":
            refs = [t["refId"] for t in p["targets"]]
            assert refs and len(refs) == len(set(refs)), f"panel {p['id']}: refIds {refs}"
    assert DASHBOARD["uid"] and DASHBOARD["title"] and DASHBOARD["schemaVersion"] >= 36


def test_every_data_source_reference_is_a_provisioned_data_source() -> None:
    for p in all_panels():
        if p["type"] == "row":
            continue
        refs = [p["datasource"], *(t["datasource"] for t in p["targets"])]
        for ref in refs:
            assert ref["type"] in (INFINITY, PROMETHEUS), f"panel {p['id']}: {ref}"
            uid = resolve_datasource(ref)
            assert uid in datasource_uids(ref["type"]), (
                f"panel {p['id']}: data source {uid!r} is not provisioned as {ref['type']}"
            )
    org = variables()["org"]
    assert resolve_datasource(org["datasource"]) in datasource_uids(INFINITY)


def test_every_variable_used_is_defined() -> None:
    defined = set(variables()) | BUILT_IN_VARIABLES
    texts = [q.url for q in infinity_queries()]
    texts += [t["expr"] for _, t in prometheus_targets()]
    texts += [p["title"] for p in all_panels()] + [p.get("description", "") for p in all_panels()]
    for text in texts:
        for match in VARIABLE.finditer(text):
            name = match.group(1) or match.group(3)
            assert name in defined, f"{text!r} uses undefined variable ${name}"


def test_infinity_queries_are_well_formed() -> None:
    queries = infinity_queries()
    assert len(queries) >= 10
    for q in queries:
        t = q.target
        assert t["type"] == "json" and t["source"] == "url", q.where
        assert t.get("parser", "backend") == "backend", q.where
        assert t["url_options"]["method"] == "GET", q.where
        # Relative: the data source's URL (the proxy Service) is put in front.
        assert q.url.startswith("/api/stats"), f"{q.where}: {q.url}"
        root = t["root_selector"]
        assert root == "" or SIMPLE_SELECTOR.fullmatch(root), f"{q.where}: root {root!r}"
        for column in t.get("columns", []):
            assert SIMPLE_SELECTOR.fullmatch(column["selector"]), f"{q.where}: {column}"
            assert column["type"] in COLUMN_TYPES, f"{q.where}: {column}"
        selectors = [c["selector"] for c in t.get("columns", [])]
        assert len(selectors) == len(set(selectors)), f"{q.where}: duplicate columns"
        if t.get("format") == "timeseries":
            time_columns = [c for c in t["columns"] if c["type"] == "timestamp_epoch"]
            assert [c["selector"] for c in time_columns] == ["ts"], q.where
        # Time-bounded routes take the dashboard's range, as epoch milliseconds.
        if q.path != "/api/stats/organizations":
            assert "${__from}" in q.url and "${__to}" in q.url, f"{q.where}: {q.url}"
            assert "org=${org}" in q.url, f"{q.where}: ignores the organization variable"


def test_provisioning_files_agree_with_the_dashboard() -> None:
    uids = [ds["uid"] for ds in DATASOURCES]
    assert len(uids) == len(set(uids))
    (api,) = [ds for ds in DATASOURCES if ds["type"] == INFINITY]
    base = urlsplit(api["url"])
    assert (base.scheme, base.netloc) == ("http", "claude-proxy:3001"), "the proxy Service"
    assert base.path in ("", "/")
    # Infinity sends credentials only to allowed hosts.
    assert api["url"].rstrip("/") in [h.rstrip("/") for h in api["jsonData"]["allowedHosts"]]
    assert api["basicAuth"] is True and api["jsonData"]["auth_method"] == "basicAuth"
    password = api["secureJsonData"]["basicAuthPassword"]
    assert re.fullmatch(r"\$\{?[A-Z_][A-Z0-9_]*\}?", password), "a $ENV reference, not a secret"
    (prometheus,) = [ds for ds in DATASOURCES if ds["type"] == PROMETHEUS]
    assert urlsplit(prometheus["url"]).scheme in ("http", "https")

    (provider,) = PROVIDERS
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")


def test_the_overlays_ship_the_dashboard_and_its_data_sources() -> None:
    expected = {
        "claude-proxy-grafana-dashboards": (
            {"grafana_dashboard": "1"},
            {"claude-proxy.json": GRAFANA / "dashboard.json"},
        ),
        "claude-proxy-grafana-datasources": (
            {"grafana_datasource": "1"},
            {"claude-proxy-datasources.yaml": GRAFANA / "datasources.yaml"},
        ),
        "claude-proxy-grafana-dashboard-provider": (
            {},
            {"claude-proxy-dashboards.yaml": GRAFANA / "dashboards.yaml"},
        ),
    }
    for overlay in OVERLAYS:
        maps = {cm["metadata"]["name"]: cm for cm in objects(rendered_docs(overlay), "ConfigMap")}
        for name, (labels, files) in expected.items():
            assert name in maps, f"{overlay}: ConfigMap {name} missing (no hash suffix wanted)"
            cm = maps[name]
            assert labels.items() <= cm["metadata"].get("labels", {}).items(), f"{overlay} {name}"
            assert cm["data"] == {k: p.read_text() for k, p in files.items()}, f"{overlay} {name}"
    # kubectl apply keeps a copy in an annotation, and annotations are capped at 256 KiB.
    assert len((GRAFANA / "dashboard.json").read_bytes()) < 200_000
