"""The overlays and the in-cluster MongoDB, rendered."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from runtime.settings import Settings
from tests.k8s.manifests import (
    OVERLAYS,
    assert_hardened,
    container,
    objects,
    one,
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
