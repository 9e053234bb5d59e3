"""The kustomizations, rendered once per run for the Kubernetes tests."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.k8s.manifests import TARGETS, kustomize


@pytest.fixture(scope="session")
def rendered_text() -> dict[str, str]:
    return {name: kustomize(name) for name in TARGETS}


@pytest.fixture(scope="session")
def rendered(rendered_text: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [doc for doc in yaml.safe_load_all(text) if doc]
        for name, text in rendered_text.items()
    }
