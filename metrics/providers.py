"""Provider failover and circuit-breaker metrics (forwarding.failover, forwarding.breaker).

Labels are provider names from the routing config (and `anthropic`, the default
upstream, never a failover target) and a fixed set of reasons, so the series are
bounded by the config. The breaker is per worker: the gauge keeps each live
worker's reading and a scrape shows the worst (`livemax`), so "open" on the graph
means at least one worker is skipping the provider.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from metrics.registry import PREFIX

# Why a request left a provider for its fallback.
FAILOVER_REASONS = (
    "rate_limited",  # 429
    "billing",  # 402, when the provider uses its own key
    "overloaded",  # 529 (and an OpenAI-format 503)
    "server_error",  # any other 5xx
    "unreachable",  # connect refused or failed
    "timeout",  # no response headers in time, or silence before the first byte
    "broken",  # the answer broke or failed before its first byte reached the client
    "circuit_open",  # skipped: the provider's breaker is open
)

# Gauge values: ordered so that the worst state is the largest (the scrape's max).
BREAKER_CLOSED = 0
BREAKER_HALF_OPEN = 1
BREAKER_OPEN = 2

FAILOVERS = Counter(
    f"{PREFIX}_failovers_total",
    "Requests handed from a failing provider to its fallback_provider",
    ["from", "to", "reason"],
)
BREAKER_STATE = Gauge(
    f"{PREFIX}_breaker_state",
    "Circuit breaker of each provider: 0 closed, 1 half-open (probing), 2 open; "
    "the worst of the live workers",
    ["provider"],
    multiprocess_mode="livemax",
)


def initialise_failover_series(edges: Iterable[tuple[str, str]]) -> None:
    """Every failover series the config can produce (provider → its fallback, each
    reason) at 0, so a dashboard shows 0 rather than "No data" and `rate()` sees the
    first failover. The breaker gauges start when the breakers are made."""
    for source, target in edges:
        for reason in FAILOVER_REASONS:
            FAILOVERS.labels(source, target, reason)


def count_failover(source: str, target: str, reason: str) -> None:
    FAILOVERS.labels(source, target, reason).inc()


def set_breaker_state(provider: str, state: int) -> None:
    BREAKER_STATE.labels(provider).set(state)
