"""Dashboard protection: HTTP Basic on `/api/*` and pages, CORS only where asked.

The request log holds every prompt that passed through. With DASHBOARD_PASSWORD
set, everything but the model API, probes, metrics and docs needs it; without it
on a non-loopback address, start-up warns loudly. CORS headers go only on
`/api/*` and only for the origins listed in CORS_ORIGINS.
"""

from __future__ import annotations

import ipaddress
import logging

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from control.auth import WWW_AUTHENTICATE, check_basic, needs_auth
from runtime.settings import Settings
from streaming.errors import error_body

logger = logging.getLogger("proxy")

CORS_METHODS = "GET, PUT, DELETE, OPTIONS"
CORS_HEADERS = "authorization, content-type"


def install_dashboard_guard(app: Sanic, settings: Settings) -> None:
    password = settings.dashboard_password
    if password:

        @app.on_request(priority=100)
        async def require_password(request: Request) -> HTTPResponse | None:
            if request.path.startswith("/v1/") or not needs_auth(request.path):
                return None
            if request.method == "OPTIONS" and settings.cors_origins:
                return None  # CORS preflights carry no credentials by design
            if check_basic(request.headers.get("authorization"), password):
                return None
            return HTTPResponse(
                error_body(401, "Dashboard password required (HTTP Basic, any username)"),
                status=401,
                headers={"www-authenticate": WWW_AUTHENTICATE},
                content_type="application/json",
            )

    elif not is_loopback(settings.host):
        logger.warning(
            "DASHBOARD_PASSWORD is not set and HOST=%s is not a loopback address: the "
            "dashboard API exposes every recorded prompt to anyone who can reach this port",
            settings.host,
        )

    if settings.cors_origins:
        allowed = frozenset(settings.cors_origins)

        @app.on_response
        async def add_cors(request: Request, response: HTTPResponse) -> None:
            origin = request.headers.get("origin")
            if not origin or not request.path.startswith("/api/"):
                return
            if "*" not in allowed and origin.rstrip("/") not in allowed:
                return
            response.headers["access-control-allow-origin"] = origin
            response.headers["vary"] = "Origin"
            if request.method == "OPTIONS":
                response.headers["access-control-allow-methods"] = CORS_METHODS
                response.headers["access-control-allow-headers"] = CORS_HEADERS
                response.headers["access-control-max-age"] = "600"


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
