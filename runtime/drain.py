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

The main process does not let Sanic's manager handle the signal inside the signal
handler: a thread posts the stop on the manager's monitor pipe, which its loop
reads at a safe point, and only once every worker acknowledged its start-up
(see `_stop_from_the_monitor`: a handler talking to the shared state can corrupt
the main thread's call in progress; a worker interrupted while starting hangs
the manager).
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
    if _stop_from_the_monitor(previous, signum):
        return
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:  # SIG_DFL (or unknown): what the signal does by default
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


# What Sanic's manager's monitor loop does on this message: terminate every worker
# (SIGINT: each drains), then leave the loop and wait for them.
_TERMINATE = "__TERMINATE__"
# The thread that stops the workers through the manager's monitor pipe, once started.
_stopper: threading.Thread | None = None


def _stop_from_the_monitor(previous: Any, signum: int) -> bool:
    """Have Sanic's manager (the owner of `previous`) stop its workers from its own
    monitor loop, not inside this handler. True when that is under way.

    A signal handler runs between two bytecodes of the main thread, which may be
    inside a call to the process manager's shared state: Sanic's handler (and
    any check of the workers' states) would then talk on the same connection, a
    reply would reach the wrong call ("'list' object is not a mapping", seen in a
    test run) and the main process would die mid-shutdown. So the handler only starts
    a thread (its own connection to the shared state) that waits until every
    worker acknowledged its start-up (a worker interrupted while starting never
    acknowledges, and the manager would wait for it forever: a pod deleted during
    start-up would hang until the kubelet's SIGKILL) and then posts `__TERMINATE__`
    on the manager's monitor pipe. A repeat before the manager began shutting
    down is dropped; once it has, Sanic's handler runs: a second signal kills."""
    global _stopper
    manager = getattr(previous, "__self__", None)
    all_acked = getattr(manager, "_all_workers_ack", None)
    publisher = getattr(manager, "monitor_publisher", None)
    if not callable(all_acked) or publisher is None:
        return False  # not Sanic's manager (its internals changed shape, or a test)
    if getattr(manager, "_shutting_down", True):
        return False
    if _stopper is None:
        _stopper = threading.Thread(
            target=_stop_when_ready,
            args=(all_acked, publisher, signum),
            name="drain-signal-stop",
            daemon=True,
        )
        _stopper.start()
    return True


def _stop_when_ready(all_acked: Any, publisher: Any, signum: int) -> None:
    name = signal.Signals(signum).name
    if not _acked(all_acked):
        logger.info("%s received while workers are starting: draining once they are up", name)
        # No deadline of our own: a worker that never comes up makes Sanic's
        # manager give up (and kill the group) after its own ack threshold.
        while not _acked(all_acked):
            time.sleep(0.05)
        time.sleep(0.15)  # the manager reads the acknowledgements every 0.1 s
    logger.info("%s received by the main process: stopping the workers, each drains first", name)
    publisher.send(_TERMINATE)


def _acked(all_acked: Any) -> bool:
    try:
        return bool(all_acked())
    except Exception:  # the shared state is gone or changed shape: stop now
        return True


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
