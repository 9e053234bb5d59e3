"""Live operational state of one worker: the in-flight gauge and the draining flag.

`/health` and `/livez` read it, the drain loop waits on it, and the proxy handlers
move the gauge. One instance per worker process, kept on `app.ctx.live`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class LiveState:
    in_flight: int = 0
    draining: bool = False
    draining_since: float | None = None
    # Set whenever in_flight drops to zero, so the drain loop wakes without polling.
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle.set()

    def start_draining(self) -> bool:
        """Flip to draining; False if it already was (signals may arrive twice)."""
        if self.draining:
            return False
        self.draining = True
        self.draining_since = time.monotonic()
        return True

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is in flight; False if `timeout` passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True
