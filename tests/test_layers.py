"""The packages read in one direction: no package imports one that imports it back."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = (
    "streaming",
    "control",
    "providers",
    "runtime",
    "forwarding",
    "storage",
    "stats",
    "conversations",
    "metrics",
    "recording",
    "openapi",
    "handlers",
    "dashboard",
)
# Lower layers never import these (the composition root and the faces).
TOP = ("app", "wiring", "handlers", "dashboard")
# The dashboard is a face beside handlers: it reads through the services below it
# and never reaches into forwarding, recording or the other faces.
DASHBOARD_MAY_IMPORT = {"streaming", "control", "runtime", "storage", "stats", "conversations"}


def _imports() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {p: set() for p in PACKAGES}
    pattern = re.compile(r"^\s*(?:from|import) (\w+)", re.MULTILINE)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for name in pattern.findall(path.read_text()):
                if name != package and (name in PACKAGES or name in TOP):
                    edges[package].add(name)
    return edges


def _reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for nxt in edges.get(node, ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def test_no_package_cycles() -> None:
    edges = _imports()
    cycles = [
        (a, b)
        for a, b in itertools.combinations(PACKAGES, 2)
        if _reaches(edges, a, b) and _reaches(edges, b, a)
    ]
    assert cycles == []


def test_only_faces_and_the_root_sit_on_top() -> None:
    edges = _imports()
    for package in PACKAGES:
        if package not in ("handlers", "dashboard"):
            assert not edges[package] & set(TOP), f"{package} imports {edges[package] & set(TOP)}"


def test_only_handlers_import_the_dashboard() -> None:
    edges = _imports()
    importers = {package for package in PACKAGES if "dashboard" in edges[package]}
    assert importers <= {"handlers"}, importers
    assert "dashboard" in edges["handlers"]  # the rule saw the import it governs


def test_the_dashboard_reads_only_through_the_layers_below() -> None:
    edges = _imports()
    assert edges["dashboard"] <= DASHBOARD_MAY_IMPORT, edges["dashboard"] - DASHBOARD_MAY_IMPORT
    assert "stats" in edges["dashboard"]


def test_protocol_primitives_import_nothing_of_ours() -> None:
    assert _imports()["streaming"] == set()


def test_provider_translation_reads_only_the_protocol_primitives() -> None:
    # Pure translation: the forwarder calls it, it calls nothing but streaming/.
    edges = _imports()
    assert edges["providers"] == {"streaming"}
    assert not any("providers" in edges[p] for p in ("streaming", "control"))


def test_the_recorder_is_never_imported_by_forwarding() -> None:
    edges = _imports()
    assert "recording" not in edges["forwarding"] and "storage" not in edges["forwarding"]
    assert Path(ROOT / "wiring.py").exists()
