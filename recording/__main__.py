"""`python -m recording`: the recorder process (one per pod, started by the proxy).

Configured by the same environment as the proxy (runtime.settings). SIGTERM
(sent by the proxy's main process once every worker has exited) makes it store
what is left in the journal within WRITER_FLUSH_TIMEOUT and exit.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import sys
from pathlib import Path
from typing import IO

from metrics.recorder import MetricsRecorder
from metrics.registry import multiprocess_dir
from recording.checkpoint import Checkpoint
from recording.documents import build_record_document, metrics_sink
from recording.journal import JournalReader, Record
from recording.paths import RecorderPaths
from recording.quarantine import Quarantine
from recording.recorder import Recorder
from recording.store import RecordStore
from runtime.settings import Settings
from storage.embedded import published
from storage.mongo import IndexKeeper, connect
from storage.pricing import PriceTable, PricingError

logger = logging.getLogger("proxy.recorder")

# How often the recorder looks whether the proxy that started it is still there.
PARENT_CHECK_EVERY = 1.0


async def serve(settings: Settings, uri: str, prices: PriceTable) -> int:
    paths = RecorderPaths(settings.data_dir)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    # Ctrl-C in a terminal reaches the proxy's main process, which stops the
    # recorder itself once the workers are gone.
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    orphaned = asyncio.create_task(
        watch_parent(os.getppid(), stopping), name="recorder-parent-watch"
    )

    # Tokens and cost are counted from the usage and Cost each document stores.
    on_folded = metrics_sink(MetricsRecorder())

    def build(record: Record) -> dict:
        return build_record_document(record, prices, on_folded)

    # One recorder per DATA_DIR: a new one (the proxy restarted right after a
    # crash) waits while an orphan of the old proxy still flushes.
    lock = await hold_lock(paths.lock, stopping)
    if lock is None:
        return 0
    checkpoint = Checkpoint.load(paths.checkpoint)
    checkpoint.starts += 1
    checkpoint.save()
    client = connect(uri, timeout=settings.mongodb_timeout)
    db = client[settings.mongodb_database]
    recorder = Recorder(
        JournalReader(paths.journal),
        checkpoint,
        RecordStore(
            db,
            Quarantine(paths.quarantine, settings.quarantine_max_bytes),
            settings.stats_zones,
        ),
        IndexKeeper(db, settings.log_retention_days),
        build,
        status_path=paths.status,
        linger=settings.writer_linger,
    )
    logger.info(
        "recorder %s started (start %d) on %s",
        checkpoint.recorder,
        checkpoint.starts,
        paths.journal,
    )
    try:
        await recorder.run(stopping)
        emptied = await recorder.drain(settings.writer_flush_timeout)
        if not emptied:
            logger.warning(
                "recorder stopped with records left in the journal (%d bytes): they are "
                "stored at the next start",
                recorder.reader.size(),
            )
    finally:
        orphaned.cancel()
        await client.close()
        lock.close()
    logger.info("recorder stopped: %d records stored", recorder.stored)
    return 0


async def hold_lock(path: Path, stopping: asyncio.Event) -> IO[bytes] | None:
    """An exclusive flock on `path`, waited for (None if told to stop first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("ab")
    waiting = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if not waiting:
                logger.warning("another recorder holds %s: waiting for it to finish", path)
                waiting = True
        if stopping.is_set():
            handle.close()
            return None
        await asyncio.sleep(0.5)


async def watch_parent(parent: int, stopping: asyncio.Event) -> None:
    """Stop like on SIGTERM once the proxy's main process is gone. It runs in a
    session of its own, so when that process dies without stopping it (SIGKILL,
    a start-up that failed) nothing else would: it would run, orphaned, forever.
    What it cannot store in WRITER_FLUSH_TIMEOUT waits in the journal."""
    while not stopping.is_set():
        if os.getppid() != parent:
            logger.warning("the proxy (pid %d) is gone: stopping the recorder", parent)
            stopping.set()
            return
        await asyncio.sleep(PARENT_CHECK_EVERY)


def main() -> int:
    settings = Settings.from_env()
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    uri = settings.mongodb_uri or published()
    if uri is None:
        logger.error("no MONGODB_URI and no embedded database: nothing to record into")
        return 2
    try:
        prices = PriceTable.load()
    except PricingError as exc:  # the proxy refuses it at start-up too; say it once, clearly
        logger.error("configuration error: %s", exc)
        return 2
    try:
        return asyncio.run(serve(settings, uri, prices))
    finally:
        if multiprocess_dir():
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid())


if __name__ == "__main__":
    sys.exit(main())
