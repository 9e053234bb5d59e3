"""The dashboard's Settings page. Thin: the page lives in dashboard/. Behind
DASHBOARD_PASSWORD like every dashboard page; not in the OpenAPI document (an
HTML page; the rules it edits go through `GET/PUT /api/settings`)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from dashboard.settings_page import settings_page

bp = Blueprint("dashboard_settings", url_prefix="/dashboard/settings")


@bp.get("", strict_slashes=False)
@openapi.exclude()
async def settings(request: Request) -> HTTPResponse:
    return await settings_page(request)
