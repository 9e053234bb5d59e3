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

Sanic's main process turns SIGTERM into SIGINT for each worker and waits for
them, so both signals lead here, and a worker alone cannot tell which one the
operator sent. `register_signal_relay` lets the main process note the signal it
received in shared memory before Sanic relays it, so the drain log names it.

A signal that reaches the main process while a worker is still starting would
interrupt that worker before it acknowledged, and Sanic's manager then waits for
the acknowledgement forever (a pod deleted during start-up would hang until the
kubelet's SIGKILL). The main process therefore holds such a signal back until
every worker is up, then handles it as a normal drain.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from functools import partial
from types import FrameType
from typing import Any

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


def register_signal_relay(app: Sanic) -> None:
    """Main process: remember the first drain signal it receives, for the workers.
    Call once while building the app (a second call changes nothing)."""
    if getattr(app.ctx, "signal_relay_registered", False):
        return
    app.ctx.signal_relay_registered = True

    @app.main_process_start
    async def share_drain_signal(app: Sanic) -> None:
        # Written once by the main process, read by workers: no lock needed.
        app.shared_ctx.drain_signal = multiprocessing.Value("i", 0, lock=False)

    @app.main_process_ready
    async def note_drain_signal(app: Sanic) -> None:
        # After Sanic's manager installed its own handlers, which ours then call.
        remember_drain_signal(app.shared_ctx.drain_signal)


def remember_drain_signal(shared: Any) -> None:
    """Wrap this process's SIGTERM/SIGINT handlers: note the signal, then handle it
    as before."""
    for sig in DRAIN_SIGNALS:
        signal.signal(sig, partial(_note_then_handle, shared, signal.getsignal(sig)))


def _note_then_handle(shared: Any, previous: Any, signum: int, frame: FrameType | None) -> None:
    if shared.value == 0:  # the first one: a second signal only forces the stop
        shared.value = signum
    if _defer_until_workers_ready(previous, signum):
        return
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:  # SIG_DFL (or unknown): what the signal does by default
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


# The thread holding a signal back, while it holds it (cleared before it resends).
_deferred: threading.Thread | None = None


def _defer_until_workers_ready(previous: Any, signum: int) -> bool:
    """True when the signal was held back because Sanic's manager (the owner of
    `previous`) still waits for a worker's start-up acknowledgement; a thread
    sends it again once all acknowledged. Repeats while one is held back are
    dropped: they would only turn the drain into a kill of half-started workers."""
    global _deferred
    all_acked = getattr(getattr(previous, "__self__", None), "_all_workers_ack", None)
    if not callable(all_acked):
        return False
    if _deferred is not None:
        return True
    try:
        if all_acked():
            return False
    except Exception:  # Sanic's internals changed shape: handle the signal as it comes
        return False
    logger.info(
        "%s received while workers are starting: draining once they are up",
        signal.Signals(signum).name,
    )
    _deferred = threading.Thread(
        target=_resend_when_ready,
        args=(all_acked, signum),
        name="drain-signal-deferred",
        daemon=True,
    )
    _deferred.start()
    return True


def _resend_when_ready(all_acked: Any, signum: int) -> None:
    # No deadline of our own: a worker that never comes up makes Sanic's manager
    # give up (and kill the group) after its own ack threshold.
    while not all_acked():
        time.sleep(0.05)
    time.sleep(0.15)  # the manager reads the acknowledgements every 0.1 s
    global _deferred
    _deferred = None
    os.kill(os.getpid(), signum)


def signal_description(app: Sanic, sig: signal.Signals) -> str:
    """The signal the operator sent, as far as this worker can know."""
    shared = getattr(app.shared_ctx, "drain_signal", None)
    original = shared.value if shared is not None else 0
    if original and original != sig:
        return (
            f"{signal.Signals(original).name} received by the main process, relayed as {sig.name}"
        )
    return f"{sig.name} received"


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
        "%s: draining, %d in flight, up to %gs (DRAIN_TIMEOUT)",
        signal_description(app, sig),
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
