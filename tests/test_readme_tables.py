"""README.md's Configuration and Endpoints tables against what the code reads and serves.

Variables: the Configuration table's names must be exactly what Settings reads
(`env_var_names()`) plus DIRECT, the variables read straight from `os.environ`. A scan
of the shipped code (pyproject's packages and modules) for literal `environ`/`env`/
`getenv` reads keeps DIRECT and INTERNAL complete. API keys named in the routing file
(`api_key_env`) are read by name from that file and documented with it, not here.

Routes: every path of the started app (`app.router.routes`, sanic-ext's included) must
be in the Endpoints table's Route column, and every path there must be served.
Normalisation: a Route cell's code spans are its paths, methods (`GET /x`) and query
strings (`?beta=true`) dropped; a parameter is `{}` whatever its name (`<id:str>`,
`{id}`); a catch-all `<p:path>` is `*`, so `/v1/<path:path>` is README's `/v1/*`. A row
`/x/*` that is not itself a served catch-all summarises `/x` and every path under it
(the dashboard, the docs' assets); it must cover at least one served path. Methods
are not compared: the README groups them per row.
"""

from __future__ import annotations

import asyncio
import functools
import re
import tomllib
from collections import defaultdict
from pathlib import Path

from app import create_app
from runtime.settings import Settings, env_var_names
from tests.conftest import ROOT

README = ROOT / "README.md"
VAR_HEADER = "| Variable | Default | Meaning |"
ROUTE_HEADER = "| Route | What it does |"

# User configuration read straight from os.environ, outside Settings: name → where.
DIRECT = {
    "PRICING_FILE": "storage/pricing.py",  # PriceTable.load(): a price table of one's own
    "PROMETHEUS_MULTIPROC_DIR": "metrics/registry.py",  # multiprocess_dir(); made if unset
}
# Read or set by the code, but not the operator's to set: name → why.
INTERNAL = {
    "SANIC_WORKER_NAME": "set by Sanic in each worker; worker_slot() parses its index",
    "PROXY_EMBEDDED_MONGODB_URI": "the main process hands the embedded DB's URI to workers",
    "PYTHONPATH": "extended for the recorder and translator child processes",
}

ENV_READ = re.compile(
    r"\b(?:environ|env|getenv)\b(?:\.(?:get|pop|setdefault)\(|\[|\()\s*"
    r"[\"']([A-Z][A-Z0-9_]*)[\"']"
)
PARAM = re.compile(r"<[^>:]+(:[^>]+)?>|\{[^}]*\}")


def table(readme: str, header: str) -> list[str]:
    """The first cell of each row of the table under `header`."""
    lines = readme.splitlines()
    assert header in lines, f"README has no table {header!r}"
    rows = []
    for line in lines[lines.index(header) + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip())
    return rows


def source_files() -> list[Path]:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    files = [ROOT / f"{module}.py" for module in setup["py-modules"]]
    for pattern in setup["packages"]["find"]["include"]:
        files += sorted((ROOT / pattern.rstrip("*")).rglob("*.py"))
    return files


def env_reads() -> dict[str, set[str]]:
    """Variable name → the shipped files naming it in an environment read or write."""
    reads: dict[str, set[str]] = defaultdict(set)
    for path in source_files():
        for name in ENV_READ.findall(path.read_text()):
            reads[name].add(path.relative_to(ROOT).as_posix())
    return reads


def env_problems(readme: str) -> list[str]:
    documented = {re.sub(r"`([^`]+)`", r"\1", cell) for cell in table(readme, VAR_HEADER)}
    read = set(env_var_names().values()) | set(DIRECT)
    return [
        f"{name}: read by the code, missing from README" for name in sorted(read - documented)
    ] + [f"{name}: in README, not read by the code" for name in sorted(documented - read)]


def normalise(path: str) -> str:
    path = path.split("?", 1)[0]
    return PARAM.sub(lambda m: "*" if m.group(1) == ":path" else "{}", path)


@functools.cache
def served_paths() -> frozenset[str]:
    app = create_app(
        Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9", "REQUEST_LOG": "false"})
    )
    # Started, so sanic-ext has added its routes (/docs/openapi.json).
    asyncio.run(app.asgi_client.get("/livez"))
    return frozenset(normalise("/" + route.path) for route in app.router.routes)


def route_problems(readme: str, served: frozenset[str]) -> list[str]:
    spans = [
        span for cell in table(readme, ROUTE_HEADER) for span in re.findall(r"`([^`]+)`", cell)
    ]
    paths = [re.sub(r"^(?:[A-Z]+ )+", "", span) for span in spans]  # "GET /x" → "/x"
    documented = {normalise(path) for path in paths if path.startswith("/")}
    summaries = {path[:-2] for path in documented if path.endswith("/*") and path not in served}

    def covered_by(prefix: str) -> set[str]:
        return {path for path in served if path == prefix or path.startswith(prefix + "/")}

    summarised = set().union(*(covered_by(prefix) for prefix in summaries))
    used = {prefix + "/*" for prefix in summaries if covered_by(prefix)}
    missing = sorted(served - documented - summarised)
    return [f"{path}: served, missing from README" for path in missing] + [
        f"{path}: in README, not served" for path in sorted(documented - served - used)
    ]


def test_env_reads_are_settings_direct_or_internal() -> None:
    reads = env_reads()
    known = set(env_var_names().values()) | set(DIRECT) | set(INTERNAL)
    assert {n: sorted(f) for n, f in reads.items() if n not in known} == {}
    assert {n: f for n, f in DIRECT.items() if f not in reads.get(n, ())} == {}
    assert [name for name in INTERNAL if name not in reads] == []


def test_configuration_table_matches_the_code() -> None:
    problems = env_problems(README.read_text())
    assert not problems, "\n".join(problems)


def test_endpoint_table_matches_the_routes() -> None:
    problems = route_problems(README.read_text(), served_paths())
    assert not problems, "\n".join(problems)


def test_a_removed_or_invented_row_is_reported() -> None:
    text = README.read_text()
    dropped = ("| `JOURNAL_MAX_BYTES`", "| `GET /livez`")
    cut = [line for line in text.splitlines() if not line.startswith(dropped)]
    cut.insert(cut.index(VAR_HEADER) + 2, "| `NOT_A_SETTING` | `1` | Nothing. |")
    cut.insert(cut.index(ROUTE_HEADER) + 2, "| `GET /nowhere/{id}?x=1` | Nothing. |")
    readme = "\n".join(cut)
    assert set(env_problems(readme)) - set(env_problems(text)) == {
        "JOURNAL_MAX_BYTES: read by the code, missing from README",
        "NOT_A_SETTING: in README, not read by the code",
    }
    served = served_paths()
    assert set(route_problems(readme, served)) - set(route_problems(text, served)) == {
        "/livez: served, missing from README",
        "/nowhere/{}: in README, not served",
    }
