"""The log writer: finished exchanges → MongoDB in batches, never losing one.

- `submit` (called just after a response is written) only enqueues: the client
  never waits on storage. If the bounded queue is full, the record goes to the
  journal instead of being dropped: through a spill task that appends in batches
  off the event loop, or, if even that falls a queue's length behind, at once.
- A named background task builds documents and inserts them in batches
  (`insert_many(ordered=False)`). A record already stored (same `_id`) counts as
  written, which makes every retry and replay exactly-once.
- When MongoDB is unreachable or fails, the batch is appended to the local
  journal and the writer backs off; while it is down, batches go straight to the
  journal. When MongoDB answers again, the journal (also one left by a previous
  run) is replayed and deleted file by file.
- `close` (after the drain) flushes the queue, then tries one last replay; what
  cannot reach MongoDB stays in the journal for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bson.errors import InvalidDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from storage.bodies import offload_bodies
from storage.conversation_summaries import CONVERSATIONS
from storage.document import build_document, minimal_document
from storage.journal import Journal
from storage.mongo import REQUESTS
from storage.pricing import PriceTable
from storage.rollup_writer import rollup_writer
from storage.rollups import ROLLUPS
from storage.storable import storable
from storage.summary_writer import summary_writer
from streaming.exchange import Exchange

logger = logging.getLogger("proxy.writer")

DUPLICATE_KEY = 11000
BACKOFF_MAX = 30.0


@dataclass(slots=True)
class WriterStats:
    queue_depth: int
    journal_bytes: int
    journal_files: int
    written: int
    journaled: int
    database_up: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue_depth": self.queue_depth,
            "journal_bytes": self.journal_bytes,
            "journal_files": self.journal_files,
            "written": self.written,
            "journaled": self.journaled,
            "database_up": self.database_up,
        }


class LogWriter:
    def __init__(
        self,
        db: AsyncDatabase[Any],
        journal: Journal,
        prices: PriceTable,
        *,
        queue_max: int = 10_000,
        batch_max: int = 500,
        linger: float = 0.0,
        on_stats: Callable[[WriterStats], None] | None = None,
    ) -> None:
        self._db = db
        self._requests = db[REQUESTS]
        self._rollups = rollup_writer(db[ROLLUPS])
        self._summaries = summary_writer(db[CONVERSATIONS])
        self._journal = journal
        self._prices = prices
        self._queue: asyncio.Queue[Exchange] = asyncio.Queue(maxsize=queue_max)
        self._batch_max = batch_max
        self._linger = linger
        self._batch_started = 0.0  # monotonic start of the last batch
        self._on_stats = on_stats
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._idle = asyncio.Event()  # set while no batch is being written
        self._idle.set()
        self._down_until = 0.0  # monotonic time before which MongoDB is not retried
        self._backoff = 1.0
        self._database_up = True
        self._written = 0
        self._journaled = 0
        self._spill: list[Exchange] = []  # queue overflow on its way to the journal
        self._spill_task: asyncio.Task[None] | None = None

    # ---- the request path ---------------------------------------------------------
    def submit(self, exchange: Exchange) -> None:
        try:
            self._queue.put_nowait(exchange)
        except asyncio.QueueFull:
            # The database has been slower than the traffic for a while.
            self._journaled += 1
            self._spill.append(exchange)
            if len(self._spill) > self._queue.maxsize:
                # The journal cannot keep up either: blocking beats growing.
                spilled, self._spill = self._spill, []
                self._journal.append([self._document(e) for e in spilled])
            elif self._spill_task is None or self._spill_task.done():
                self._spill_task = asyncio.get_running_loop().create_task(
                    self._flush_spill(), name="log-writer-spill"
                )

    async def _flush_spill(self) -> None:
        while self._spill:
            taken, self._spill = self._spill, []
            try:
                documents = await self._documents(taken)
                await asyncio.to_thread(self._journal.append, documents)
            except asyncio.CancelledError:
                # Back for close() to journal (a record appended twice is
                # replayed once: same _id).
                self._spill[:0] = taken
                raise
            except Exception:
                self._spill[:0] = taken  # the next overflow or close() retries
                logger.exception("could not journal %d overflowing records yet", len(taken))
                return

    # ---- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="log-writer")

    async def close(self, within: float) -> None:
        self._closing = True
        if self._task is not None:
            # Let a batch being inserted finish rather than cancel it into the
            # journal: in Kubernetes the journal's emptyDir goes with the pod.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), within)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            async with asyncio.timeout(within):
                while not self._queue.empty():
                    await self._write(self._take_batch())
                self._down_until = 0.0
                await self._replay()
                if self._rollups.pending and not await self._rollups.apply([]):
                    logger.error(
                        "%d rollup updates could not be written; run "
                        "`python -m storage.rebuild_rollups` to repair the stats",
                        self._rollups.pending,
                    )
                if self._summaries.pending and not await self._summaries.apply([]):
                    logger.error(
                        "%d conversation summaries could not be updated; run "
                        "`python -m storage.rebuild_rollups` to repair the list",
                        self._summaries.pending,
                    )
        except TimeoutError:
            logger.warning("writer flush timed out; journaling what is left")
        finally:
            if self._spill_task is not None:
                # Not cancelled: its append may be under way in a thread.
                with contextlib.suppress(Exception):
                    await self._spill_task
            spilled, self._spill = self._spill, []
            leftover = self._take_all()
            if spilled or leftover:
                self._journal.append([self._document(e) for e in spilled + leftover])
                self._journaled += len(leftover)
            self._journal.close()
        bytes_, files = self._journal.size()
        logger.info(
            "log writer closed: %d written, %d in the journal (%d bytes)",
            self._written,
            files,
            bytes_,
        )

    def stats(self) -> WriterStats:
        bytes_, files = self._journal.size()
        return WriterStats(
            self._queue.qsize(), bytes_, files, self._written, self._journaled, self._database_up
        )

    # ---- the background task --------------------------------------------------------
    async def _run(self) -> None:
        while not self._closing:
            try:
                first = await asyncio.wait_for(self._queue.get(), timeout=1.0)
            except TimeoutError:
                first = None
            if self._closing and first is not None:
                self._queue.put_nowait(first)  # close() flushes it
                return
            self._idle.clear()  # from here on close() waits for this batch
            batch = [first] if first is not None else []
            try:
                if first is not None and self._linger:
                    await self._gather()
                batch += self._take_batch(self._batch_max - len(batch))
                if batch:
                    self._batch_started = time.monotonic()
                    await self._write(batch)
                if time.monotonic() >= self._down_until:
                    await self._replay()
                    if self._rollups.pending:
                        await self._rollups.apply([])
                    if self._summaries.pending:
                        await self._summaries.apply([])
            except asyncio.CancelledError:
                if batch:  # taken from the queue but not yet written: keep it
                    self._journal.append([self._document(e) for e in batch])
                raise
            except Exception:  # a bug must not stop the writer for good
                logger.exception("log writer iteration failed")
            finally:
                self._idle.set()
            if self._on_stats is not None:
                self._on_stats(self.stats())

    async def _gather(self) -> None:
        # Batches start at most every `linger` seconds: a write that took longer
        # adds no wait. Ends early when a full batch is waiting or close() begins.
        deadline = self._batch_started + self._linger
        while not self._closing and self._queue.qsize() < self._batch_max - 1:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.01))

    def _take_batch(self, limit: int | None = None) -> list[Exchange]:
        limit = self._batch_max if limit is None else limit
        batch: list[Exchange] = []
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return batch

    def _take_all(self) -> list[Exchange]:
        return self._take_batch(self._queue.qsize() + 1)

    def _document(self, exchange: Exchange) -> dict[str, Any]:
        try:
            return build_document(exchange, self._prices)
        except Exception as exc:  # one odd exchange must not cost the batch
            logger.exception("request record %s built in its minimal form", exchange.request_id)
            return minimal_document(exchange, exc)

    async def _documents(self, batch: list[Exchange]) -> list[dict[str, Any]]:
        documents = []
        for exchange in batch:
            documents.append(self._document(exchange))
            # ~60 µs each: a whole batch at once would stall the requests this
            # worker is serving for milliseconds.
            await asyncio.sleep(0)
        return documents

    async def _write(self, batch: list[Exchange]) -> None:
        documents = await self._documents(batch)
        if time.monotonic() < self._down_until:
            await self._to_journal(documents)
            return
        try:
            await self.insert_documents(documents)
        except PyMongoError as exc:
            self._mark_down(exc)
            await self._to_journal(documents)
            return
        self._written += len(documents)
        self._mark_up()

    async def _to_journal(self, documents: list[dict[str, Any]]) -> None:
        # fsync can take milliseconds: keep it off the event loop.
        await asyncio.to_thread(self._journal.append, documents)
        self._journaled += len(documents)

    async def insert_documents(self, documents: list[dict[str, Any]]) -> None:
        """Store finished documents and count them into the rollups and the
        conversation summaries (the bulk path the writer, the journal replay and
        bulk loads share). Raises PyMongoError when MongoDB did not take them."""
        if not documents:
            return
        try:
            stored = [await offload_bodies(self._db, d) for d in documents]
            await self._insert_many(documents, stored)
        except (InvalidDocument, UnicodeEncodeError, OverflowError) as exc:
            # A value BSON cannot hold (lone surrogate, huge integer, NUL in a
            # key): store every record of the batch in a form it can.
            logger.warning("a request record needed sanitising to be stored: %r", exc)
            documents = [storable(d) for d in documents]
            stored = [await offload_bodies(self._db, d) for d in documents]
            await self._insert_many(documents, stored)

    async def _insert_many(
        self, documents: list[dict[str, Any]], stored: list[dict[str, Any]]
    ) -> None:
        inserted = documents
        try:
            await self._requests.insert_many(stored, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors) or exc.details.get(
                "writeConcernErrors"
            ):
                raise
            # Duplicates only: those records were stored (and counted) by an
            # earlier attempt.
            duplicates = {e["index"] for e in errors}
            inserted = [d for i, d in enumerate(documents) if i not in duplicates]
        await self._rollups.apply(inserted)
        await self._summaries.apply(inserted)

    async def _replay(self) -> None:
        files = await asyncio.to_thread(self._replay_candidates)
        for file in files:
            documents = list(await asyncio.to_thread(lambda f=file: list(Journal.read(f))))
            try:
                for start in range(0, len(documents), self._batch_max):
                    await self.insert_documents(documents[start : start + self._batch_max])
            except PyMongoError as exc:
                self._mark_down(exc)
                return
            file.path.unlink(missing_ok=True)
            self._written += len(documents)
            self._mark_up()
            logger.info("replayed %d journaled records from %s", len(documents), file.path.name)
        if files:
            await asyncio.to_thread(self._journal.forget_gone_owners)

    def _replay_candidates(self) -> list[Any]:
        if not self._journal.files():
            return []
        self._journal.seal()
        return self._journal.replayable()

    def _mark_down(self, exc: Exception) -> None:
        if self._database_up:
            logger.warning("MongoDB unavailable, journaling request records: %s", exc)
        self._database_up = False
        self._down_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    def _mark_up(self) -> None:
        if not self._database_up:
            logger.info("MongoDB is back; request records go to it again")
        self._database_up = True
        self._backoff = 1.0
        self._down_until = 0.0
