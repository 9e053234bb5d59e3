"""`GET /dashboard/requests/tail`: the live tail as Server-Sent Events.

Same origin as the page, so `EventSource` works behind the dashboard's Basic
auth (the browser resends the credentials it already holds). Events:

- `rows`: a JSON array of list rows (dashboard.requests_rows), oldest first;
- `end`: `{"reason": ...}` when the server ends the stream (draining, stopping,
  or this browser fell behind); the page reconnects later, to any replica;
- a `: keep-alive` comment every HEARTBEAT seconds, so idle proxies and load
  balancers do not cut a quiet stream.

The filters of the list (model, status, outcome, stream, org, session, and a
session-prefix or model search) narrow what is pushed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from dashboard.requests_filters import FilterError, parse_list_query
from dashboard.security import security_headers
from dashboard.tail import Ended, TailHub
from storage import queries as q
from storage.requests_repo import RequestsRepo
from streaming.errors import error_body

HEARTBEAT = 15.0  # seconds between keep-alive comments on a quiet stream
RETRY_MS = 3000  # what EventSource waits before reconnecting after a cut
HUB_KEY = "dashboard_tail"


def tail_hub(app: Sanic) -> TailHub | None:
    """This worker's hub, made on first use; None without a request log."""
    hub: TailHub | None = getattr(app.ctx, HUB_KEY, None)
    if hub is not None:
        return hub
    repo: RequestsRepo | None = getattr(app.ctx, "requests_repo", None)
    if repo is None:
        return None
    live = getattr(app.ctx, "live", None)
    hub = TailHub(
        repo.completed_since,
        lambda: datetime.now(UTC),
        (lambda: bool(live.draining)) if live is not None else (lambda: False),
    )
    setattr(app.ctx, HUB_KEY, hub)
    return hub


async def stop_tail(app: Sanic) -> None:
    """before_server_stop: end every stream and the poller."""
    hub: TailHub | None = getattr(app.ctx, HUB_KEY, None)
    if hub is not None:
        await hub.stop()


def tail_filter(args: dict[str, str], now: datetime) -> q.RequestFilter:
    """The list's filters, without what only concerns a page (cursor, search words)."""
    lq = parse_list_query(args, now)
    f = lq.filter
    if f.words:
        raise FilterError("q: the live tail does not follow a word search")
    return replace(f, start=None, end=None)


def event(name: str, data: Any) -> str:
    # One `data:` line: the JSON has no raw newlines (json.dumps escapes them).
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _refuse(status: int, message: str) -> HTTPResponse:
    return HTTPResponse(
        error_body(status, message),
        status=status,
        headers=security_headers(),
        content_type="application/json",
    )


async def tail_stream(request: Request) -> HTTPResponse | None:
    args = {name: values[0] for name, values in request.args.items() if values}
    try:
        f = tail_filter(args, datetime.now(UTC))
    except FilterError as exc:
        return _refuse(400, str(exc))
    hub = tail_hub(request.app)
    if hub is None:
        return _refuse(503, "the request log is off: there is nothing to tail")
    listener = hub.subscribe(f)
    if listener is None:
        return _refuse(503, "the live tail is busy or the server is restarting; retry later")
    try:
        headers = security_headers()
        headers.update({"cache-control": "no-cache", "x-accel-buffering": "no"})
        response = await request.respond(
            headers=headers, content_type="text/event-stream; charset=utf-8"
        )
        await response.send(f"retry: {RETRY_MS}\n: live tail\n\n")
        while True:
            item = await listener.next(HEARTBEAT)
            if item is None:
                await response.send(": keep-alive\n\n")
            elif isinstance(item, Ended):
                await response.send(event("end", {"reason": item.reason}))
                break
            else:
                await response.send(event("rows", item))
        await response.eof()
    finally:
        # Also when the browser went away (the send raised, or we were cancelled).
        hub.unsubscribe(listener)
    return None
