"""A rolling update of the proxy under load, simulated with real processes.

Pods A and B (`python app.py`, as many workers as the ConfigMap says, one MongoDB,
each its own DATA_DIR standing for its emptyDir) behind a readiness-aware TCP load
balancer (bench/lb.py), a fake Anthropic upstream, and client traffic
(bench/traffic.py) that never stops: short JSON and SSE requests and long SSE
streams, each with a unique marker. A RollingUpdate (bench/kube.py) then replaces A
with C (and B with D): endpoint removal and the Deployment's own preStop, SIGTERM,
SIGKILL at the grace period. `simulate` returns everything needed to check that
nothing was cut or lost (bench/rollout_outcome.py).

Used by tests/k8s/test_rolling_update.py (TEST_SCENARIO) and bench/rolling_update.py
(BENCH_SCENARIO).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from bench.kube import Budget, Pod, Termination, manifest_config, rollout
from bench.lb import LoadBalancer
from bench.rollout_outcome import Outcome, read_request_log
from bench.timeline import Timeline
from bench.traffic import MARKER_HEADER, Traffic, TrafficPlan
from runtime.settings import env_var_names


@dataclass(frozen=True)
class Scenario:
    budget: Budget
    plan: TrafficPlan
    warmup: float  # seconds of load before the rollout starts
    cooldown: float  # seconds of load after it ended
    rolls: int  # how many of A, B are replaced
    probe_interval: float  # the load balancer's readiness probe period
    # Boot the new pods' processes together with the old ones, as if their image pull
    # and start-up had happened earlier: they still join the load balancer only when
    # the rollout reaches them and their readiness probe passes. Saves the test one
    # start-up on a busy machine; the bench starts them in the rollout, as a cluster does.
    prestart: bool = False


# Lean enough for `make test` (~25 s): one pod replaced, 5 s streams still running
# when its preStop gives up, so the app's own drain has to carry them.
TEST_SCENARIO = Scenario(
    budget=Budget(
        settle=1.0,
        prestop_max_wait=1.5,
        drain_timeout=20,
        graceful_shutdown=2,
        writer_flush=5,
        margin=3,
        endpoint_lag=0.4,
        min_ready=0.3,
    ),
    plan=TrafficPlan(
        short_clients=2,
        short_pause=0.1,
        long_every=0.25,
        long_max=10,
        max_requests=1000,
        long_deltas=12,
        long_gap_ms=300,
    ),
    warmup=1.0,
    cooldown=0.5,
    rolls=1,
    probe_interval=0.25,
    prestart=True,
)

# Both pods replaced, 30 s streams. The short traffic (~200 requests/s here) stays
# below what the development database takes in, so the writers keep up: a backlog
# larger than WRITER_FLUSH_TIMEOUT can flush would be journaled at shutdown and, on
# an emptyDir, lost with the pod (which the checks would report).
BENCH_SCENARIO = Scenario(
    budget=Budget(
        settle=3.0,
        prestop_max_wait=5.0,
        drain_timeout=120,
        graceful_shutdown=5,
        writer_flush=10,
        margin=5,
        endpoint_lag=1.0,
        min_ready=2.0,
    ),
    plan=TrafficPlan(
        short_clients=8,
        short_pause=0.02,
        long_every=0.25,
        long_max=60,
        max_requests=500_000,
        long_deltas=55,
        long_gap_ms=500,
    ),
    warmup=10.0,
    cooldown=10.0,
    rolls=2,
    probe_interval=0.25,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pod_env(
    port: int, data_dir: Path, *, upstream_url: str, mongo_uri: str, database: str, budget: Budget
) -> dict[str, str]:
    """The pod's environment: the ConfigMap's worker count, this run's budget, nothing
    inherited that the app would read."""
    ours = set(env_var_names().values()) | {"PROMETHEUS_MULTIPROC_DIR"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ours and not k.startswith(("ANTHROPIC_", "SANIC_"))
    }
    env.update(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
            "SANIC_WORKERS": manifest_config()["SANIC_WORKERS"],
            "ANTHROPIC_FORWARD_URL": upstream_url,
            "MONGODB_URI": mongo_uri,
            "MONGODB_DATABASE": database,
            "DATA_DIR": str(data_dir),
            **budget.env(),
        }
    )
    return env


async def simulate(
    scenario: Scenario, *, upstream_url: str, mongo_uri: str, database: str, workdir: Path
) -> Outcome:
    timeline = Timeline()
    lb = LoadBalancer(timeline, probe_interval=scenario.probe_interval, tag_header=MARKER_HEADER)
    await lb.start()
    everyone: list[Pod] = []
    unflushed: dict[str, list[str]] = {}

    async def boot(name: str) -> Pod:
        port = free_port()
        env = pod_env(
            port,
            workdir / name / "data",
            upstream_url=upstream_url,
            mongo_uri=mongo_uri,
            database=database,
            budget=scenario.budget,
        )
        pod = await Pod.start(name, port, workdir / name, env, timeline)
        everyone.append(pod)
        return pod

    booted: dict[str, Pod] = {}

    async def spawn(name: str) -> Pod:
        return booted.pop(name) if name in booted else await boot(name)

    async def check_flushed(pod: Pod, termination: Termination) -> None:
        # The pod's writer flushed before its process exited, and its journal goes
        # with its emptyDir: what it received must be in MongoDB now, not later.
        logged = (await read_request_log(mongo_uri, database)).ids
        received = [m for m, backend in lb.sent_to.items() if backend == pod.name]
        unflushed[pod.name] = [m for m in received if m not in logged]

    try:
        new_names = ["C", "D"][: scenario.rolls]
        early = new_names if scenario.prestart else []
        async with asyncio.TaskGroup() as group:
            booting = [group.create_task(boot(name)) for name in ["A", "B", *early]]
        first = [task.result() for task in booting[:2]]
        booted.update((task.result().name, task.result()) for task in booting[2:])
        for pod in first:
            lb.add(pod.name, pod.port)
        while not all(b.ready for b in lb.backends.values()):
            await asyncio.sleep(0.02)
        traffic = Traffic(lb.url, scenario.plan, secrets.token_hex(4), timeline)
        stop = asyncio.Event()
        load = asyncio.create_task(traffic.run(stop))
        await asyncio.sleep(scenario.warmup)
        timeline.mark("deploy", "rollout starts")
        new, terminations = await rollout(
            first[: scenario.rolls],
            new_names,
            spawn,
            lb,
            scenario.budget,
            check_flushed,
        )
        timeline.mark("deploy", "rollout complete")
        await asyncio.sleep(scenario.cooldown)
        stop.set()
        results = await load
        timeline.mark("client", "last request finished")
        remaining = first[scenario.rolls :] + new
        timeline.mark("deploy", f"end of run: stopping {', '.join(p.name for p in remaining)}")
        await asyncio.gather(*(pod.stop(scenario.budget.grace_period) for pod in remaining))
        stranded = {pod.name: len(pod.journal_records()) for pod in remaining}
        log = await read_request_log(mongo_uri, database)
    finally:
        for pod in everyone:
            pod.kill()
        await lb.close()
    for result in results:
        result.backend = lb.sent_to.get(result.marker)
    return Outcome(
        grace_period=scenario.budget.grace_period,
        timeline=timeline,
        results=results,
        terminations=terminations,
        log=log,
        unflushed=unflushed,
        stranded_at_end=stranded,
        connections={name: b.connections for name, b in lb.backends.items()},
        refused=lb.refused,
        seconds=timeline.now(),
    )
