"""Playing Kubernetes for the proxy's pods on this machine, with real processes.

A `Pod` is `python app.py` on its own port with its own DATA_DIR, standing for the
pod's emptyDir volume (k8s/base/deployment.yaml mounts DATA_DIR on one): it lives
and dies with the pod, so whatever the log writer leaves in its journal at exit is
lost in a cluster, and `discard_data()` deletes it here too.

`Pod.terminate()` runs the sequence the kubelet and the control plane give a pod:
at t=0 the endpoint removal starts towards the load balancer (arriving after
`endpoint_lag`) and, at the same time, the preStop hook runs: the very script in
the Deployment, with scaled-down arguments. When it returns, SIGTERM goes to the
main process; at t=0 + the grace period, SIGKILL goes to every process of the pod.
`roll()` is one step of a RollingUpdate with maxSurge 1 and maxUnavailable 0.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bench.lb import LoadBalancer, probe
from bench.servers import kill_tree
from bench.timeline import Timeline
from recording.checkpoint import Checkpoint
from recording.journal import JournalReader, Position
from recording.paths import RecorderPaths

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = ROOT / "k8s" / "base" / "deployment.yaml"
KUSTOMIZATION = ROOT / "k8s" / "base" / "kustomization.yaml"
WATCH_INTERVAL = 0.1
# Sanic's manager notices a worker's start-up acknowledgement by polling every 0.1 s;
# a signal that lands before it did leaves the manager waiting ~30 s.
SETTLE_AFTER_START = 0.3
# The app's own account of its shutdown: the drain loop and the log writer, per worker.
SHUTDOWN_LOG = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) "
    r"(proxy\.(?:drain|writer|journal|recorder|recording(?:\.journal)?)) (.*)$"
)


def manifest_prestop() -> tuple[str, float, float]:
    """The preStop hook's inline script and its (settle, max_wait) arguments."""
    deployment = yaml.safe_load(DEPLOYMENT.read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    _, _, script, settle, max_wait = container["lifecycle"]["preStop"]["exec"]["command"]
    return script, float(settle), float(max_wait)


def manifest_config() -> dict[str, str]:
    """The ConfigMap's settings, as the base kustomization generates them."""
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    generator = next(
        g for g in kustomization["configMapGenerator"] if g["name"] == "claude-proxy-config"
    )
    return dict(literal.split("=", 1) for literal in generator["literals"])


@dataclass(frozen=True)
class Budget:
    """The termination budget: scaled down from the manifest, added up the same way."""

    settle: float  # preStop argv[1]
    prestop_max_wait: float  # preStop argv[2]
    drain_timeout: float
    graceful_shutdown: float
    writer_flush: float
    margin: float
    endpoint_lag: float  # until the endpoint removal reaches the load balancer
    min_ready: float  # the Deployment's minReadySeconds

    @property
    def grace_period(self) -> float:
        return (
            self.settle
            + self.prestop_max_wait
            + self.drain_timeout
            + self.graceful_shutdown
            + self.writer_flush
            + self.margin
        )

    def env(self) -> dict[str, str]:
        return {
            "DRAIN_TIMEOUT": str(self.drain_timeout),
            "GRACEFUL_SHUTDOWN_TIMEOUT": str(self.graceful_shutdown),
            "WRITER_FLUSH_TIMEOUT": str(self.writer_flush),
        }


@dataclass
class Termination:
    pod: str
    started_at: float  # timeline seconds
    prestop_seconds: float = 0.0
    sigterm_at: float | None = None
    in_flight_at_sigterm: int | None = None
    drained_at: float | None = None  # the last worker's drain loop ended (its log)
    listener_closed_at: float | None = None  # /livez stopped answering
    exited_at: float | None = None
    exit_code: int | None = None
    killed: bool = False
    writer: dict[str, Any] | None = None  # the writer's last stats seen on /livez
    stranded: list[dict[str, Any]] = field(default_factory=list)  # journal records left
    errors: list[str] = field(default_factory=list)  # ERROR lines and tracebacks in its log


class Pod:
    def __init__(
        self, name: str, port: int, workdir: Path, env: dict[str, str], timeline: Timeline
    ) -> None:
        self.name = name
        self.port = port
        self.workdir = workdir
        self.env = env
        self.timeline = timeline
        self.data_dir = Path(env["DATA_DIR"])
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._in_flight: int | None = None  # as last seen on /livez while terminating

    @classmethod
    async def start(
        cls,
        name: str,
        port: int,
        workdir: Path,
        env: dict[str, str],
        timeline: Timeline,
        *,
        ready_within: float = 60.0,
    ) -> Pod:
        """Start `python app.py` and return once it answers /health 200."""
        pod = cls(name, port, workdir, env, timeline)
        pod.proc = pod._spawn()
        timeline.mark(name, f"started (pid {pod.proc.pid}, port {port})")
        deadline = time.monotonic() + ready_within
        try:
            while (answer := await probe(port, "/health")) is None or answer[0] != 200:
                if pod.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pod {name} did not start:\n{pod.log()}")
                await asyncio.sleep(0.1)
            await asyncio.sleep(SETTLE_AFTER_START)
        except BaseException:  # failed, or cancelled with a sibling: leave nothing running
            pod.kill()
            raise
        return pod

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            return subprocess.Popen(
                [sys.executable, str(ROOT / "app.py")],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own group: SIGKILL at the grace period takes every process of the
                # "pod" and nothing else.
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def livez(self) -> dict[str, Any] | None:
        answer = await probe(self.port, "/livez")
        if answer is None or answer[0] != 200:
            return None
        return json.loads(answer[1])

    # ---- termination ----------------------------------------------------------------
    async def terminate(self, lb: LoadBalancer, budget: Budget) -> Termination:
        assert self.proc is not None
        term = Termination(self.name, self.timeline.mark(self.name, "terminating: preStop runs"))
        deadline = time.monotonic() + budget.grace_period
        removal = asyncio.create_task(self._remove_after(lb, budget.endpoint_lag))
        exited = asyncio.Event()
        watcher = asyncio.create_task(self._watch(term, exited))
        try:
            await self._prestop(term, budget, deadline)
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                term.in_flight_at_sigterm = self._in_flight
                term.sigterm_at = self.timeline.mark(
                    self.name, f"SIGTERM (in_flight={self._in_flight})"
                )
            while self.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if self.proc.poll() is None:
                kill_tree(self.proc.pid)
                term.killed = True
                self.timeline.mark(self.name, "SIGKILL: grace period over")
            term.exit_code = await asyncio.to_thread(self.proc.wait)
            term.exited_at = self.timeline.mark(self.name, f"exited, code {term.exit_code}")
        finally:
            exited.set()
            await watcher
            await removal
        term.stranded = self.journal_records()
        self._read_shutdown_log(term)
        return term

    def _read_shutdown_log(self, term: Termination) -> None:
        for line in self.log().splitlines():
            if "Traceback" in line or "ERROR" in line:
                term.errors.append(line)
            match = SHUTDOWN_LOG.match(line)
            if match is None:
                continue
            stamp, level, logger, message = match.groups()
            wall = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            said = f"log: {message}" if level == "INFO" else f"log {level}: {message}"
            at = self.timeline.mark_wall(wall, self.name, said)
            if logger == "proxy.drain" and message.startswith("drained in"):
                term.drained_at = at

    async def _remove_after(self, lb: LoadBalancer, lag: float) -> None:
        await asyncio.sleep(lag)
        lb.remove(self.name)

    async def _prestop(self, term: Termination, budget: Budget, deadline: float) -> None:
        script, _, _ = manifest_prestop()
        started = time.monotonic()
        hook = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            str(budget.settle),
            str(budget.prestop_max_wait),
            env={**self.env, "PORT": str(self.port)},
        )
        try:
            await asyncio.wait_for(hook.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            hook.kill()
            await hook.wait()
        term.prestop_seconds = time.monotonic() - started
        self.timeline.mark(
            self.name,
            f"preStop returned after {term.prestop_seconds:.2f}s (in_flight={self._in_flight})",
        )

    async def _watch(self, term: Termination, exited: asyncio.Event) -> None:
        """Follow /livez until the process exits: draining, in-flight, listener closed."""
        answered = False
        while not exited.is_set():
            state = await self.livez()
            if state is not None:
                answered = True
                self._in_flight = state["in_flight"]
                term.writer = state.get("writer")
                if state["draining"] and not self.timeline.first(self.name, "draining"):
                    self.timeline.mark(self.name, f"draining (/livez), in_flight={self._in_flight}")
            elif answered and term.sigterm_at is not None:
                term.listener_closed_at = self.timeline.mark(
                    self.name, f"/livez stopped answering (last in_flight={self._in_flight})"
                )
                answered = False
            try:
                await asyncio.wait_for(exited.wait(), WATCH_INTERVAL)
            except TimeoutError:
                pass

    async def stop(self, within: float) -> int:
        """SIGTERM and wait: the end of a run, not a simulated termination."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + within
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.kill()
        return self.proc.wait()

    # ---- the pod's emptyDir -----------------------------------------------------------
    def journal_records(self) -> list[dict[str, Any]]:
        """Request records handed off but not stored by the recorder (lost with the
        emptyDir), as much of a document as the journal's metadata gives."""
        paths = RecorderPaths(self.data_dir)
        if not paths.journal.exists():
            return []
        reader = JournalReader(paths.journal)
        done = Checkpoint.load(paths.checkpoint).done
        records = []
        for owner in reader.owners():
            after = done.get(owner, Position(0, 0))
            while batch := reader.read(owner, after, max_records=1000, max_bytes=1 << 30):
                records += [
                    {
                        "_id": r.meta.get("request_id"),
                        "request": {"headers": r.meta.get("request_headers", [])},
                    }
                    for r in batch
                ]
                after = batch[-1].end
        return records

    def discard_data(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def kill(self) -> None:
        """Clean-up only: stop whatever is left of this pod at once."""
        if self.proc is not None and self.proc.poll() is None:
            kill_tree(self.proc.pid)
            self.proc.wait()


Spawner = Callable[[str], Awaitable[Pod]]
ExitHook = Callable[[Pod, Termination], Awaitable[None]]


async def rollout(
    old: list[Pod],
    new_names: list[str],
    spawn: Spawner,
    lb: LoadBalancer,
    budget: Budget,
    after_exit: ExitHook,
) -> tuple[list[Pod], list[Termination]]:
    """A RollingUpdate with maxSurge 1 and maxUnavailable 0, as the Deployment
    controller runs it: each new pod must be ready for minReadySeconds before an old
    one starts terminating; a terminating pod no longer counts, so the next new pod
    starts while it drains. `after_exit` sees each old pod after its process exited
    and before its emptyDir is deleted."""
    retiring: list[asyncio.Task[Termination]] = []
    started: list[Pod] = []

    async def retire(pod: Pod) -> Termination:
        termination = await pod.terminate(lb, budget)
        await after_exit(pod, termination)
        pod.discard_data()
        return termination

    for pod, name in zip(old, new_names, strict=True):
        new = await spawn(name)
        started.append(new)
        backend = lb.add(new.name, new.port)
        while not backend.ready:
            await asyncio.sleep(0.02)
        await asyncio.sleep(budget.min_ready)
        retiring.append(asyncio.create_task(retire(pod), name=f"terminate-{pod.name}"))
    return started, list(await asyncio.gather(*retiring))
