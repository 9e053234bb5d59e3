"""The recorder: the journal → documents → MongoDB, in numbered batches.

It runs in its own process (recording.__main__), so nothing it does — decoding
and folding streams, building documents, conversation fields, search words,
rollups, MongoDB I/O, waiting out an outage — costs a worker's event loop
anything. One batch at a time:

1. read the next records of one worker's journal (round robin over workers);
2. write the batch down in the checkpoint (number, worker, journal range);
3. build the documents (a record that cannot be built gets its minimal form);
4. store them (recording.store: inserts, GridFS, quarantine, derived counts
   tagged with the batch number);
5. commit the checkpoint and let the journal delete what is stored.

A failure in 4 (MongoDB down, stalled past MONGODB_TIMEOUT, refusing) leaves
the batch pending: the recorder backs off and redoes exactly that batch. The
journal is the only queue, so an outage costs disk, not memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from pymongo.errors import PyMongoError

from metrics import registry as m
from recording.checkpoint import Checkpoint
from recording.journal import JournalReader, Position, Record
from recording.status import write_status
from recording.store import BatchResult, RecordStore
from stats.derived_writer import BatchTag

logger = logging.getLogger("proxy.recorder")

BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
BATCH_MAX_RECORDS = 500
# Far below the development database's cache: a batch of tens of MiB stalls it.
BATCH_MAX_BYTES = 4 * 1024 * 1024
STATUS_EVERY = 1.0
POISON_TRIES = 3
_START = Position(0, 0)


class IndexEnsurer:
    """What the recorder needs of storage.mongo.IndexKeeper."""

    async def ensure(self) -> bool:  # pragma: no cover - protocol
        raise NotImplementedError

    def reset(self) -> None:  # pragma: no cover - protocol
        raise NotImplementedError


class Recorder:
    def __init__(
        self,
        reader: JournalReader,
        checkpoint: Checkpoint,
        store: RecordStore,
        indexes: IndexEnsurer,
        build: Callable[[Record], dict[str, Any]],
        *,
        status_path: Any = None,
        linger: float = 0.05,
        batch_max: int = BATCH_MAX_RECORDS,
        batch_bytes: int = BATCH_MAX_BYTES,
    ) -> None:
        self.reader = reader
        self.checkpoint = checkpoint
        self.store = store
        self.indexes = indexes
        self._build = build
        self._status_path = status_path
        self._linger = linger
        self._batch_max = batch_max
        self._batch_bytes = batch_bytes
        self._next_owner = 0
        self._down_until = 0.0
        self._backoff = BACKOFF_MIN
        self._status_at = 0.0
        self.database_up = True
        self.stored = 0
        self.duplicates = 0
        self.quarantined = 0
        self.reshaped = 0
        self.batches = 0
        self.last_error: str | None = None
        self._built: list[dict[str, Any]] = []
        self._built_seq: int | None = None
        self._failing: int | None = None
        self._failures = 0

    # ---- the loop -----------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        stop = asyncio.create_task(stopping.wait(), name="recorder-stopping")
        try:
            while not stopping.is_set():
                step = asyncio.create_task(self.step(), name="recorder-batch")
                await asyncio.wait({step, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    # Stopping while a batch waits on a stalled database: give it up
                    # now (it is redone from the checkpoint), so the flush deadline
                    # starts at once rather than after MONGODB_TIMEOUT.
                    step.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await step
                    return
                await self._after(step.result(), stopping)
        finally:
            stop.cancel()

    async def _after(self, done: int, stopping: asyncio.Event) -> None:
        # After a batch that stored something at once (readers wait for it), else
        # about once a second.
        self.publish_status(force=done > 0)
        if done < self._batch_max:
            # Batches start at most every `linger`: records arriving meanwhile
            # share one insert and one rollup update.
            wait = max(self._linger, self._down_until - time.monotonic(), 0.01)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), min(wait, STATUS_EVERY))

    async def drain(self, within: float) -> bool:
        """At shutdown, after every worker exited: store what is left, within
        `within` seconds. True when the journal is empty; what remains stays on
        disk for the next start (one more try each second while the database is
        down, until the deadline)."""
        deadline = time.monotonic() + within
        self._down_until = 0.0
        while time.monotonic() < deadline:
            try:
                done = await asyncio.wait_for(self.step(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            if done == 0:
                if self.checkpoint.pending is None and not self._has_backlog():
                    self.publish_status(force=True)
                    return True
                await asyncio.sleep(min(1.0, max(0.0, self._down_until - time.monotonic())))
                self._down_until = 0.0
        self.publish_status(force=True)
        return False

    async def step(self) -> int:
        """One batch; returns how many records it stored (0: none ready, or down)."""
        if time.monotonic() < self._down_until:
            return 0
        pending = self.checkpoint.pending
        if pending is not None and self._built_seq == pending.seq:
            documents = self._built
        elif pending is not None:
            records = self.reader.read(
                pending.owner,
                pending.start,
                max_records=1 << 30,
                max_bytes=1 << 62,
                until=pending.end,
            )
            documents = self._documents(pending.seq, records)
        else:
            records = self._next_records()
            if not records:
                self._tidy()
                return 0
            first = records[0]
            pending = self.checkpoint.begin(
                first.owner, self.checkpoint.done.get(first.owner, _START), records[-1].end
            )
            documents = self._documents(pending.seq, records)
        try:
            if not await self.indexes.ensure():
                raise ConnectionError("indexes could not be checked")
            result = await self.store.store(
                documents, BatchTag(self.checkpoint.recorder, pending.seq)
            )
        except (PyMongoError, ConnectionError, OSError) as exc:
            self._mark_down(exc)
            return 0
        except Exception as exc:  # a defect, not an outage: never let it block the log
            if not self._poisoned(pending.seq, documents, exc):
                return 0
            result = BatchResult(quarantined=len(documents))
        self._count(result)
        self.checkpoint.commit()
        self._built, self._built_seq = [], None
        self.reader.release(pending.owner, pending.end)
        self._mark_up()
        return len(documents)

    # ---- pieces -------------------------------------------------------------------
    def _next_records(self) -> list[Record]:
        owners = self.reader.owners()
        if not owners:
            return []
        for i in range(len(owners)):
            owner = owners[(self._next_owner + i) % len(owners)]
            after = self.checkpoint.done.get(owner, _START)
            records = self.reader.read(
                owner, after, max_records=self._batch_max, max_bytes=self._batch_bytes
            )
            if records:
                self._next_owner = (self._next_owner + i + 1) % len(owners)
                return records
        return []

    def _has_backlog(self) -> bool:
        return any(
            self.reader.read(o, self.checkpoint.done.get(o, _START), max_records=1, max_bytes=1)
            for o in self.reader.owners()
        )

    def _tidy(self) -> None:
        """Let the journal drop the directories of workers that exited and are stored."""
        owners = self.reader.owners()
        for owner in owners:
            if owner in self.checkpoint.done and self.reader.is_gone(owner):
                self.reader.release(owner, self.checkpoint.done[owner])
        present = set(self.reader.owners())
        if set(self.checkpoint.done) - present:
            self.checkpoint.forget(present)
            self.checkpoint.save()

    def _documents(self, seq: int, records: list[Record]) -> list[dict[str, Any]]:
        """Built once per batch and kept until it is stored: a retry after an
        outage neither rebuilds them nor counts their metrics again."""
        self._built = [self._build(record) for record in records]
        self._built_seq = seq
        return self._built

    def _poisoned(self, seq: int, documents: list[dict[str, Any]], exc: Exception) -> bool:
        """A batch that fails for a reason other than the database, POISON_TRIES
        times in a row, is quarantined whole so the records after it flow again.
        True once it has been."""
        logger.exception("storing batch %d failed", seq)
        self._failures = self._failures + 1 if self._failing == seq else 1
        self._failing = seq
        self._down_until = time.monotonic() + BACKOFF_MIN
        if self._failures < POISON_TRIES:
            return False
        for document in documents:
            self.store.quarantine.put(document, f"batch {seq} kept failing: {exc!r}")
        self._failures, self._failing = 0, None
        return True

    def _count(self, result: BatchResult) -> None:
        m.RECORDS_STORED.inc(result.inserted)
        if result.quarantined:
            m.RECORDS_QUARANTINED.inc(result.quarantined)
        self.batches += 1
        self.stored += result.inserted
        self.duplicates += result.duplicates
        self.quarantined += result.quarantined
        self.reshaped += result.reshaped

    def _mark_down(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if self.database_up:
            logger.warning("MongoDB unavailable; records wait in the journal: %s", exc)
        self.database_up = False
        self.indexes.reset()
        self._down_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    def _mark_up(self) -> None:
        if not self.database_up:
            logger.info("MongoDB is back; storing the journal's backlog")
        self.database_up = True
        self._backoff = BACKOFF_MIN
        self._down_until = 0.0

    def status(self) -> dict[str, Any]:
        return {
            "recorder": self.checkpoint.recorder,
            "starts": self.checkpoint.starts,
            "database_up": self.database_up,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "quarantine_dropped": self.store.quarantine.dropped,
            "reshaped": self.reshaped,
            "batches": self.batches,
            "last_batch": self.checkpoint.seq,
            "pending_batch": self.checkpoint.pending.seq if self.checkpoint.pending else None,
            "corrupt": self.reader.corrupt,
            "journal_bytes": self.reader.size(),
            # Not yet stored (falls to 0 when caught up; journal_bytes counts files
            # until their segment is finished and released).
            "backlog_bytes": self.reader.backlog(self.checkpoint.done),
            "last_error": self.last_error,
        }

    def publish_status(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._status_path is None or (not force and now - self._status_at < STATUS_EVERY):
            return
        self._status_at = now
        status = self.status()
        m.JOURNAL_BYTES.set(status["journal_bytes"])
        m.RECORDER_DATABASE_UP.set(1 if self.database_up else 0)
        try:
            write_status(self._status_path, status)
        except OSError as exc:
            logger.warning("could not publish the recorder status: %s", exc)
