"""Storage lifecycle: the embedded database (main process), then per worker one
MongoDB client for the read side (the log, stats and conversation APIs) and the
settings watcher. Writing the log is the recorder's (recording/), which also
creates the indexes, whenever the database is reachable.

Stop order: the drain finishes first (runtime.drain); after_server_stop closes
the settings watcher and the client; the main process stops the embedded
database last, after the recorder has stored what the workers handed off.
"""

from __future__ import annotations

import logging

from pymongo.errors import PyMongoError
from sanic import Sanic

from control.settings_store import SettingsStore
from runtime.settings import Settings
from stats.service import StatsService
from storage.embedded import publish, published, start_embedded
from storage.mongo import connect
from storage.pricing import PriceTable
from storage.requests_repo import RequestsRepo

logger = logging.getLogger("proxy.storage")


def stop_embedded_database(app: Sanic) -> None:
    """Stop the embedded database, if this process started one. The composition
    root calls it last, after the recorder stopped (wiring.register_listeners)."""
    embedded = getattr(app.ctx, "embedded", None)
    if embedded is not None:
        app.ctx.embedded = None
        embedded.stop()


def register_storage(app: Sanic, settings: Settings) -> None:
    app.ctx.db = None
    app.ctx.prices = PriceTable.load()
    if not settings.request_log:
        logger.warning("REQUEST_LOG=false: requests are not recorded")
        return

    @app.main_process_start
    async def start_embedded_database(app: Sanic) -> None:
        if settings.mongodb_uri is None and published() is None:
            app.ctx.embedded = start_embedded(settings.data_dir)
            publish(app.ctx.embedded.uri)

    @app.before_server_start
    async def open_storage(app: Sanic) -> None:
        uri = settings.mongodb_uri or published()
        if uri is None:  # only under an ASGI test client: no main process ran
            logger.warning("no MONGODB_URI and no embedded database: request log disabled")
            return
        client = connect(uri, settings.mongodb_timeout)
        db = client[settings.mongodb_database]
        store = SettingsStore(db["settings"], app.ctx.rulebook)
        try:
            await store.refresh()
        except PyMongoError as exc:
            logger.warning("could not load header rules now: %s", exc)
        store.start()
        app.ctx.mongo, app.ctx.db = client, db
        app.ctx.requests_repo = RequestsRepo(db)
        app.ctx.stats = StatsService(db, zones=settings.stats_zones)
        app.ctx.settings_store = store

    @app.after_server_stop
    async def close_storage(app: Sanic) -> None:
        if app.ctx.db is None:
            return
        await app.ctx.settings_store.stop()
        await app.ctx.mongo.close()
