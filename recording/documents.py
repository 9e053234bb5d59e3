"""One journal record → one request document, in the recorder process.

The worker handed off the raw bytes; here the response is decoded and, for a
stream, folded into the message it amounts to (streaming.observer), the stream's
own verdict is judged (an `event: error`, a missing `message_stop`), its usage
and cost are computed once (recording.priced) for the document and the metrics,
and the document is built (recording.document). A record that cannot be built
still becomes a document, in its minimal form.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from metrics.recorder import MetricsRecorder
from recording.document import build_document, minimal_document
from recording.handoff import decode_exchange
from recording.journal import Record
from recording.priced import Priced, price_exchange
from storage.pricing import PriceTable
from streaming.exchange import Exchange
from streaming.observer import SSEObserver

logger = logging.getLogger("proxy.recorder")

# Called with each exchange once folded and priced: whether the fold turned it
# into a failure, and its usage and cost exactly as its document stores them
# (None if pricing itself failed): the metrics' content half.
OnFolded = Callable[[Exchange, bool, Priced | None], None]


def metrics_sink(metrics: MetricsRecorder) -> OnFolded:
    """The metrics' content half, fed the usage and cost the document stores."""

    def on_folded(exchange: Exchange, judged: bool, priced: Priced | None) -> None:
        metrics.record_content(
            exchange,
            judged_stream_failure=judged,
            usage=priced.counts if priced else None,
            cost=priced.cost if priced else None,
            model=priced.model if priced else None,
        )

    return on_folded


def fold(exchange: Exchange) -> bool:
    """Decode and fold a streamed response; True when the stream's own content
    turned a completed relay into an upstream error."""
    if not exchange.is_sse:
        return False
    observer = SSEObserver(exchange.response_encoding)
    for chunk in exchange.response_chunks:
        observer.feed(chunk)
    observer.close(exchange)
    return exchange.judge_stream()


def build_record_document(
    record: Record, prices: PriceTable, on_folded: OnFolded | None = None
) -> dict[str, Any]:
    meta = record.meta
    exchange = decode_exchange(meta, record.request_body, record.response_body)
    if not meta.get("request_id"):
        # Only a record whose metadata could not be encoded lacks one; its journal
        # position is unique and the same on every retry.
        exchange.request_id = f"{record.owner}-{record.start.segment}-{record.start.offset}"
    try:
        judged = fold(exchange)
        priced: Priced | None = None
        try:
            priced = price_exchange(exchange, prices)
            document = build_document(exchange, prices, priced)
        finally:
            _notify(on_folded, exchange, judged, priced)
    except Exception as exc:  # one odd record must not cost its batch
        logger.exception("request record %s built in its minimal form", exchange.request_id)
        document = minimal_document(exchange, exc)
    for name in ("bodiesDropped", "encodeError"):
        if meta.get(name):
            document[name] = meta[name]
    return document


def _notify(
    on_folded: OnFolded | None, exchange: Exchange, judged: bool, priced: Priced | None
) -> None:
    if on_folded is None:
        return
    try:
        on_folded(exchange, judged, priced)
    except Exception:  # metrics must never cost the record
        logger.exception("metrics failed for %s", exchange.request_id)
