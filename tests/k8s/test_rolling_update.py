"""Rolling update under load, with real processes: nothing cut, nothing lost.

Pods A and B (`python app.py`, on the session's MongoDB) behind a readiness-aware
load balancer; clients keep sending short JSON and SSE requests and 5 s streams;
A is replaced by C the way a Deployment does it (bench/kube.py: the manifest's own
preStop script, SIGTERM, SIGKILL at the grace period). The timeline is printed
(`pytest -s`). bench/rolling_update.py runs the same simulation with more load.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from bench.rollout import TEST_SCENARIO, simulate
from bench.rollout_outcome import Outcome
from tests.fake_upstream import FakeUpstream

# Serial (make test's second phase): 5 s streams, preStop waits, grace periods.
pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def rollout(
    upstream: FakeUpstream, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outcome]:
    """One simulated rollout (~25 s, most of it three pods starting), checked below."""
    database = f"test_rollout_{os.getpid()}"
    try:
        outcome = asyncio.run(
            simulate(
                TEST_SCENARIO,
                upstream_url=upstream.url,
                mongo_uri=mongo_uri,
                database=database,
                workdir=tmp_path_factory.mktemp("rollout"),
            )
        )
        print(outcome.render())
        yield outcome
    finally:
        client: MongoClient[Any] = MongoClient(mongo_uri)
        client.drop_database(database)
        client.close()


def test_no_request_is_cut_and_each_is_logged_exactly_once(rollout: Outcome) -> None:
    # Every response byte-identical to the upstream's; every marker once in MongoDB,
    # under the id the client was given, recorded as completed; A exited 0 without
    # SIGKILL, with nothing left in its journal (its emptyDir is gone) and everything
    # it received already in MongoDB when it exited. Each violation is listed.
    assert rollout.problems() == []
    assert len(rollout.log.ids) == len(rollout.results) > 0


def test_the_roll_exercised_the_drain(rollout: Outcome) -> None:
    """Guards against a vacuous pass: A had streams in flight when SIGTERM came,
    finished them while unready, and C took over new connections."""
    (a,) = rollout.terminations
    assert a.pod == "A" and a.sigterm_at is not None and a.exited_at is not None
    assert a.in_flight_at_sigterm, "nothing was in flight at SIGTERM: the drain proved nothing"
    finished_on_a = [
        r
        for r in rollout.results
        if r.backend == "A" and r.kind == "long" and r.ended > a.sigterm_at
    ]
    assert finished_on_a, "no long stream finished on A after its SIGTERM"
    unready = rollout.timeline.first("lb", "A unready (/health 503)")
    removed = rollout.timeline.first("lb", "A removed from endpoints")
    assert removed is not None and removed.at < a.sigterm_at, "endpoint removal precedes SIGTERM"
    assert unready is not None and a.sigterm_at < unready.at < a.exited_at
    assert a.drained_at is not None and a.sigterm_at < a.drained_at <= a.exited_at
    assert any(r.backend == "C" for r in rollout.results), "C never served a request"
