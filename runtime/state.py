"""Live operational state of one worker: the in-flight gauge and the draining flag.

`/health` and `/livez` read it, the drain loop waits on it, and the proxy handlers
move the gauge. One instance per worker process, kept on `app.ctx.live`.

With several workers, each also publishes its count into one slot of a shared
array, so `/livez` (whichever worker answers it) reports the whole pod's
in-flight work: the Kubernetes preStop hook waits on that number.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import MutableSequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class LiveState:
    in_flight: int = 0
    draining: bool = False
    draining_since: float | None = None
    # Set whenever in_flight drops to zero, so the drain loop wakes without polling.
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    _shared: MutableSequence[int] | None = None
    _slot: int = 0

    def __post_init__(self) -> None:
        self._idle.set()

    def share(self, counts: MutableSequence[int], slot: int) -> None:
        """Publish this worker's count in `counts[slot]` (one slot per worker)."""
        self._shared = counts
        self._slot = slot % len(counts)
        counts[self._slot] = self.in_flight

    @property
    def total_in_flight(self) -> int:
        if self._shared is None:
            return self.in_flight
        return sum(self._shared)

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()
        if self._shared is not None:
            self._shared[self._slot] = self.in_flight

    def leave(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        if self._shared is not None:
            self._shared[self._slot] = self.in_flight
        if self.in_flight == 0:
            self._idle.set()

    def start_draining(self) -> bool:
        """Flip to draining; False if it already was (signals may arrive twice)."""
        if self.draining:
            return False
        self.draining = True
        self.draining_since = time.monotonic()
        return True

    async def wait_idle(self, within: float) -> bool:
        """Wait until nothing is in flight in this worker; False if `within` s passed first."""
        try:
            async with asyncio.timeout(within):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


def worker_slot() -> int:
    """This worker's index, from the name Sanic's manager gives it ("Sanic-Server-N-M")."""
    match = re.search(r"Server-(\d+)", os.environ.get("SANIC_WORKER_NAME", ""))
    return int(match.group(1)) if match else 0
