"""The image, checked offline: stages, base, user, dependencies, build context."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from runtime.settings import Settings
from tests.k8s.dockerfile import (
    docker_context,
    docker_ignored,
    dockerfile_stages,
    dockerfile_uid,
    dockerignore_patterns,
    env_of,
    package_dirs,
)
from tests.k8s.manifests import (
    ROOT,
    app_settings,
    container,
    effective_security,
    pod_spec,
    prestop_command,
    rendered_docs,
)


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
