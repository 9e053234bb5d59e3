"""One clock for a simulated rollout: every actor (load balancer, pods, the kubelet
stand-in) stamps what it saw, so the printed timeline lines up across them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Event:
    at: float  # seconds since the timeline started
    who: str
    what: str


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    wall_started: float = field(default_factory=time.time)  # the same moment, wall clock
    events: list[Event] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    def mark(self, who: str, what: str) -> float:
        at = self.now()
        self.events.append(Event(at, who, what))
        return at

    def mark_wall(self, wall: float, who: str, what: str) -> float:
        """An event another process logged with a wall-clock timestamp."""
        at = wall - self.wall_started
        self.events.append(Event(at, who, what))
        return at

    def first(self, who: str, prefix: str) -> Event | None:
        return next((e for e in self.events if e.who == who and e.what.startswith(prefix)), None)

    def render(self) -> str:
        return "\n".join(
            f"  t={e.at:7.2f}s  {e.who:<6} {e.what}"
            for e in sorted(self.events, key=lambda e: e.at)
        )
