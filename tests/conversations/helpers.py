"""Fixture exchanges → `Exchange` records and log documents, without a network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from recording.document import build_document
from storage.pricing import PriceTable
from streaming.exchange import Exchange, Outcome

PRICES = PriceTable.load()
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def exchange_of(entry: dict[str, Any], started: datetime = T0) -> Exchange:
    """The record the relay would have made of one fixture exchange (SSE folded, or JSON)."""
    path, _, query = entry["path"].partition("?")
    body = entry["body"]
    exchange = Exchange(
        method="POST",
        path=path,
        query=query,
        request_headers=[(k, v) for k, v in entry["headers"]],
        request_body=json.dumps(body).encode(),
        request_json=body,
        model=body.get("model"),
        stream_requested=bool(body.get("stream")),
        started_at=started,
    )
    exchange.status = entry["status"]
    exchange.response_headers = [("request-id", "req_fixture")]
    if entry["status"] >= 400:
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        exchange.response_body = json.dumps(error).encode()
        exchange.finish(Outcome.UPSTREAM_ERROR, "upstream_status")
    elif entry["reply"] is None:
        exchange.response_body = json.dumps({"input_tokens": 42}).encode()
        exchange.finish(Outcome.COMPLETED)
    elif body.get("stream"):
        exchange.is_sse = True
        exchange.message = entry["reply"]
        exchange.stream_complete = True
        exchange.finish(Outcome.COMPLETED)
    else:
        exchange.response_body = json.dumps(entry["reply"]).encode()
        exchange.finish(Outcome.COMPLETED)
    exchange.ttfb_ms, exchange.duration_ms = 300.0, 1200.0
    exchange.completed_at = started + timedelta(milliseconds=1200)
    return exchange


def documents_of(entries: list[dict[str, Any]], start: datetime = T0) -> list[dict[str, Any]]:
    """Log documents of a session, one request every 2 s."""
    return [
        build_document(exchange_of(e, start + timedelta(seconds=2 * i)), PRICES)
        for i, e in enumerate(entries)
    ]
