"""Offline checks of the Kubernetes manifests (k8s/) and the image (Dockerfile).

Nothing here needs a cluster or a Docker engine: `kubectl kustomize` renders every
kustomization, `kubernetes-validate` checks each rendered object against the bundled
Kubernetes schemas, `yamllint` checks the sources, and the rendered Deployment is
compared with the settings the app actually reads (runtime/settings.py), so a manifest
cannot drift from the code: a renamed variable, another port, a longer drain or a
missing security field fails here.

The preStop hook's inline Python is also run for real against a fake /livez.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
import zipfile
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
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


@pytest.fixture(scope="module")
def rendered_text() -> dict[str, str]:
    return {name: kustomize(name) for name in TARGETS}


@pytest.fixture(scope="module")
def rendered(rendered_text: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [doc for doc in yaml.safe_load_all(text) if doc]
        for name, text in rendered_text.items()
    }


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


# --------------------------------------------------------------------------- rendering


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


@pytest.mark.parametrize("target", list(TARGETS))
def test_kustomize_renders_the_expected_objects(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    kinds = {d["kind"] for d in rendered[target]}
    assert kinds == EXPECTED_KINDS[target], f"{target}: rendered kinds {sorted(kinds)}"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_object_passes_strict_schema_validation(
    rendered_text: dict[str, str], tmp_path: Path, version: str
) -> None:
    files = []
    for name, text in rendered_text.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        files.append(path)
    files.append(K8S / "base" / "secret.example.yaml")
    expected = sum(1 for f in files for doc in yaml.safe_load_all(f.read_text()) if doc)
    proc = run([tool(KUBERNETES_VALIDATE), "--strict", "-k", version, *files])
    lines = proc.stdout.splitlines() + proc.stderr.splitlines()
    # kubernetes-validate only warns (exit 0) for a kind/apiVersion it has no schema
    # for, e.g. a typo in apiVersion: treat that as a failure too. Report every line.
    problems = [line for line in lines if not line.startswith("INFO")]
    assert proc.returncode == 0 and not problems, (
        f"kubernetes-validate --strict -k {version} (exit {proc.returncode}):\n"
        + "\n".join(problems or lines)
    )
    passed = [line for line in lines if " passed for resource " in line]
    assert len(passed) == expected, f"{len(passed)} of {expected} objects validated"


def test_yamllint_passes_on_all_of_k8s() -> None:
    proc = run([tool(YAMLLINT), "--strict", "-c", K8S / ".yamllint", "-f", "parsable", K8S])
    assert proc.returncode == 0, f"yamllint:\n{proc.stdout}{proc.stderr}"


# --------------------------------------------------------------------------- the Deployment


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_configmap_holds_only_settings_the_app_reads(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    data = config_map(rendered[target])
    unknown = set(data) - SETTINGS_ENV - set(DOCUMENTED_EXTRAS)
    assert not unknown, f"{target}: ConfigMap keys the app does not read: {sorted(unknown)}"
    secretish = set(data) & SECRET_KEYS
    assert not secretish, f"{target}: {sorted(secretish)} belong in the Secret"
    settings = Settings.from_env(data)  # raises SettingsError on any invalid value
    assert settings.host == "0.0.0.0", "HOST must be 0.0.0.0 in a container"
    assert settings.mongodb_uri is None


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_ports_agree_with_the_app(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    docs = rendered[target]
    ctr = container(docs)
    port = app_settings(docs).port
    assert "PORT" in config_map(docs) or port == Settings().port
    http = [p for p in ctr["ports"] if p.get("name") == "http"]
    assert len(http) == 1 and http[0]["containerPort"] == port, (
        f"{target}: containerPort {http} != PORT {port}"
    )
    # PORT must reach the container from the ConfigMap, not be overridden by `env`.
    assert "PORT" not in {e["name"] for e in ctr.get("env", [])}

    service = one(docs, "Service", DEPLOYMENT)
    svc_ports = service["spec"]["ports"]
    assert [named_port(ctr, p["targetPort"]) for p in svc_ports] == [port]
    assert svc_ports[0]["port"] == port

    annotations = deployment(docs)["spec"]["template"]["metadata"].get("annotations", {})
    if "prometheus.io/port" in annotations:
        assert annotations["prometheus.io/port"] == str(port)

    policy = one(docs, "NetworkPolicy", DEPLOYMENT)
    ingress = policy["spec"]["ingress"]
    assert len(ingress) == 1
    assert [(p["protocol"], named_port(ctr, p["port"])) for p in ingress[0]["ports"]] == [
        ("TCP", port)
    ], f"{target}: ingress must allow TCP {port} only"


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_probes_use_the_right_endpoints(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    docs = rendered[target]
    ctr = container(docs)
    port = app_settings(docs).port

    readiness = ctr["readinessProbe"]
    assert readiness["httpGet"]["path"] == "/health"
    assert named_port(ctr, readiness["httpGet"]["port"]) == port
    # Draining turns /health 503; the pod must leave the endpoints within seconds.
    assert readiness["periodSeconds"] <= 5
    assert readiness["failureThreshold"] <= 2

    for probe in ("livenessProbe", "startupProbe"):
        get = ctr[probe]["httpGet"]
        # /livez stays 200 while draining and needs neither MongoDB nor Anthropic.
        assert get["path"] == "/livez", f"{target}: {probe} must use /livez"
        assert named_port(ctr, get["port"]) == port


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_prestop_waits_for_endpoint_removal_then_polls_livez(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    docs = rendered[target]
    _, _, script, _, _ = prestop_command(docs)
    settle, max_wait = prestop_budget(docs)
    assert settle >= 5, "preStop must give the endpoint removal time to propagate"
    assert max_wait > 0
    assert "http://127.0.0.1:%s/livez" in script
    # The port comes from the same variable the server binds to...
    assert f'os.environ.get("PORT", "{Settings().port}")' in script
    # ...which the container gets from the ConfigMap checked above.
    assert app_settings(docs).port == named_port(container(docs), "http")
    assert '"in_flight"' in script


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_grace_period_covers_prestop_drain_shutdown_and_flush(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    docs = rendered[target]
    settings = app_settings(docs)
    settle, max_wait = prestop_budget(docs)
    needed = (
        settle
        + max_wait
        + settings.drain_timeout
        + settings.graceful_shutdown_timeout
        + settings.writer_flush_timeout
    )
    grace = pod_spec(docs)["terminationGracePeriodSeconds"]
    assert grace > needed, (
        f"{target}: terminationGracePeriodSeconds {grace} <= preStop {settle}+{max_wait} "
        f"+ DRAIN_TIMEOUT {settings.drain_timeout} + GRACEFUL_SHUTDOWN_TIMEOUT "
        f"{settings.graceful_shutdown_timeout} + WRITER_FLUSH_TIMEOUT "
        f"{settings.writer_flush_timeout} = {needed}"
    )


def test_grace_period_comment_adds_up() -> None:
    """The arithmetic written above terminationGracePeriodSeconds is the real one."""
    lines = (K8S / "base" / "deployment.yaml").read_text().splitlines()
    end = next(i for i, line in enumerate(lines) if "terminationGracePeriodSeconds:" in line)
    value = int(lines[end].split(":")[1])
    comment: list[str] = []  # the comment block right above the field
    for line in reversed(lines[:end]):
        if not line.strip().startswith("#"):
            break
        comment.insert(0, line)
    terms: list[int] = []
    total = None
    for line in comment:
        m = re.match(r"\s*#\s*([+=]?)\s*(\d+)(\s|$)", line)
        if m and m.group(1) == "=":
            total = int(m.group(2))
        elif m:
            terms.append(int(m.group(2)))
    assert total is not None, "no `= N` line in the grace-period comment"
    assert sum(terms) == total == value, f"comment {terms} = {total}, field {value}"
    base = rendered_docs("base")
    settle, max_wait = prestop_budget(base)
    s = app_settings(base)
    assert terms[:5] == [
        settle,
        max_wait,
        s.drain_timeout,
        s.graceful_shutdown_timeout,
        s.writer_flush_timeout,
    ], f"comment terms {terms[:5]} do not match the preStop arguments and the ConfigMap"


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_rolling_update_never_reduces_capacity(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    strategy = deployment(rendered[target])["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    rolling = strategy["rollingUpdate"]
    assert rolling["maxUnavailable"] in (0, "0%")
    assert rolling["maxSurge"] not in (0, "0%", None)


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_security_context_is_hardened(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    pod = pod_spec(rendered[target])
    assert_hardened(pod, container(rendered[target]), uid=dockerfile_uid())
    assert pod.get("automountServiceAccountToken") is False


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_writable_paths_are_emptydirs(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    docs = rendered[target]
    pod, ctr = pod_spec(docs), container(docs)
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in ctr["volumeMounts"]}
    data_dir = app_settings(docs).data_dir
    assert mounts.get(data_dir) in empty_dirs, f"DATA_DIR {data_dir} is not an emptyDir mount"
    assert mounts.get("/tmp") in empty_dirs, "/tmp is not an emptyDir mount"
    # Anything else the app writes must be below one of those mounts.
    metrics_dir = config_map(docs).get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir is not None:
        assert any(
            Path(metrics_dir).is_relative_to(path) and name in empty_dirs
            for path, name in mounts.items()
        ), f"PROMETHEUS_MULTIPROC_DIR {metrics_dir} is not on an emptyDir"


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_resources_are_set(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    resources = container(rendered[target])["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), f"{target}: {kind} cpu and memory"


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_secrets_come_from_the_secret(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    docs = rendered[target]
    env = {e["name"]: e for e in container(docs).get("env", [])}
    for name in env:
        assert name in SETTINGS_ENV or name in DOCUMENTED_EXTRAS, f"{name} is not read by the app"
    refs = {}
    for key in SECRET_KEYS:
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == key
        refs[key] = ref
    # The image has no embedded database: without a URI the pod must not start.
    assert refs["MONGODB_URI"].get("optional", False) is False
    assert refs["DASHBOARD_PASSWORD"].get("optional") is True
    names = {ref["name"] for ref in refs.values()}
    assert len(names) == 1
    (name,) = names
    secrets = [d for d in objects(docs, "Secret") if d["metadata"]["name"] == name]
    if target == "dev":
        # Generated (content-hashed) in dev, with a URI the app accepts.
        assert name.startswith(SECRET_NAME + "-") and len(secrets) == 1
        uri = secrets[0]["data"]["MONGODB_URI"]
        assert Settings.from_env({"MONGODB_URI": base64.b64decode(uri).decode()}).mongodb_uri
    else:
        # Created by the user; the manifests never ship one.
        assert name == SECRET_NAME and not objects(docs, "Secret")


def test_secret_example_holds_placeholders_only() -> None:
    path = K8S / "base" / "secret.example.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert len(docs) == 1
    (secret,) = docs
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == SECRET_NAME
    assert "data" not in secret, "use stringData with visible placeholders, never base64"
    values = secret["stringData"]
    assert set(values) == SECRET_KEYS
    for key, value in values.items():
        assert re.search(r"<[^<>]+>", value), f"{key} must be a <placeholder>, got {value!r}"
    # The placeholder URI still has the shape the app expects.
    Settings.from_env({"MONGODB_URI": values["MONGODB_URI"]})
    listed = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["resources"]
    assert path.name not in listed, "the example must never be applied"


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_selectors_and_references_match_the_pods(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    docs = rendered[target]
    dep = deployment(docs)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels_match(dep["spec"]["selector"]["matchLabels"], labels)
    assert labels_match(one(docs, "Service", DEPLOYMENT)["spec"]["selector"], labels)
    pdb = one(docs, "PodDisruptionBudget", DEPLOYMENT)
    assert labels_match(pdb["spec"]["selector"]["matchLabels"], labels)
    policy = one(docs, "NetworkPolicy", DEPLOYMENT)
    assert labels_match(policy["spec"]["podSelector"]["matchLabels"], labels)
    for hpa in objects(docs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) == ("Deployment", dep["metadata"]["name"])


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_replicas_belong_to_the_autoscaler_where_there_is_one(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    docs = rendered[target]
    hpas = objects(docs, "HorizontalPodAutoscaler")
    replicas = deployment(docs)["spec"].get("replicas")
    if target == "dev":
        assert not hpas and replicas == 1
        return
    assert len(hpas) == 1 and replicas is None, "with an HPA, the Deployment sets no replicas"
    spec = hpas[0]["spec"]
    assert hpas[0]["apiVersion"] == "autoscaling/v2"
    assert [m["resource"]["name"] for m in spec["metrics"]] == ["cpu"]
    assert 2 <= spec["minReplicas"] <= spec["maxReplicas"]
    if target == "prod":
        assert spec["minReplicas"] >= 3


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_egress_is_limited_to_dns_mongodb_and_https(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    policy = one(rendered[target], "NetworkPolicy", DEPLOYMENT)
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    allowed = set()
    for rule in policy["spec"]["egress"]:
        assert rule.get("ports"), "an egress rule without ports allows every port"
        allowed |= {(p["protocol"], p["port"]) for p in rule["ports"]}
    assert allowed == {("UDP", 53), ("TCP", 53), ("TCP", 27017), ("TCP", 443)}


# --------------------------------------------------------------------------- overlays


@pytest.mark.parametrize("target", OVERLAYS)
def test_overlay_pins_image_and_namespace(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    docs = rendered[target]
    image = container(docs)["image"]
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest", f"{target}: image {image!r} needs a fixed tag"
    (namespace,) = objects(docs, "Namespace")
    ns = namespace["metadata"]["name"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == ns, f"{doc['kind']} outside {ns}"


def test_prod_uses_a_managed_database_and_dev_the_in_cluster_one(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    assert not objects(rendered["prod"], "StatefulSet")
    assert len(objects(rendered["dev"], "StatefulSet")) == 1
    prod_image = container(rendered["prod"])["image"]
    dev_image = container(rendered["dev"])["image"]
    assert prod_image != dev_image


# --------------------------------------------------------------------------- MongoDB


def test_mongodb_is_a_single_member_replica_set_on_a_pvc(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["mongodb"]
    sts = one(docs, "StatefulSet", "mongodb")
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    (ctr,) = pod["containers"]
    assert spec["replicas"] == 1
    assert re.fullmatch(r"mongo:\d+(\.\d+)*", ctr["image"]), "pin the mongo major version"
    args = dict(a.removeprefix("--").partition("=")[::2] for a in ctr["args"])
    assert args["replSet"] == "rs0"
    assert "bind_ip_all" in args

    # Data on the claim template, mounted where mongod keeps it.
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in ctr["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == args["dbpath"]

    # Headless Service named like serviceName, resolvable before readiness.
    service = one(docs, "Service", spec["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True

    # rs.initiate, idempotent, with the pod's stable DNS name as the member host.
    script = ctr["lifecycle"]["postStart"]["exec"]["command"][-1]
    assert "rs.initiate(" in script and "NotYetInitialized" in script
    assert f"_id: '{args['replSet']}'" in script
    assert f'"${{HOSTNAME}}.{spec["serviceName"]}.' in script

    assert_hardened(pod, ctr)


def test_dev_proxy_points_at_the_in_cluster_replica_set(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["dev"]
    sts = one(docs, "StatefulSet", "mongodb")
    (secret,) = objects(docs, "Secret")
    uri = base64.b64decode(secret["data"]["MONGODB_URI"]).decode()
    assert Settings.from_env({"MONGODB_URI": uri}).mongodb_uri == uri
    assert f"@{sts['metadata']['name']}-0.{sts['spec']['serviceName']}:" in "@" + uri.split("//")[1]
    assert "replicaSet=rs0" in uri


# --------------------------------------------------------------------------- preStop, run


class _Livez:
    """A fake /livez answering a scripted sequence of in_flight values."""

    def __init__(self, values: list[int]) -> None:
        self.values = values
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.paths.append(self.path)
                value = owner.values.pop(0) if len(owner.values) > 1 else owner.values[0]
                body = json.dumps({"status": "ok", "in_flight": value}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def __enter__(self) -> _Livez:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_prestop(port: int, max_wait: float) -> tuple[int, float]:
    _, _, script, _, _ = prestop_command(rendered_docs("base"))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", script, "0", str(max_wait)],
        env={**os.environ, "PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert not proc.stderr, proc.stderr
    return proc.returncode, time.monotonic() - started


def test_prestop_returns_once_nothing_is_in_flight() -> None:
    with _Livez([1, 0]) as livez:
        rc, elapsed = run_prestop(livez.port, max_wait=20)
    assert rc == 0
    assert livez.paths == ["/livez"] * 2, "polls /livez until in_flight is 0, then stops"
    assert 0.8 < elapsed < 5, "polls about once a second"


def test_prestop_wait_is_bounded() -> None:
    with _Livez([1]) as livez:
        rc, elapsed = run_prestop(livez.port, max_wait=1.5)
    assert rc == 0
    assert 1.4 < elapsed < 4, f"gave up after {elapsed:.1f}s, bound 1.5s"
    assert len(livez.paths) >= 2


def test_prestop_returns_at_once_when_nothing_listens() -> None:
    with socket.socket() as sock:  # a port that is certainly closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rc, elapsed = run_prestop(port, max_wait=20)
    assert rc == 0 and elapsed < 3


# --------------------------------------------------------------------------- the image


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued instruction"
    return out


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in dockerfile_instructions():
        if ins[0] == "FROM":
            stages.append([])
        assert stages, f"{ins[0]} before the first FROM"
        stages[-1].append(ins)
    return stages


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in stage:
        if word == "ENV":
            for item in shlex.split(args):
                key, eq, value = item.partition("=")
                assert eq, f"use ENV KEY=value, got {item!r}"
                env[key] = value
    return env


def dockerfile_uid() -> int:
    users = [args for word, args in dockerfile_stages()[-1] if word == "USER"]
    assert users, "the runtime stage sets no USER"
    m = re.fullmatch(r"(\d+):(\d+)", users[-1])
    assert m, f"USER must be numeric uid:gid (runAsNonRoot can verify only that), got {users[-1]}"
    assert int(m.group(1)) > 0 and int(m.group(2)) > 0
    return int(m.group(1))


def test_dockerfile_is_multi_stage_on_slim_python_311() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    images = [stage[0][1].split()[0] for stage in stages]
    for image in images:
        assert image.startswith("python:3.11-slim"), image
    # The venv built in one stage runs in the other: same interpreter path needed.
    assert len(set(images)) == 1
    runtime = stages[-1]
    copies = [args for word, args in runtime if word == "COPY"]
    assert copies and all(c.startswith("--from=") for c in copies), (
        "the runtime stage copies only build output, never the context"
    )


def test_dockerfile_runs_app_py_as_non_root_on_the_app_port() -> None:
    runtime = dockerfile_stages()[-1]
    base = rendered_docs("base")
    pod_user = effective_security(pod_spec(base), container(base))["runAsUser"]
    assert dockerfile_uid() == pod_user, "the Deployment runs as the image's USER"
    env = env_of(runtime)
    assert env["HOST"] == "0.0.0.0"
    assert Settings.from_env(env).port == Settings().port
    exposed = [args for word, args in runtime if word == "EXPOSE"]
    assert exposed == [str(Settings().port)]
    starts = [(w, a) for w, a in runtime if w in ("ENTRYPOINT", "CMD")]
    assert starts, "no ENTRYPOINT/CMD"
    argv = [arg for _, a in starts for arg in json.loads(a)]  # exec form: Python is PID 1
    assert Path(argv[0]).name.startswith("python") and argv[1].endswith("app.py")
    # DATA_DIR in the image is the path the Deployment mounts its emptyDir on.
    assert env["DATA_DIR"] == app_settings(base).data_dir
    # The bare `python` of the ENTRYPOINT and of the preStop hook is the venv's.
    venvs = [a.split()[-2] for w, a in runtime if w == "COPY" and "/opt/venv" in a]
    assert venvs and env["PATH"].split(":")[0] == f"{venvs[0]}/bin"
    assert prestop_command(base)[0] == argv[0] == "python"


def test_dockerfile_installs_runtime_dependencies_only() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "secantus" not in text.lower()
    assert not re.search(r"\.\[[^\]]*\]", text), "no extras ([dev], [local], ...) in the image"
    installs = [
        args
        for stage in dockerfile_stages()
        for word, args in stage
        if word == "RUN" and "pip install" in args
    ]
    assert any(re.search(r"pip install \.(\s|$|&)", a) for a in installs), "pip install ."
    assert not any(" -e " in f" {a} " or "--editable" in a for a in installs)
    # What `pip install .` pulls in: pyproject's runtime dependencies.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    assert "secantus" not in runtime and "pytest" not in runtime


def dockerignore_patterns() -> list[str]:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "exceptions: extend the matcher"
    return patterns


def docker_ignored(rel: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `rel` (a path relative to the context) out: a pattern
    matches the path or one of its parent directories; `**/` matches at any depth."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        for pattern in patterns:
            if pattern.startswith("**/"):
                if fnmatch(parts[i - 1], pattern[3:]):
                    return True
            elif fnmatch(prefix, pattern):
                return True
    return False


@functools.cache
def docker_context() -> tuple[str, ...]:
    """The files `docker build .` sends: the repository minus .dockerignore."""
    patterns = dockerignore_patterns()
    files = []
    for top, dirs, names in os.walk(ROOT):
        rel_top = Path(top).relative_to(ROOT).as_posix()
        prefix = "" if rel_top == "." else rel_top + "/"
        dirs[:] = sorted(d for d in dirs if not docker_ignored(prefix + d, patterns))
        files += [prefix + n for n in sorted(names) if not docker_ignored(prefix + n, patterns)]
    return tuple(files)


def package_dirs() -> list[str]:
    """Top-level package directories pyproject.toml's packages.find includes."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for include in setuptools["packages"]["find"]["include"]:
        found |= {p.name for p in ROOT.glob(include.split(".")[0]) if (p / "__init__.py").exists()}
    return sorted(found)


def test_dockerignore_keeps_the_context_small_but_buildable() -> None:
    patterns = dockerignore_patterns()
    for required in (".venv", "data", "tests", "bench", ".git", "**/__pycache__"):
        assert required in patterns, f".dockerignore must exclude {required}"
    for rel in (
        ".venv/bin/python",
        "data/x",
        "tests/k8s/test_manifests.py",
        "bench/x.py",
        "handlers/__pycache__/x.pyc",
        ".git/HEAD",
    ):
        assert docker_ignored(rel, patterns), rel
    context = docker_context()
    assert "pyproject.toml" in context and "app.py" in context
    packages = package_dirs()
    assert len(packages) >= 4
    for package in packages:
        assert f"{package}/__init__.py" in context, f".dockerignore excludes package {package}"


def test_image_build_installs_every_file_the_packages_ship(tmp_path: Path) -> None:
    """`pip install .` in the build stage installs a wheel built from the context;
    a data file left out of it (package-data) would be missing in the image only."""
    context = tmp_path / "context"
    for rel in docker_context():
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, context / rel)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-q",
            "-w",
            tmp_path / "wheel",
            context,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"building the wheel failed:\n{proc.stdout}{proc.stderr}"
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = set(zf.namelist())
    expected = {
        rel for rel in docker_context() if rel.split("/")[0] in package_dirs() or rel == "app.py"
    }
    missing = sorted(expected - shipped)
    assert not missing, (
        f"the image would lack {missing}: declare them as package data in pyproject.toml"
    )
