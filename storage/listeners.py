"""Storage lifecycle: the embedded database (main process), then per worker one
MongoDB client, the indexes, the log writer and the settings watcher.

Stop order: the drain finishes first (runtime.drain); after_server_stop then
closes the settings watcher, flushes the writer (to MongoDB, or the journal)
within WRITER_FLUSH_TIMEOUT, and closes the client; the main process stops the
embedded database last, after every worker has flushed into it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pymongo.errors import PyMongoError
from sanic import Sanic

from control.settings_store import SettingsStore
from metrics import registry as m
from runtime.settings import Settings
from storage.conversation_summaries import CONVERSATIONS
from storage.embedded import publish, published, start_embedded
from storage.journal import Journal
from storage.mongo import (
    REQUESTS,
    connect,
    ensure_conversation_indexes,
    ensure_indexes,
    ensure_rollup_indexes,
)
from storage.pricing import PriceTable
from storage.requests_repo import RequestsRepo
from storage.rollups import ROLLUPS
from storage.stats_service import StatsService
from storage.writer import LogWriter, WriterStats

logger = logging.getLogger("proxy.storage")


def _export_stats(stats: WriterStats) -> None:
    m.WRITER_QUEUE.set(stats.queue_depth)
    m.JOURNAL_BYTES.set(stats.journal_bytes)


def register_storage(app: Sanic, settings: Settings) -> None:
    app.ctx.writer = None
    app.ctx.prices = PriceTable.load()
    if not settings.request_log:
        logger.warning("REQUEST_LOG=false: requests are not recorded")
        return

    @app.main_process_start
    async def start_embedded_database(app: Sanic) -> None:
        if settings.mongodb_uri is None and published() is None:
            app.ctx.embedded = start_embedded(settings.data_dir)
            publish(app.ctx.embedded.uri)

    @app.main_process_stop
    async def stop_embedded_database(app: Sanic) -> None:
        embedded = getattr(app.ctx, "embedded", None)
        if embedded is not None:
            embedded.stop()

    @app.before_server_start
    async def open_storage(app: Sanic) -> None:
        uri = settings.mongodb_uri or published()
        if uri is None:  # only under an ASGI test client: no main process ran
            logger.warning("no MONGODB_URI and no embedded database: request log disabled")
            return
        client = connect(uri)
        db = client[settings.mongodb_database]
        try:
            await ensure_indexes(db[REQUESTS], settings.log_retention_days)
            await ensure_rollup_indexes(db[ROLLUPS])
            await ensure_conversation_indexes(db[CONVERSATIONS], settings.log_retention_days)
        except PyMongoError as exc:  # down at start: the writer journals until it is back
            logger.warning("could not create indexes now (%s); will serve and journal", exc)
        writer = LogWriter(
            db,
            Journal(Path(settings.data_dir) / "journal"),
            app.ctx.prices,
            linger=settings.writer_linger,
            on_stats=_export_stats,
        )
        writer.start()
        store = SettingsStore(db["settings"], app.ctx.rulebook)
        try:
            await store.refresh()
        except PyMongoError as exc:
            logger.warning("could not load header rules now: %s", exc)
        store.start()
        app.ctx.mongo, app.ctx.db, app.ctx.writer = client, db, writer
        app.ctx.requests_repo = RequestsRepo(db)
        app.ctx.stats = StatsService(db)
        app.ctx.settings_store = store

    @app.after_server_stop
    async def close_storage(app: Sanic) -> None:
        if app.ctx.writer is None:
            return
        await app.ctx.settings_store.stop()
        await app.ctx.writer.close(settings.writer_flush_timeout)
        await app.ctx.mongo.close()
