"""The circuit breaker's states, on a clock the test moves (no waiting)."""

from __future__ import annotations

import pytest

from control.routing import BreakerSettings, Provider, ProviderFormat
from forwarding.breaker import Breaker, BreakerBoard, BreakerState
from metrics.providers import BREAKER_STATE


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> Breaker:
    return Breaker("flaky", BreakerSettings(failures=3, cooldown=10.0), clock)


def _gauge(provider: str) -> float:
    return BREAKER_STATE.labels(provider)._value.get()


def _fail(breaker: Breaker, times: int) -> None:
    for _ in range(times):
        ticket = breaker.admit()
        assert ticket is not None
        breaker.failed(ticket)


def test_consecutive_failures_open_it(breaker: Breaker) -> None:
    _fail(breaker, 2)
    ticket = breaker.admit()
    assert ticket is not None
    breaker.succeeded(ticket)  # a success in between starts the count again
    _fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    _fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert breaker.admit() is None
    assert _gauge("flaky") == 2


def test_after_the_cooldown_one_probe_goes_and_its_success_closes_it(
    breaker: Breaker, clock: Clock
) -> None:
    _fail(breaker, 3)
    clock.now += 9.5
    assert breaker.admit() is None
    assert breaker.retry_after() == 1
    clock.now += 0.5
    probe = breaker.admit()
    assert probe is not None and probe.probe
    assert breaker.state is BreakerState.HALF_OPEN and _gauge("flaky") == 1
    assert breaker.admit() is None  # one probe at a time; the others still skip
    breaker.succeeded(probe)
    assert breaker.state is BreakerState.CLOSED and _gauge("flaky") == 0
    ticket = breaker.admit()
    assert ticket is not None and not ticket.probe


def test_a_failed_probe_opens_it_for_another_cooldown(breaker: Breaker, clock: Clock) -> None:
    _fail(breaker, 3)
    clock.now += 10
    probe = breaker.admit()
    assert probe is not None
    breaker.failed(probe)
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == 10
    clock.now += 9.9
    assert breaker.admit() is None
    clock.now += 0.1
    assert breaker.admit() is not None


def test_a_probe_without_verdict_frees_the_slot(breaker: Breaker, clock: Clock) -> None:
    _fail(breaker, 3)
    clock.now += 10
    probe = breaker.admit()
    assert probe is not None
    breaker.released(probe)  # e.g. the client went away
    assert breaker.state is BreakerState.HALF_OPEN
    again = breaker.admit()
    assert again is not None and again.probe


def test_late_verdicts_of_an_earlier_state_count_for_nothing(
    breaker: Breaker, clock: Clock
) -> None:
    slow = breaker.admit()
    assert slow is not None
    _fail(breaker, 3)
    breaker.succeeded(slow)  # admitted while closed, answered after it opened
    assert breaker.state is BreakerState.OPEN
    clock.now += 10
    probe = breaker.admit()
    assert probe is not None
    breaker.succeeded(probe)
    breaker.failed(slow)  # a failure from before cannot reopen it
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0


def test_the_board_has_a_breaker_per_provider_that_wants_one(clock: Clock) -> None:
    with_breaker = Provider("on", ProviderFormat.OPENAI, "http://a")
    without = Provider("off", ProviderFormat.ANTHROPIC, "http://b", breaker=None)
    board = BreakerBoard([with_breaker, without], clock)
    made = board.get("on")
    assert made is not None and made.settings == BreakerSettings()
    assert board.get("off") is None and board.get("anthropic") is None
    assert _gauge("on") == 0
