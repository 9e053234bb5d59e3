"""The metrics directory's lifetime (made at start, removed at exit unless the
operator named it) and the per-pod journal gauge (reported once, not per worker)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from metrics import registry as m
from recording.status import journal_disk_bytes
from tests.conftest import ROOT, ProxyProcess, start_proxy
from tests.fake_upstream import FakeUpstream

# Serial (make test's second phase): needs both workers of a 2-worker proxy to take connections.
pytestmark = pytest.mark.serial


class Exits:
    """Stands in for atexit.register: what would run at exit."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def register(self, func: Callable[..., Any], *args: Any) -> None:
        self.calls.append((func, args))

    def run(self) -> None:
        for func, args in self.calls:
            func(*args)


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> Exits:
    fake = Exits()
    monkeypatch.setattr(m.atexit, "register", fake.register)
    return fake


def test_a_directory_made_here_is_removed_at_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exits: Exits
) -> None:
    # Empty counts as unset; set (not deleted) so that the value prepare writes
    # into os.environ is undone after the test, for the proxies started later.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(m.tempfile, "tempdir", None)  # re-read TMPDIR
    directory = Path(m.prepare_multiprocess_dir())
    assert directory.parent == tmp_path and directory.name.startswith("claude-proxy-metrics-")
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(directory)
    (directory / "counter_1.db").write_bytes(b"x")
    exits.run()
    assert list(tmp_path.iterdir()) == []


def test_an_operators_directory_is_kept_and_only_its_stale_samples_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exits: Exits
) -> None:
    (tmp_path / "counter_99.db").write_bytes(b"stale")
    (tmp_path / "notes.txt").write_text("theirs")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert m.prepare_multiprocess_dir() == str(tmp_path)
    assert exits.calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_only_the_creating_process_removes_the_directory(tmp_path: Path) -> None:
    m.remove_own_dir(str(tmp_path), os.getpid() + 1)  # as a forked child would
    assert tmp_path.is_dir()
    m.remove_own_dir(str(tmp_path), os.getpid())
    assert not tmp_path.exists()


def test_a_stale_larger_journal_reading_does_not_win(tmp_path: Path) -> None:
    """A recorder killed with a large journal leaves its last reading in its sample
    file; the scrape's fresh measurement must be what /metrics shows. In a child:
    prometheus_client picks multiprocess mode at import."""
    child = textwrap.dedent(
        """
        import os, time
        from prometheus_client import CollectorRegistry
        from prometheus_client.mmap_dict import MmapedDict, mmap_key
        from prometheus_client.multiprocess import MultiProcessCollector
        from metrics import registry as m

        g = m.JOURNAL_BYTES
        stale = MmapedDict(os.path.join(
            os.environ["PROMETHEUS_MULTIPROC_DIR"], f"gauge_{g._multiprocess_mode}_999999.db"
        ))
        key = mmap_key(g._name, g._name, [], [], g._documentation)
        stale.write_value(key, 5e9, time.time() - 5)
        stale.close()
        g.set(1234)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        (metric,) = [x for x in registry.collect() if x.name == g._name]
        print([s.value for s in metric.samples])
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", child], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[1234.0]"


def test_the_journal_is_measured_over_every_owner(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    assert journal_disk_bytes(journal) == 0  # nothing recorded yet
    for owner, sizes in (("w1", (100, 20)), ("w2", (7,))):
        (journal / owner).mkdir(parents=True)
        for i, size in enumerate(sizes):
            (journal / owner / f"{i:012d}.seg").write_bytes(b"x" * size)
    (journal / ".tmp").mkdir()  # not an owner
    (journal / ".tmp" / "x").write_bytes(b"x" * 1000)
    (journal / "stray").write_bytes(b"x" * 1000)  # not in an owner's directory
    assert journal_disk_bytes(journal) == 127


def _journal_on_disk(data: Path) -> int:
    return sum(p.stat().st_size for p in (data / "journal").glob("*/*") if p.is_file())


def _owner_bytes(owner: Path) -> int:
    return sum(f.stat().st_size for f in owner.iterdir() if f.is_file())


def _gauge(text: str, name: str) -> float:
    (line,) = [x for x in text.splitlines() if x.startswith(name + " ")]
    return float(line.split()[1])


async def test_two_workers_report_the_journal_once_and_leave_no_temp_dir(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proxy: ProxyProcess = start_proxy(
        tmp_path,
        {
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "SANIC_WORKERS": "2",
            "TMPDIR": str(tmpdir),
            "PROMETHEUS_MULTIPROC_DIR": "",
        },
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def one() -> None:
                # A fresh connection each time, so both workers journal records.
                async with http.post(
                    f"{proxy.url}/v1/messages",
                    data=b'{"model":"claude-sonnet-4-5-20250929","stream":true}',
                    headers={"x-fake": "sse:tool_use", "connection": "close"},
                ) as resp:
                    await resp.read()

            journal = tmp_path / "data" / "journal"
            for _ in range(20):  # until the kernel has given both workers a request
                await asyncio.gather(*(one() for _ in range(8)))
                owners = [p for p in journal.iterdir() if p.is_dir()]
                if len(owners) == 2 and all(_owner_bytes(o) for o in owners):
                    break
            assert len(owners) == 2 and all(_owner_bytes(o) for o in owners)
            seen: list[tuple[float, int]] = []
            for _ in range(100):
                async with http.get(f"{proxy.url}/metrics") as resp:
                    reported = _gauge(await resp.text(), "claude_proxy_log_journal_bytes")
                on_disk = _journal_on_disk(tmp_path / "data")
                seen.append((reported, on_disk))
                if reported == on_disk:
                    break
                await asyncio.sleep(0.1)
        reported, on_disk = seen[-1]
        # Both workers journaled (above): a gauge summed over them would be twice this.
        assert reported == on_disk > 0, seen
    finally:
        code = proxy.stop()  # SIGTERM
    assert code == 0, proxy.log()
    assert list(tmpdir.iterdir()) == [], proxy.log()
