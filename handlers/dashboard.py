"""The built-in web dashboard: `/` redirects to it, `/dashboard` is the Overview,
`/dashboard/static/<file>` its assets. Thin: the pages live in dashboard/.

Not in the OpenAPI document (HTML pages, not an API). Behind DASHBOARD_PASSWORD
like `/api/*` (control.auth denies by default).
"""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, redirect
from sanic_ext import openapi

from dashboard.assets import etag_matches, lookup
from dashboard.overview import overview_page
from dashboard.security import security_headers
from streaming.errors import error_body

bp = Blueprint("dashboard")


@bp.get("/")
@openapi.exclude()
async def root(request: Request) -> HTTPResponse:
    # Claude Code probes `HEAD /` at start-up and treats a redirect as a failure:
    # a HEAD (Sanic answers it with the GET route) gets a plain 200, only a GET
    # (a person typing the address) is sent to the dashboard.
    if request.method == "HEAD":
        # Named: without a content type Sanic writes `content-type: None`.
        return HTTPResponse(status=200, content_type="text/plain; charset=utf-8")
    return redirect("/dashboard", status=302)


@bp.get("/dashboard")
@openapi.exclude()
async def overview(request: Request) -> HTTPResponse:
    return await overview_page(request)


@bp.get("/dashboard/overview")
@openapi.exclude()
async def overview_alias(request: Request) -> HTTPResponse:
    return await overview_page(request)


@bp.get("/dashboard/static/<name:str>")
@openapi.exclude()
async def static(request: Request, name: str) -> HTTPResponse:
    found = lookup(name)
    headers = security_headers()
    if found is None:
        return HTTPResponse(
            error_body(404, f"no dashboard file {name[:80]!r}"),
            status=404,
            headers=headers,
            content_type="application/json",
        )
    headers["cache-control"] = found.cache_control
    headers["etag"] = found.asset.etag
    if etag_matches(request.headers.get("if-none-match"), found.asset.etag):
        return HTTPResponse(status=304, headers=headers)
    return HTTPResponse(found.asset.body, headers=headers, content_type=found.asset.content_type)
