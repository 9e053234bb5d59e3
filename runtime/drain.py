"""Graceful drain on SIGTERM/SIGINT, so a rolling update drops nothing.

Sanic's own handler stops the loop at once and gives open connections only
GRACEFUL_SHUTDOWN_TIMEOUT before cutting them, which would cut Claude Code
streams that run for many minutes. Instead, once the server is up, the signal:
1. flips the worker to draining (`/health` answers 503, so the load balancer
   stops sending new connections; requests that still arrive are served and
   answered with `Connection: close`);
2. waits until nothing is in flight or `DRAIN_TIMEOUT` passes, logging progress
   every 10 s;
3. only then asks Sanic to stop, which closes the listener and idle connections.

In multi-worker mode the main process turns SIGTERM into SIGINT for each worker
and waits for them, so both signals lead here.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from functools import partial

from sanic import Request, Sanic

from runtime.settings import Settings
from runtime.state import LiveState

logger = logging.getLogger("proxy.drain")

PROGRESS_INTERVAL = 10.0
DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def close_after_response(request: Request) -> None:
    """While draining, ask the client not to reuse this connection.

    Sanic writes its own `Connection` header from this flag; a client (or load
    balancer) that reconnects lands on a replica that is not going away.
    """
    stream = request.stream
    if hasattr(stream, "keep_alive"):
        stream.keep_alive = False  # type: ignore[union-attr]


def install_drain_handlers(app: Sanic, live: LiveState, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    for sig in DRAIN_SIGNALS:
        # Replaces the handler Sanic installed before after_server_start ran.
        loop.add_signal_handler(sig, partial(begin_drain, app, live, settings, sig))


def begin_drain(app: Sanic, live: LiveState, settings: Settings, sig: signal.Signals) -> None:
    if not live.start_draining():
        logger.info("%s received again while draining; still waiting", sig.name)
        return
    logger.info(
        "%s received: draining, %d in flight, up to %gs (DRAIN_TIMEOUT)",
        sig.name,
        live.in_flight,
        settings.drain_timeout,
    )
    # Kept on app.ctx so the task is referenced (and visible) until it ends.
    app.ctx.drain_task = asyncio.get_running_loop().create_task(
        drain(app, live, settings.drain_timeout), name="proxy-drain"
    )


async def drain(app: Sanic, live: LiveState, budget: float) -> None:
    started = time.monotonic()
    deadline = started + budget
    while live.in_flight > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            logger.warning(
                "drain timeout after %.0fs with %d still in flight; stopping anyway",
                time.monotonic() - started,
                live.in_flight,
            )
            break
        if await live.wait_idle(min(PROGRESS_INTERVAL, remaining)):
            break
        if time.monotonic() < deadline:
            logger.info(
                "draining: %d in flight after %.0fs", live.in_flight, time.monotonic() - started
            )
    logger.info("drained in %.1fs; stopping", time.monotonic() - started)
    app.stop(terminate=False)
