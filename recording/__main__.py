"""`python -m recording`: the recorder process (one per pod, started by the proxy).

Configured by the same environment as the proxy (runtime.settings). SIGTERM
(sent by the proxy's main process once every worker has exited) makes it store
what is left in the journal within WRITER_FLUSH_TIMEOUT and exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from metrics.recorder import MetricsRecorder
from metrics.registry import multiprocess_dir
from recording.checkpoint import Checkpoint
from recording.documents import build_record_document
from recording.journal import JournalReader, Record
from recording.paths import RecorderPaths
from recording.quarantine import Quarantine
from recording.recorder import Recorder
from recording.store import RecordStore
from runtime.settings import Settings
from storage.embedded import published
from storage.mongo import IndexKeeper, connect
from storage.pricing import PriceTable
from streaming.exchange import Exchange

logger = logging.getLogger("proxy.recorder")


async def serve(settings: Settings, uri: str) -> int:
    paths = RecorderPaths(settings.data_dir)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    # Ctrl-C in a terminal reaches the proxy's main process, which stops the
    # recorder itself once the workers are gone.
    loop.add_signal_handler(signal.SIGINT, lambda: None)

    prices = PriceTable.load()
    metrics = MetricsRecorder(pricer=prices.cost)

    def on_folded(exchange: Exchange, judged: bool) -> None:
        metrics.record_content(exchange, judged_stream_failure=judged)

    def build(record: Record) -> dict:
        return build_record_document(record, prices, on_folded)

    checkpoint = Checkpoint.load(paths.checkpoint)
    checkpoint.starts += 1
    checkpoint.save()
    client = connect(uri, timeout=settings.mongodb_timeout)
    db = client[settings.mongodb_database]
    recorder = Recorder(
        JournalReader(paths.journal),
        checkpoint,
        RecordStore(db, Quarantine(paths.quarantine, settings.quarantine_max_bytes)),
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
        await client.close()
    logger.info("recorder stopped: %d records stored", recorder.stored)
    return 0


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
        return asyncio.run(serve(settings, uri))
    finally:
        if multiprocess_dir():
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid())


if __name__ == "__main__":
    sys.exit(main())
