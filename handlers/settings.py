"""`GET/PUT /api/settings`: the header rules, shared by every replica."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response
from sanic_ext import openapi

from control.header_rules import parse_settings
from control.settings_store import SettingsStore
from openapi.components import ErrorResponse, ProxySettings
from streaming.errors import error_body

bp = Blueprint("settings", url_prefix="/api")


def _store(request: Request) -> SettingsStore:
    return request.app.ctx.settings_store


@bp.get("/settings")
@openapi.definition(
    summary="Current header rules",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    response=[openapi.definitions.Response({"application/json": ProxySettings}, status=200)],
)
async def get_settings(request: Request) -> HTTPResponse:
    return json_response(_store(request).document())


@bp.put("/settings")
@openapi.definition(
    summary="Replace the header rules (in force on every replica within 5 s)",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    body={"application/json": ProxySettings},
    response=[
        openapi.definitions.Response({"application/json": ProxySettings}, status=200),
        openapi.definitions.Response({"application/json": ErrorResponse}, status=400),
    ],
)
async def put_settings(request: Request) -> HTTPResponse:
    try:
        request_rules, response_rules = parse_settings(request.body or b"")
    except ValueError as exc:  # a RuleError naming the rule and field, or invalid JSON
        return HTTPResponse(error_body(400, str(exc)), status=400, content_type="application/json")
    store = _store(request)
    await store.save(request_rules, response_rules)
    return json_response(store.document())
