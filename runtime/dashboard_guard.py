"""Dashboard protection: HTTP Basic on `/api/*` and pages, cross-site writes
refused, CORS only where asked.

The request log holds every prompt that passed through, and `/api/*` can delete it
and change the header rules of every replica. With DASHBOARD_PASSWORD set,
everything but the model API, probes, metrics and docs needs it. Without it, a
non-loopback HOST refuses to start (`refuse_open_dashboard`) unless DASHBOARD_OPEN
says the operator accepts an open dashboard, and then start-up warns loudly; a
loopback HOST (the default, `make run`) needs neither. CORS headers go only on
`/api/*` and only for the origins listed in CORS_ORIGINS.

Browsers resend cached Basic credentials on any request to this origin, also one
a foreign page triggers (a form post, a `fetch` in no-cors mode), so the password
alone does not stop cross-site request forgery: a state-changing call on `/api/*`
or `/dashboard/*` must also come from this origin (see `same_origin`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import posixpath
from collections.abc import Collection, Mapping
from urllib.parse import unquote

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from control.auth import WWW_AUTHENTICATE, check_basic, needs_auth
from runtime.settings import Settings, SettingsError
from streaming.errors import api_error_body, error_body, is_dashboard_api

logger = logging.getLogger("proxy")

CORS_METHODS = "GET, PUT, DELETE, OPTIONS"
CORS_HEADERS = "authorization, content-type"

# Methods that never change state (a route that let one do so would be the bug).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The trees whose writes must come from this origin.
GUARDED_TREES = ("/api", "/dashboard")
# Sec-Fetch-Site values of requests this origin made itself (`none`: the user typed
# the URL or used a bookmark).
_OWN_SITES = frozenset({"same-origin", "none"})


def install_dashboard_guard(app: Sanic, settings: Settings) -> None:
    """Raises SettingsError for an unprotected dashboard on a non-loopback HOST
    (see `refuse_open_dashboard`): the app is never built open by accident."""
    refuse_open_dashboard(settings)
    allowed = frozenset(settings.cors_origins)

    # Before the password check: a cross-site write is refused whether or not the
    # browser attached the credentials it cached, and that says nothing about them.
    @app.on_request(priority=110)
    async def refuse_cross_site_writes(request: Request) -> HTTPResponse | None:
        if request.method in SAFE_METHODS or not guarded_path(request.path):
            return None
        if same_origin(request.headers, own_origin(request), allowed):
            return None
        return cross_site_refusal(request.method, request.path)

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
            body = (
                api_error_body(
                    "Dashboard password required",
                    "Send HTTP Basic credentials: any username, the DASHBOARD_PASSWORD as password",
                )
                if is_dashboard_api(request.path)
                else error_body(401, "Dashboard password required (HTTP Basic, any username)")
            )
            return HTTPResponse(
                body,
                status=401,
                headers={"www-authenticate": WWW_AUTHENTICATE},
                content_type="application/json",
            )

        if settings.dashboard_open:
            logger.info("DASHBOARD_OPEN is ignored: DASHBOARD_PASSWORD is set")

    elif not is_loopback(settings.host):  # reached only with DASHBOARD_OPEN=true
        logger.warning(
            "DASHBOARD_OPEN=true: the dashboard and its API are OPEN on HOST=%s, a "
            "non-loopback address, without DASHBOARD_PASSWORD: anyone who can reach this "
            "port reads every recorded prompt, deletes the request log and changes the "
            "header rules",
            settings.host,
        )

    if settings.cors_origins:

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


def guarded_path(path: str) -> bool:
    """`/api`, `/dashboard` and anything below them, judged on the path as sent and
    on its decoded, dot-resolved form: a variant a router (or a reverse proxy in
    front) might map into a guarded tree is guarded too."""
    candidates = {path, unquote(path)}
    candidates |= {posixpath.normpath(c) for c in candidates if c.startswith("/")}
    return any(
        c.lower() == tree or c.lower().startswith(tree + "/")
        for c in candidates
        for tree in GUARDED_TREES
    )


def own_origin(request: Request) -> str:
    """This server's origin as the browser sees it (`scheme://host[:port]`)."""
    return f"{request.scheme}://{request.host}".lower()


def same_origin(headers: Mapping[str, str], own: str, allowed: Collection[str] = ()) -> bool:
    """Whether a request may change state: it came from this origin, from an
    origin CORS_ORIGINS lists (`*`: any), or from a client that is not a browser.

    Browsers mark every request with `Sec-Fetch-Site` (Chromium, Firefox, Safari
    since 2023) and send `Origin` on every non-GET `fetch` and form post; curl,
    scripts and the SDKs send neither, and a page cannot forge either header. So:
    `Sec-Fetch-Site: same-origin|none` passes; an `Origin` must equal this origin
    or be listed; a `Sec-Fetch-Site` saying `same-site` or `cross-site` without a
    listed `Origin` is refused; neither header at all is a non-browser client.
    """
    site = (headers.get("sec-fetch-site") or "").strip().lower()
    origin = (headers.get("origin") or "").strip().rstrip("/").lower()
    if site in _OWN_SITES:
        return True
    listed = bool(origin) and origin != "null" and ("*" in allowed or origin in _lower(allowed))
    if site:  # the browser itself says another site made it
        return listed
    if origin:  # `null`: sandboxed frames, file:// pages, cross-origin redirects
        return origin == own.lower() or listed
    return True  # neither header: curl, scripts, the SDKs


def _lower(origins: Collection[str]) -> set[str]:
    return {o.lower() for o in origins}


def cross_site_refusal(method: str, path: str) -> HTTPResponse:
    """403 in the dashboard API's `{error, details}` shape."""
    body = {
        "error": "Cross-site request refused",
        "details": (
            f"{method} {path} changes state and must come from the dashboard's own origin "
            "(Sec-Fetch-Site: same-origin, or an Origin equal to this server's, or one "
            "listed in CORS_ORIGINS)"
        ),
    }
    return HTTPResponse(
        json.dumps(body, separators=(",", ":")), status=403, content_type="application/json"
    )


def refuse_open_dashboard(settings: Settings) -> None:
    """SettingsError (one line, naming HOST, DASHBOARD_PASSWORD and the opt-out) when
    the dashboard would be unprotected on a non-loopback address without the
    operator's explicit DASHBOARD_OPEN=true."""
    problem = open_dashboard_problem(settings)
    if problem:
        raise SettingsError(problem)


def open_dashboard_problem(settings: Settings) -> str | None:
    if settings.dashboard_password or settings.dashboard_open or is_loopback(settings.host):
        return None
    return (
        f"HOST={settings.host} is not a loopback address and DASHBOARD_PASSWORD is not set: "
        "the dashboard API would give anyone who reaches this port every recorded prompt, "
        "the deletion of the request log and the header rules of every replica. Set "
        "DASHBOARD_PASSWORD, or bind HOST=127.0.0.1, or set DASHBOARD_OPEN=true to accept "
        "an open dashboard"
    )


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped or in brackets) and `localhost`. Any other
    name is not: it may resolve to any address, and an empty HOST binds them all."""
    host = host.strip().lower().removeprefix("[").removesuffix("]")
    if host in ("localhost", "localhost."):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
