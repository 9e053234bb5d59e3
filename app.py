"""The app factory. `python app.py` serves it, configured by environment variables only."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sanic import Sanic

    from control.routing import RoutingConfig
    from runtime.settings import Settings

APP_NAME = "claude_proxy"


def create_app(settings: Settings | None = None, routing: RoutingConfig | None = None) -> Sanic:
    # Imported here, not at the top: Sanic's worker-state manager is a spawned
    # process that imports this module but never serves (see `_is_sync_manager`).
    from sanic import Sanic

    from control.routing_file import load_config
    from handlers import (
        conversations,
        dashboard,
        dashboard_requests,
        health,
        metrics,
        proxy,
        requests,
        spec,
        stats,
    )
    from handlers import settings as settings_api
    from handlers.dashboard_conversations import bp as dashboard_conversations_bp
    from handlers.dashboard_settings import bp as dashboard_settings_bp
    from runtime.client_deadline import DeadlineRequest
    from runtime.dashboard_guard import install_dashboard_guard
    from runtime.errors import AnthropicErrorHandler
    from runtime.settings import Settings
    from wiring import register_listeners

    settings = settings or Settings.from_env()
    if routing is None:
        routing = load_config(
            settings.config_file, explicit=settings.config_file is not None, environ=os.environ
        )
    _configure_logging(settings.log_level)
    app = Sanic(
        APP_NAME, error_handler=AnthropicErrorHandler(settings), request_class=DeadlineRequest
    )
    app.config.update(
        {
            "REQUEST_MAX_SIZE": settings.request_max_bytes,
            "REQUEST_TIMEOUT": settings.request_read_timeout,
            # Sanic's response timer restarts on every write, so it acts as an idle
            # limit; keep it above our own timeouts, which answer with proper errors.
            "RESPONSE_TIMEOUT": settings.response_timeout_ceiling,
            "KEEP_ALIVE_TIMEOUT": settings.keep_alive_timeout,
            "GRACEFUL_SHUTDOWN_TIMEOUT": settings.graceful_shutdown_timeout,
            "ACCESS_LOG": False,
            "MOTD": False,
            "NOISY_EXCEPTIONS": False,
            # CORS is ours, on /api/* only (runtime.dashboard_guard).
            "CORS": False,
            # sanic-ext's own UIs load from a CDN: off; /docs is ours
            # (handlers/docs_ui.py, Swagger UI from the swagger-ui-py package).
            "OAS_UI_SWAGGER": False,
            "OAS_UI_REDOC": False,
            "OAS_UI_DEFAULT": None,
            "OAS_URL_PREFIX": "/docs",
            "API_TITLE": "Claude Code Proxy API",
            "API_DESCRIPTION": "A transparent, recording Anthropic Messages API proxy.",
            "API_VERSION": "1.0.0",
        }
    )
    for blueprint in (
        proxy.bp,
        health.bp,
        metrics.bp,
        spec.bp,
        requests.bp,
        settings_api.bp,
        stats.bp,
        conversations.bp,
        dashboard.bp,
        dashboard_requests.bp,
        dashboard_settings_bp,
        dashboard_conversations_bp,
    ):
        app.blueprint(blueprint)
    install_dashboard_guard(app, settings)
    if not settings.openapi_docs:
        spec.hide_docs_ui(app)
    register_listeners(app, settings, routing)
    return app


def _configure_logging(level: str) -> None:
    logger = logging.getLogger("proxy")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def _module_app() -> Sanic:
    from control.routing import ConfigError
    from runtime.settings import SettingsError
    from storage.pricing import PricingError

    try:
        return create_app()
    except (SettingsError, ConfigError, PricingError) as exc:
        sys.exit(f"configuration error: {exc}")


def _is_sync_manager() -> bool:
    """Sanic's worker-state manager (a multiprocessing SyncManager) is a spawned
    process that imports this module too, but never serves: building the app there
    only cost ~60 MB (the whole code base imported) and a second of CPU at every
    start."""
    return multiprocessing.current_process().name.startswith("SyncManager")


# Worker processes import this module and look the app up by name.
app = None if _is_sync_manager() else _module_app()


def main() -> None:
    from runtime.client_deadline import DeadlineProtocol

    assert app is not None
    settings: Settings = app.ctx.settings
    app.run(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        # Always under Sanic's process manager, also with one worker: it runs the
        # main-process listeners (shared gauge, embedded database) and turns
        # SIGTERM into a drain signal for every worker the same way.
        single_process=False,
        access_log=False,
        protocol=DeadlineProtocol,
    )


if __name__ == "__main__":
    main()
