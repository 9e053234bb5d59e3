"""The locked-down default in the rendered manifests: prod pods need
DASHBOARD_PASSWORD (a non-optional secretKeyRef, and the app's own refusal agrees),
dev opens the dashboard only by saying so, and prod's NetworkPolicy admits the
ingress controller, Prometheus and Grafana rather than anyone."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from runtime.dashboard_guard import open_dashboard_problem
from tests.k8s.manifests import (
    DEPLOYMENT,
    K8S,
    PROXY_TARGETS,
    app_settings,
    comment_above,
    config_map,
    container,
    one,
)

Docs = dict[str, list[dict[str, Any]]]


def password_ref(docs: list[dict[str, Any]]) -> dict[str, Any]:
    env = {e["name"]: e for e in container(docs).get("env", [])}
    return env["DASHBOARD_PASSWORD"]["valueFrom"]["secretKeyRef"]


def test_prod_requires_the_dashboard_password_from_the_secret(rendered: Docs) -> None:
    """The kubelet does not start a container whose non-optional secretKeyRef names a
    missing key (CreateContainerConfigError), so the pod never runs open."""
    ref = password_ref(rendered["prod"])
    assert ref["key"] == "DASHBOARD_PASSWORD"
    assert ref.get("optional", False) is False
    # Written out, so a reader sees the choice rather than a default.
    assert "optional" in ref
    assert "DASHBOARD_OPEN" not in config_map(rendered["prod"]), "prod must not opt out"


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_the_app_agrees_with_the_manifest(rendered: Docs, target: str) -> None:
    """Without the Secret's password, the app refuses exactly where the manifest
    makes the password required: the two guards never disagree (an optional ref
    without the opt-out would crash-loop; a required one with it would be moot)."""
    docs = rendered[target]
    settings = app_settings(docs)
    optional = password_ref(docs).get("optional", False)
    problem = open_dashboard_problem(settings)  # the ConfigMap alone: no password
    if optional:
        assert problem is None and settings.dashboard_open, target
    else:
        assert problem is not None and "DASHBOARD_PASSWORD" in problem, target
        with_password = dataclasses.replace(settings, dashboard_password="from-the-secret")
        assert open_dashboard_problem(with_password) is None


def test_dev_opens_the_dashboard_explicitly_and_says_why(rendered: Docs) -> None:
    assert app_settings(rendered["dev"]).dashboard_open is True
    source = (K8S / "overlays" / "dev" / "kustomization.yaml").read_text().splitlines()
    (index,) = [i for i, line in enumerate(source) if line.strip() == "- DASHBOARD_OPEN=true"]
    reason = " ".join(comment_above(source, index))
    assert "port-forward" in reason and "prod" in reason


def test_prod_ingress_comes_only_from_the_pods_that_need_it(rendered: Docs) -> None:
    policy = one(rendered["prod"], "NetworkPolicy", DEPLOYMENT)
    rules = policy["spec"]["ingress"]
    assert rules, "no ingress rule: the proxy would be unreachable"
    names = set()
    for rule in rules:
        peers = rule.get("from")
        assert peers, "an ingress rule without `from` admits every source"
        for peer in peers:
            assert "ipBlock" not in peer, "address ranges are for hostNetwork controllers only"
            namespaces = peer.get("namespaceSelector", {}).get("matchLabels")
            pods = peer.get("podSelector", {}).get("matchLabels")
            # Both, in one peer: these pods in these namespaces. Either alone (or an
            # empty selector) admits a whole namespace or every namespace.
            assert namespaces and pods, peer
            assert set(namespaces) == {"kubernetes.io/metadata.name"}, namespaces
            names.add(pods["app.kubernetes.io/name"])
    assert names == {"ingress-nginx", "prometheus", "grafana"}


def test_base_and_dev_keep_ingress_open_to_the_port_only(rendered: Docs) -> None:
    """The narrowing is prod's (its labels depend on the cluster); the others still
    admit the proxy port only, which test_manifests checks."""
    for target in ("base", "dev"):
        (rule,) = one(rendered[target], "NetworkPolicy", DEPLOYMENT)["spec"]["ingress"]
        assert "from" not in rule, target
