"""Shared by the Kubernetes tests: rendering the kustomizations and reading the
rendered objects."""

from __future__ import annotations

import functools
import math
import re
import subprocess
import sys
from decimal import Decimal, InvalidOperation
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

MIB = 1024 * 1024
# The settings that bound what the proxy keeps under DATA_DIR. Set explicitly in
# every ConfigMap, so the numbers the data volume's sizeLimit is derived from are
# visible next to it instead of hidden in runtime/settings.py's defaults.
DATA_DIR_SETTINGS = ("JOURNAL_MAX_BYTES", "JOURNAL_SEGMENT_BYTES", "QUARANTINE_MAX_BYTES")
# DATA_DIR besides the journal and the quarantine: the recorder's checkpoint, status
# and lock files, a few kB each; 16 MiB leaves room for what gets added there.
DATA_DIR_SLACK_BYTES = 16 * MIB

# Kubernetes quantity suffixes (apimachinery's resource.Quantity).
_BINARY_SI = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SI = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}
# The exponent form comes first so that 1E3 reads as 1000 and a bare 1E as one exa.
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<exponent>[eE][+-]?\d+)|(?P<suffix>[KMGTPE]i|[numkMGTPE]))?"
)


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


# --------------------------------------------------------------------------- quantities


def quantity_bytes(value: str | int | float) -> int:
    """A Kubernetes quantity (768Mi, 1Gi, 1.5G, 5e8, 1048576) as a whole number,
    rounded up as Kubernetes rounds a quantity to an integer. YAML hands a bare
    number over as int or float. ValueError for anything Kubernetes would refuse."""
    text = str(value).strip()
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    try:
        number = Decimal(match["number"])
    except InvalidOperation:
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from None
    if match["exponent"]:
        number = number.scaleb(int(match["exponent"][1:]))
    elif match["suffix"] in _BINARY_SI:
        number *= _BINARY_SI[match["suffix"]]
    else:
        number *= _DECIMAL_SI[match["suffix"] or ""]
    return math.ceil(number)


# --------------------------------------------------------------------------- DATA_DIR


def data_volume(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The pod volume mounted at DATA_DIR."""
    data_dir = app_settings(docs).data_dir
    names = [m["name"] for m in container(docs)["volumeMounts"] if m["mountPath"] == data_dir]
    assert len(names) == 1, f"expected one volume mounted at DATA_DIR {data_dir}"
    found = [v for v in pod_spec(docs)["volumes"] if v["name"] == names[0]]
    assert len(found) == 1, f"volume {names[0]!r} is mounted but not declared"
    return found[0]


def data_dir_bytes_needed(settings: Settings) -> int:
    """The most the proxy keeps under DATA_DIR: the journal's cap for the pod, one
    segment per worker by which a worker may pass it (it finishes the segment it is
    writing), the quarantine's cap, and the small files beside them."""
    return (
        settings.journal_max_bytes
        + settings.workers * settings.journal_segment_bytes
        + settings.quarantine_max_bytes
        + DATA_DIR_SLACK_BYTES
    )


# --------------------------------------------------------------------------- comments


def comment_above(lines: list[str], index: int) -> list[str]:
    """The block of comment lines right above lines[index]."""
    comment: list[str] = []
    for line in reversed(lines[:index]):
        if not line.strip().startswith("#"):
            break
        comment.insert(0, line)
    return comment


def comment_sum(comment: list[str]) -> tuple[list[int], int | None]:
    """The terms and the total of arithmetic written as comment lines
    `#   N  what`, `#  + N  what` and `#  = N`; lines not starting with a number
    (continuations, prose) are not terms."""
    terms: list[int] = []
    total = None
    for line in comment:
        m = re.match(r"\s*#\s*([+=]?)\s*(\d+)(\s|$)", line)
        if m and m.group(1) == "=":
            total = int(m.group(2))
        elif m:
            terms.append(int(m.group(2)))
    return terms, total
