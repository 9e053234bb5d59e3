"""The in-flight gauge and draining flag."""

from __future__ import annotations

import asyncio

from runtime.state import LiveState


async def test_gauge_and_idle_wait() -> None:
    live = LiveState()
    assert await live.wait_idle(0.01)
    live.enter()
    live.enter()
    assert not await live.wait_idle(0.01)
    live.leave()
    waiter = asyncio.create_task(live.wait_idle(1))
    await asyncio.sleep(0)
    live.leave()
    assert await waiter
    live.leave()  # never below zero
    assert live.in_flight == 0


def test_draining_flips_once() -> None:
    live = LiveState()
    assert live.start_draining()
    assert not live.start_draining()
    assert live.draining and live.draining_since is not None


def test_shared_counts_sum_all_workers() -> None:
    counts = [0, 5, 0]
    live = LiveState()
    live.share(counts, 2)
    live.enter()
    assert counts == [0, 5, 1]
    assert live.total_in_flight == 6 and live.in_flight == 1
    live.leave()
    assert counts == [0, 5, 0]
