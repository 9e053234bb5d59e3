"""Shared by the Kubernetes tests: rendering the kustomizations and reading the
rendered objects."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from runtime.settings import Settings, env_var_names

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"
KUBERNETES_VALIDATE = BIN / "kubernetes-validate"
YAMLLINT = BIN / "yamllint"

# The oldest and the newest Kubernetes version kubernetes-validate bundles schemas for
# (`kubernetes-validate --help` names the newest as its default).
K8S_VERSIONS = ("1.34.0", "1.37.0")

TARGETS = {
    "base": K8S / "base",
    "mongodb": K8S / "mongodb",
    "grafana": K8S / "grafana",
    "dev": K8S / "overlays" / "dev",
    "prod": K8S / "overlays" / "prod",
}
# What each target must render.
EXPECTED_KINDS = {
    "base": {
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
    },
    "mongodb": {"StatefulSet", "Service", "NetworkPolicy"},
    # Dashboard, data sources, dashboard provider (tests/k8s/test_grafana_dashboard.py).
    "grafana": {"ConfigMap"},
    "dev": {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "StatefulSet",
    },
    "prod": {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
    },
}

# Targets that contain the proxy Deployment.
PROXY_TARGETS = ("base", "dev", "prod")
OVERLAYS = ("dev", "prod")

DEPLOYMENT = "claude-proxy"
CONTAINER = "proxy"
SECRET_NAME = "claude-proxy-secrets"
SECRET_KEYS = {"MONGODB_URI", "DASHBOARD_PASSWORD"}

# Environment variables the manifests may set that are not fields of Settings, each
# with the reason. Everything else must be a name runtime/settings.py reads.
DOCUMENTED_EXTRAS = {
    "PROMETHEUS_MULTIPROC_DIR": "prometheus_client's multiprocess directory, metrics/registry.py",
}

SETTINGS_ENV = set(env_var_names().values())


# --------------------------------------------------------------------------- helpers


def run(cmd: list[str | Path], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def tool(path: Path) -> Path:
    assert path.exists(), f"{path} missing: install the dev extra (pip install -e '.[dev]')"
    return path


@functools.cache
def kustomize(target: str) -> str:
    proc = run([tool(KUBECTL), "kustomize", TARGETS[target]])
    assert proc.returncode == 0, f"kubectl kustomize {TARGETS[target]} failed:\n{proc.stderr}"
    return proc.stdout


def rendered_docs(target: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(kustomize(target)) if doc]


def objects(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name_prefix: str = "") -> dict[str, Any]:
    found = [d for d in objects(docs, kind) if d["metadata"]["name"].startswith(name_prefix)]
    assert len(found) == 1, f"expected one {kind} {name_prefix!r}, found {len(found)}"
    return found[0]


def deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    found = [d for d in objects(docs, "Deployment") if d["metadata"]["name"] == DEPLOYMENT]
    assert len(found) == 1, f"expected Deployment {DEPLOYMENT}"
    return found[0]


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return deployment(docs)["spec"]["template"]["spec"]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    found = [c for c in pod_spec(docs)["containers"] if c["name"] == CONTAINER]
    assert len(found) == 1, f"expected container {CONTAINER!r}"
    return found[0]


def config_map(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The data of the ConfigMap(s) the proxy container takes its environment from."""
    names = [
        src["configMapRef"]["name"]
        for src in container(docs).get("envFrom", [])
        if "configMapRef" in src
    ]
    assert names, "the proxy container takes no environment from a ConfigMap"
    data: dict[str, str] = {}
    for name in names:
        cm = [d for d in objects(docs, "ConfigMap") if d["metadata"]["name"] == name]
        assert len(cm) == 1, f"envFrom names ConfigMap {name!r}, which is not rendered"
        data.update(cm[0].get("data", {}))
    return data


def app_settings(docs: list[dict[str, Any]]) -> Settings:
    """What the app would run with: the ConfigMap's values, defaults for the rest."""
    return Settings.from_env(config_map(docs))


def named_port(ctr: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    found = [p["containerPort"] for p in ctr.get("ports", []) if p.get("name") == port]
    assert len(found) == 1, f"port name {port!r} is not a container port"
    return found[0]


def prestop_command(docs: list[dict[str, Any]]) -> list[str]:
    command = container(docs)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["python", "-c"], "preStop must run inline Python (no curl in the image)"
    assert len(command) == 5, "preStop: python -c SCRIPT SETTLE MAX_WAIT"
    return command


def prestop_budget(docs: list[dict[str, Any]]) -> tuple[float, float]:
    _, _, _, settle, max_wait = prestop_command(docs)
    return float(settle), float(max_wait)


def effective_security(pod: dict[str, Any], ctr: dict[str, Any]) -> dict[str, Any]:
    """A container's security context with the pod-level fields it inherits."""
    merged = {
        k: v
        for k, v in pod.get("securityContext", {}).items()
        if k in ("runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile")
    }
    merged.update(ctr.get("securityContext", {}))
    return merged


def assert_hardened(pod: dict[str, Any], ctr: dict[str, Any], uid: int | None = None) -> None:
    sec = effective_security(pod, ctr)
    where = f"container {ctr['name']}"
    assert sec.get("runAsNonRoot") is True, f"{where}: runAsNonRoot must be true"
    for key in ("runAsUser", "runAsGroup"):
        assert isinstance(sec.get(key), int) and sec[key] > 0, f"{where}: numeric non-root {key}"
    if uid is not None:
        assert sec["runAsUser"] == uid, f"{where}: runAsUser {sec['runAsUser']} != image USER {uid}"
    assert sec.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
    assert sec.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
    assert sec.get("privileged", False) is False, f"{where}: privileged"
    caps = sec.get("capabilities", {})
    assert caps.get("drop") == ["ALL"], f"{where}: capabilities must drop ALL"
    assert not caps.get("add"), f"{where}: no capabilities may be added"
    assert sec.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccomp"


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
