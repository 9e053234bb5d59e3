"""Recording's lifecycle in the proxy's processes.

Main process: starts the recorder process after the embedded database (if any)
and stops it after every worker has exited, so it stores what they handed off
to the very end (WRITER_FLUSH_TIMEOUT), before the embedded database stops.
Workers: each opens its journal writer before serving and closes it after the
drain (JOURNAL_CLOSE_TIMEOUT), once no exchange can still be handed off.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sanic import Sanic

from metrics import registry as m
from recording.handoff import encode_exchange
from recording.journal import JOURNAL_CLOSE_TIMEOUT, JournalWriter
from recording.paths import RecorderPaths
from recording.status import read_status
from recording.supervisor import RecorderSupervisor
from runtime.settings import Settings
from streaming.exchange import Exchange

logger = logging.getLogger("proxy.recording")

STATS_EVERY = 1.0
# The recorder's flush deadline plus time to start and exit.
_STOP_MARGIN = 10.0


async def stop_recorder(app: Sanic, settings: Settings) -> None:
    """Stop the recorder, once every worker exited, giving it its flush deadline:
    it stores what the workers handed off. The composition root calls it before
    the embedded database stops (wiring.register_listeners)."""
    supervisor: RecorderSupervisor | None = getattr(app.ctx, "recorder", None)
    if supervisor is not None:
        await asyncio.to_thread(supervisor.stop, settings.writer_flush_timeout + _STOP_MARGIN)


def register_recording(app: Sanic, settings: Settings) -> None:
    """Call after storage.listeners.register_storage (listener order matters)."""
    app.ctx.journal = None
    if not settings.request_log:
        return
    paths = RecorderPaths(settings.data_dir)

    @app.main_process_start
    async def start_recorder(app: Sanic) -> None:
        app.ctx.recorder = RecorderSupervisor()
        app.ctx.recorder.start()

    @app.before_server_start
    async def open_journal(app: Sanic) -> None:
        journal = JournalWriter(
            paths.journal,
            segment_bytes=settings.journal_segment_bytes,
            max_bytes=max(1, settings.journal_max_bytes // max(settings.workers, 1)),
            queue_bytes=settings.journal_queue_bytes,
            encode=encode_exchange,
        )
        journal.start()
        app.ctx.journal = journal
        app.ctx.journal_seen = {}
        app.ctx.journal_stats_task = asyncio.create_task(
            _export_stats(journal, app.ctx.journal_seen), name="journal-stats"
        )

    @app.after_server_stop
    async def close_journal(app: Sanic) -> None:
        journal: JournalWriter | None = app.ctx.journal
        if journal is None:
            return
        app.ctx.journal_stats_task.cancel()
        await asyncio.to_thread(journal.close, JOURNAL_CLOSE_TIMEOUT)
        _export_once(journal, app.ctx.journal_seen)


def handoff_sink(journal: JournalWriter) -> Any:
    """The forwarder's sink: O(1) on the event loop, never raises."""

    def hand_off(exchange: Exchange) -> None:
        journal.submit(
            exchange,
            exchange.request_body,
            exchange.response_chunks,
            response_bytes=exchange.captured_bytes,
        )

    return hand_off


def recording_state(app: Sanic, settings: Settings) -> dict[str, Any] | None:
    """`/livez`'s `writer`: this worker's hand-off and the recorder's state."""
    journal: JournalWriter | None = getattr(app.ctx, "journal", None)
    if journal is None:
        return None
    mine = journal.stats()
    recorder = read_status(RecorderPaths(settings.data_dir).status)
    return {
        "queue_depth": mine["queue_records"],
        "queue_bytes": mine["queue_bytes"],
        "journaled": mine["records"],
        "bodies_dropped": mine["bodies_dropped"],
        "lost": mine["lost"],
        "journal_bytes": (recorder or {}).get("journal_bytes", mine["journal_bytes"]),
        "backlog_bytes": (recorder or {}).get("backlog_bytes"),
        "written": (recorder or {}).get("stored"),
        "database_up": (recorder or {}).get("database_up"),
        "quarantined": (recorder or {}).get("quarantined"),
        "recorder": recorder,
    }


async def _export_stats(journal: JournalWriter, seen: dict[str, int]) -> None:
    while True:
        await asyncio.sleep(STATS_EVERY)
        _export_once(journal, seen)


def _export_once(journal: JournalWriter, seen: dict[str, int]) -> None:
    stats = journal.stats()
    m.WRITER_QUEUE.set(stats["queue_records"])
    for name, counter in (("lost", m.RECORDS_LOST), ("bodies_dropped", m.BODIES_DROPPED)):
        delta = stats[name] - seen.get(name, 0)
        if delta > 0:
            counter.inc(delta)
        seen[name] = stats[name]
