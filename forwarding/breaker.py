"""A circuit breaker per provider, per worker process.

Closed: requests go through; `failures` consecutive failures (as the failover
defines them: 429, 529, 5xx, unreachable, timeouts, before the client got a
byte) open it. Open: requests skip the provider (to its fallback, or straight to
a 529) for `cooldown` seconds. Then half-open: one request, the probe, goes
through while the others still skip; its success closes the breaker, its
failure opens it for another cool-down. A probe that ends without a verdict
(the client left, the request was refused before it was sent) frees the slot
for the next request.

Each worker keeps its own breakers (no shared state on the request path): with
N workers a dead provider costs up to N times `failures` failed attempts before all
of them skip it, and each worker probes on its own.

A verdict counts only for the breaker state it was admitted under (its ticket's
generation): a slow request admitted before the breaker opened cannot close it
by succeeding late, nor reopen it by failing after a probe closed it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from control.routing import BreakerSettings, Provider
from metrics.providers import (
    BREAKER_CLOSED,
    BREAKER_HALF_OPEN,
    BREAKER_OPEN,
    set_breaker_state,
)

logger = logging.getLogger("proxy.breaker")

Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_GAUGE = {
    BreakerState.CLOSED: BREAKER_CLOSED,
    BreakerState.HALF_OPEN: BREAKER_HALF_OPEN,
    BreakerState.OPEN: BREAKER_OPEN,
}


@dataclass(frozen=True, slots=True)
class Ticket:
    """One admitted request; hand it back with its verdict."""

    generation: int
    probe: bool


class Breaker:
    def __init__(
        self, provider: str, settings: BreakerSettings, clock: Clock = time.monotonic
    ) -> None:
        self.provider = provider
        self.settings = settings
        self._clock = clock
        self.state = BreakerState.CLOSED
        self.failures = 0  # consecutive, while closed
        self._generation = 0
        self._opened_at = 0.0
        self._probing = False

    def admit(self) -> Ticket | None:
        """A ticket to try the provider, or None: skip it."""
        if self.state is BreakerState.CLOSED:
            return Ticket(self._generation, probe=False)
        if self.state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.settings.cooldown:
                return None
            self._move(BreakerState.HALF_OPEN)
        if self._probing:
            return None
        self._probing = True
        return Ticket(self._generation, probe=True)

    def succeeded(self, ticket: Ticket) -> None:
        if ticket.generation != self._generation:
            return
        if ticket.probe:
            self._probing = False
            self._move(BreakerState.CLOSED)
        self.failures = 0

    def failed(self, ticket: Ticket) -> None:
        if ticket.generation != self._generation:
            return
        if ticket.probe:
            self._probing = False
            self._open()
            return
        self.failures += 1
        if self.failures >= self.settings.failures:
            self._open()

    def released(self, ticket: Ticket) -> None:
        """The admitted request ended without saying anything about the provider."""
        if ticket.probe and ticket.generation == self._generation:
            self._probing = False

    def retry_after(self) -> int:
        """Whole seconds until a request may be tried again (at least 1)."""
        if self.state is BreakerState.OPEN:
            left = self.settings.cooldown - (self._clock() - self._opened_at)
            return max(1, math.ceil(left))
        return 1

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._move(BreakerState.OPEN)
        logger.warning(
            "breaker_open provider=%s failures=%d cooldown=%gs",
            self.provider,
            self.failures,
            self.settings.cooldown,
        )

    def _move(self, state: BreakerState) -> None:
        if state is BreakerState.CLOSED and self.state is not BreakerState.CLOSED:
            logger.warning("breaker_closed provider=%s", self.provider)
        self.state = state
        self._generation += 1
        if state is BreakerState.CLOSED:
            self.failures = 0
        set_breaker_state(self.provider, _GAUGE[state])


class BreakerBoard:
    """The breakers of one worker, one per provider that has one (`breaker: off`
    providers and the default upstream have none)."""

    def __init__(self, providers: Iterable[Provider] = (), clock: Clock = time.monotonic) -> None:
        self._breakers = {
            p.name: Breaker(p.name, p.breaker, clock) for p in providers if p.breaker is not None
        }
        for name in self._breakers:
            set_breaker_state(name, BREAKER_CLOSED)

    def get(self, provider: str) -> Breaker | None:
        return self._breakers.get(provider)
