"""The drain loop: waits for in-flight work, logs progress, then stops the server once."""

from __future__ import annotations

import asyncio
import logging

import pytest

import runtime.drain as drain_module
from runtime.drain import drain
from runtime.state import LiveState

# Serial (make test's second phase): counts progress lines logged every 50 ms over 200 ms.
pytestmark = pytest.mark.serial


class FakeApp:
    def __init__(self) -> None:
        self.stops: list[bool] = []

    def stop(self, terminate: bool = True) -> None:
        self.stops.append(terminate)


async def test_waits_logs_progress_and_stops(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(drain_module, "PROGRESS_INTERVAL", 0.05)
    caplog.set_level(logging.INFO, logger="proxy.drain")
    live, app = LiveState(), FakeApp()
    live.enter()
    task = asyncio.create_task(drain(app, live, budget=10))  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    assert app.stops == []  # still waiting for the request
    live.leave()
    await asyncio.wait_for(task, 1)
    assert app.stops == [False]  # stop this worker only, never terminate the others
    progress = [r for r in caplog.records if "draining: 1 in flight" in r.getMessage()]
    assert 2 <= len(progress) <= 6
    assert "drained in" in caplog.records[-1].getMessage()


async def test_budget_exceeded_stops_anyway(caplog: pytest.LogCaptureFixture) -> None:
    live, app = LiveState(), FakeApp()
    live.enter()
    await asyncio.wait_for(drain(app, live, budget=0.1), 1)  # type: ignore[arg-type]
    assert app.stops == [False]
    assert any("drain timeout" in r.getMessage() for r in caplog.records)
    assert not any("draining: 1" in r.getMessage() for r in caplog.records)
