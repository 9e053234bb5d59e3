"""Reading the Dockerfile and .dockerignore as the image build would."""

from __future__ import annotations

import functools
import os
import re
import shlex
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from tests.k8s.manifests import ROOT


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
