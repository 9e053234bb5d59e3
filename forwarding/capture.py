"""What the relay keeps of a response for the log: the chunks themselves, bounded.

The worker does not decode, parse or fold anything on its way through: it keeps
references to the chunks it already holds (no copy) and hands them off with the
finished exchange; the recorder process decodes and folds them. Two bounds keep
a worker's memory flat whatever the bodies: each response keeps at most
LOG_BODY_MAX_BYTES, and all responses in flight on the worker together at most
LOG_CAPTURE_BUDGET_BYTES. Past either, chunks are still relayed but no longer
kept, and the record says the body was clipped.
"""

from __future__ import annotations

from streaming.exchange import Exchange


class CaptureBudget:
    """One per worker: bytes held by every capture that is still open."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class Capture:
    __slots__ = ("_budget", "_cap", "_chunks", "_held", "_total", "clipped")

    def __init__(self, cap: int, budget: CaptureBudget) -> None:
        self._cap = cap
        self._budget = budget
        self._chunks: list[bytes] = []
        self._held = 0
        self._total = 0
        self.clipped = False

    def feed(self, chunk: bytes) -> None:
        size = len(chunk)
        self._total += size
        if self.clipped:
            return
        budget = self._budget
        if self._held + size > self._cap or budget.used + size > budget.limit:
            self.clipped = True
            return
        self._chunks.append(chunk)
        self._held += size
        budget.used += size

    def close(self, exchange: Exchange) -> None:
        """Hand the chunks to the exchange; the journal's own byte bound takes over."""
        exchange.response_chunks = self._chunks
        exchange.response_bytes = self._total
        exchange.response_clipped = self.clipped
        exchange.captured_bytes = self._held
        self._budget.used -= self._held
        self._held = 0
