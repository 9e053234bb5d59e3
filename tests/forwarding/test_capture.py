"""The relay's capture: references to the chunks, bounded per response and per worker."""

from __future__ import annotations

from forwarding.capture import Capture, CaptureBudget
from streaming.exchange import Exchange


def _exchange() -> Exchange:
    return Exchange(
        method="GET", path="/v1/files/f/content", query="", request_headers=[], request_body=b""
    )


def test_keeps_the_chunks_themselves_not_copies() -> None:
    budget = CaptureBudget(1 << 20)
    capture, exchange = Capture(1 << 20, budget), _exchange()
    chunks = [bytes([i]) * 1000 for i in range(10)]
    for chunk in chunks:
        capture.feed(chunk)
    assert budget.used == 10_000
    capture.close(exchange)
    assert all(a is b for a, b in zip(exchange.response_chunks, chunks, strict=True))
    assert exchange.response_bytes == 10_000 and not exchange.response_clipped
    assert budget.used == 0  # released once handed off


def test_clipped_at_the_per_response_cap() -> None:
    budget = CaptureBudget(1 << 30)
    capture, exchange = Capture(2500, budget), _exchange()
    for _ in range(10):
        capture.feed(b"x" * 1000)
    capture.close(exchange)
    assert sum(map(len, exchange.response_chunks)) == 2000
    assert exchange.response_clipped and exchange.response_bytes == 10_000


def test_worker_budget_bounds_all_captures_together() -> None:
    budget = CaptureBudget(5000)
    captures = [Capture(1 << 20, budget) for _ in range(4)]
    for _ in range(5):
        for capture in captures:
            capture.feed(b"y" * 500)
    assert budget.used <= 5000
    exchanges = [_exchange() for _ in captures]
    for capture, exchange in zip(captures, exchanges, strict=True):
        capture.close(exchange)
    assert budget.used == 0
    assert sum(sum(map(len, e.response_chunks)) for e in exchanges) == 5000
    assert all(e.response_clipped for e in exchanges)
    # Budget freed: a new capture keeps its chunks again.
    fresh, exchange = Capture(1 << 20, budget), _exchange()
    fresh.feed(b"z" * 100)
    fresh.close(exchange)
    assert not exchange.response_clipped
