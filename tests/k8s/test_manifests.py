"""Offline checks of the Kubernetes manifests (k8s/): rendering and the Deployment.

Nothing here needs a cluster or a Docker engine: `kubectl kustomize` renders every
kustomization, `kubernetes-validate` checks each rendered object against the bundled
Kubernetes schemas, `yamllint` checks the sources, and the rendered Deployment is
compared with the settings the app actually reads (runtime/settings.py), so a manifest
cannot drift from the code: a renamed variable, another port, a longer drain or a
missing security field fails here.

Also here: test_overlays.py, test_prestop.py (the hook run for real) and
test_dockerfile.py (the image).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from recording.journal import JOURNAL_CLOSE_TIMEOUT
from runtime.settings import Settings
from tests.k8s.dockerfile import dockerfile_uid
from tests.k8s.manifests import (
    DEPLOYMENT,
    DOCUMENTED_EXTRAS,
    EXPECTED_KINDS,
    K8S,
    K8S_VERSIONS,
    KUBERNETES_VALIDATE,
    PROXY_TARGETS,
    SECRET_KEYS,
    SECRET_NAME,
    SETTINGS_ENV,
    TARGETS,
    YAMLLINT,
    app_settings,
    assert_hardened,
    comment_above,
    comment_sum,
    config_map,
    container,
    deployment,
    labels_match,
    named_port,
    objects,
    one,
    pod_spec,
    prestop_budget,
    prestop_command,
    rendered_docs,
    run,
    tool,
)

# --------------------------------------------------------------------------- rendering


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
        + JOURNAL_CLOSE_TIMEOUT
        + settings.writer_flush_timeout
    )
    grace = pod_spec(docs)["terminationGracePeriodSeconds"]
    assert grace > needed, (
        f"{target}: terminationGracePeriodSeconds {grace} <= preStop {settle}+{max_wait} "
        f"+ DRAIN_TIMEOUT {settings.drain_timeout} + GRACEFUL_SHUTDOWN_TIMEOUT "
        f"{settings.graceful_shutdown_timeout} + JOURNAL_CLOSE_TIMEOUT "
        f"{JOURNAL_CLOSE_TIMEOUT} + WRITER_FLUSH_TIMEOUT {settings.writer_flush_timeout} "
        f"= {needed}"
    )


def test_grace_period_comment_adds_up() -> None:
    """The arithmetic written above terminationGracePeriodSeconds is the real one:
    each phase once, in order, then the margin, and nothing else."""
    lines = (K8S / "base" / "deployment.yaml").read_text().splitlines()
    end = next(i for i, line in enumerate(lines) if "terminationGracePeriodSeconds:" in line)
    value = int(lines[end].split(":")[1])
    terms, total = comment_sum(comment_above(lines, end))
    assert total is not None, "no `= N` line in the grace-period comment"
    assert sum(terms) == total == value, f"comment {terms} = {total}, field {value}"
    base = rendered_docs("base")
    settle, max_wait = prestop_budget(base)
    s = app_settings(base)
    phases = [
        settle,
        max_wait,
        s.drain_timeout,
        s.graceful_shutdown_timeout,
        JOURNAL_CLOSE_TIMEOUT,
        # The recorder's final flush, once per pod: the workers hand over to the
        # journal, not to MongoDB, so none of them flushes on its own.
        s.writer_flush_timeout,
    ]
    assert terms[: len(phases)] == phases, (
        f"comment terms {terms[: len(phases)]} do not match the preStop arguments, "
        f"the ConfigMap and JOURNAL_CLOSE_TIMEOUT {JOURNAL_CLOSE_TIMEOUT}"
    )
    rest = terms[len(phases) :]
    assert len(rest) == 1 and 0 < rest[0] <= 60, (
        f"after the phases exactly one term, the margin (1-60 s), is expected: {rest}"
    )


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
    # Locked down by default; only dev relaxes it (tests/k8s/test_locked_down.py).
    assert refs["DASHBOARD_PASSWORD"].get("optional", False) is (target == "dev")
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
