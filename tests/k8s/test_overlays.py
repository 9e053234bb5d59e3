"""The overlays and the in-cluster MongoDB, rendered; the data volume's size
against what the proxy can put in DATA_DIR."""

from __future__ import annotations

import base64
import copy
import re
from typing import Any

import pytest

from runtime.settings import Settings
from tests.k8s.manifests import (
    DATA_DIR_SETTINGS,
    DATA_DIR_SLACK_BYTES,
    K8S,
    MIB,
    OVERLAYS,
    PROXY_TARGETS,
    app_settings,
    assert_hardened,
    comment_above,
    comment_sum,
    config_map,
    container,
    data_dir_bytes_needed,
    data_volume,
    objects,
    one,
    quantity_bytes,
)

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


# --------------------------------------------------------------------------- DATA_DIR


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("768Mi", 768 * MIB),
        ("1Gi", 1024 * MIB),
        ("1.5Gi", 1536 * MIB),
        (".5Ki", 512),
        ("2Ei", 2 * 2**60),
        ("500M", 500 * 10**6),
        ("1k", 1000),
        ("1e3", 1000),
        ("1E3", 1000),  # an exponent, not exa
        ("1E", 10**18),  # exa
        ("+5k", 5000),
        ("100m", 1),  # a tenth, rounded up as Kubernetes does
        ("1048576", MIB),
        (1048576, MIB),  # YAML reads a bare number as int
    ],
)
def test_quantity_bytes_reads_kubernetes_quantities(quantity: str | int, expected: int) -> None:
    assert quantity_bytes(quantity) == expected


@pytest.mark.parametrize("quantity", ["1GB", "Gi", "", "1 Gi", "1.2.3", "--1", "1Mb"])
def test_quantity_bytes_refuses_what_kubernetes_refuses(quantity: str) -> None:
    with pytest.raises(ValueError):
        quantity_bytes(quantity)


def data_volume_shortfall(docs: list[dict[str, Any]]) -> int:
    """Bytes by which the data volume's sizeLimit misses what the proxy can put
    there (0 or less: it fits)."""
    limit = quantity_bytes(data_volume(docs)["emptyDir"]["sizeLimit"])
    return data_dir_bytes_needed(app_settings(docs)) - limit


def with_config(docs: list[dict[str, Any]], **values: str) -> list[dict[str, Any]]:
    """A copy of the rendered objects whose proxy ConfigMap has these values."""
    docs = copy.deepcopy(docs)
    names = {s["configMapRef"]["name"] for s in container(docs)["envFrom"] if "configMapRef" in s}
    for doc in objects(docs, "ConfigMap"):
        if doc["metadata"]["name"] in names:
            doc["data"].update(values)
    assert config_map(docs).items() >= values.items()
    return docs


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_data_volume_holds_everything_the_proxy_can_put_there(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    """The kubelet evicts a pod whose emptyDir passes its sizeLimit, PDB or not,
    cutting every stream: the journal's cap, a segment per worker past it, the
    quarantine's cap and the small files must fit, computed from the values the
    pods get (each overlay has its own worker count)."""
    docs = rendered[target]
    env = config_map(docs)
    missing = [name for name in DATA_DIR_SETTINGS if name not in env]
    assert not missing, f"{target}: set {missing} explicitly in the ConfigMap"
    assert "emptyDir" in data_volume(docs), f"{target}: DATA_DIR is not an emptyDir"
    shortfall = data_volume_shortfall(docs)
    assert shortfall <= 0, (
        f"{target}: the data volume's sizeLimit is {shortfall} bytes short of "
        f"JOURNAL_MAX_BYTES + SANIC_WORKERS x JOURNAL_SEGMENT_BYTES + QUARANTINE_MAX_BYTES "
        f"+ {DATA_DIR_SLACK_BYTES} slack ({app_settings(docs)})"
    )


@pytest.mark.parametrize("target", PROXY_TARGETS)
def test_raising_the_caps_or_workers_alone_fails_the_data_volume_check(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    docs = rendered[target]
    settings = app_settings(docs)
    headroom = -data_volume_shortfall(docs)
    raised_cap = with_config(docs, JOURNAL_MAX_BYTES=str(settings.journal_max_bytes + headroom + 1))
    assert data_volume_shortfall(raised_cap) == 1
    quarantine = str(settings.quarantine_max_bytes + headroom + 1)
    assert data_volume_shortfall(with_config(docs, QUARANTINE_MAX_BYTES=quarantine)) == 1
    workers = settings.workers + headroom // settings.journal_segment_bytes + 1
    assert data_volume_shortfall(with_config(docs, SANIC_WORKERS=str(workers))) > 0


def test_data_volume_comment_adds_up(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The arithmetic written above the data volume is the real one, in MiB."""
    lines = (K8S / "base" / "deployment.yaml").read_text().splitlines()
    volumes = lines.index("      volumes:")
    name = lines.index("        - name: data", volumes)
    empty_dir = lines.index("          emptyDir:", name)
    terms, total = comment_sum(comment_above(lines, empty_dir))
    assert total is not None, "no `= N` line in the data volume's comment"
    base = rendered["base"]
    s = app_settings(base)
    assert terms == [
        s.journal_max_bytes // MIB,
        s.workers * s.journal_segment_bytes // MIB,
        s.quarantine_max_bytes // MIB,
        DATA_DIR_SLACK_BYTES // MIB,
    ], f"comment terms {terms} (MiB) do not match the base ConfigMap"
    assert sum(terms) == total == data_dir_bytes_needed(s) // MIB
    limit = quantity_bytes(data_volume(base)["emptyDir"]["sizeLimit"])
    assert total * MIB <= limit
