"""Make Sanic's process manager wait for draining workers before it stops.

On SIGTERM, Sanic 25.12's manager marks every worker TERMINATED (so `join()`
waits for none of them), then `cleanup()` gives each worker at most 10 s. After
that the main process shuts the shared listening socket and runs
`main_process_stop` — which stops the embedded database — while a worker may
still be draining a long stream: `/health`, `/livez` and `/metrics` then refuse
connections, and the worker's last records miss the database. Workers bound
their own shutdown (DRAIN_TIMEOUT, GRACEFUL_SHUTDOWN_TIMEOUT,
WRITER_FLUSH_TIMEOUT) and Kubernetes' SIGKILL bounds everything, so the manager
can simply wait for them. A second SIGTERM still kills at once (Sanic's own
"Shutdown interrupted. Killing.").
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sanic import Sanic

logger = logging.getLogger("proxy")

POLL_SECONDS = 0.2


def wait_for_workers_before_cleanup(manager: Any) -> None:
    cleanup = manager.cleanup

    def cleanup_after_workers_exit() -> None:
        waiting_since = time.monotonic()
        while any(process.is_alive() for process in manager.processes):
            time.sleep(POLL_SECONDS)
        waited = time.monotonic() - waiting_since
        if waited > 1:
            logger.info("all workers exited after %.1fs", waited)
        cleanup()

    manager.cleanup = cleanup_after_workers_exit


def register_manager_wait(app: Sanic) -> None:
    @app.main_process_ready
    async def wait_for_draining_workers(app: Sanic) -> None:
        wait_for_workers_before_cleanup(app.manager)
