"""`GET/PUT /api/settings`: the header rules, shared by every replica."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response
from sanic_ext import openapi

from control.header_rules import parse_settings, settings_document
from control.plan import HeaderRuleSet
from control.settings_store import SettingsStore
from handlers.params import api_error
from openapi.components import ProxySettings
from openapi.responses import error, guarded, ok, ref

bp = Blueprint("settings", url_prefix="/api")


def _store(request: Request) -> SettingsStore | None:
    # Absent with REQUEST_LOG=false: the rules then live in this process's RuleBook only.
    return getattr(request.app.ctx, "settings_store", None)


def _document(request: Request) -> dict[str, Any]:
    store = _store(request)
    if store is not None:
        return store.document()
    current = request.app.ctx.rulebook.current
    return settings_document(list(current.request), list(current.response))


@bp.get("/settings")
@openapi.definition(
    summary="Current header rules",
    operation="getSettings",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    response=guarded(ok(ProxySettings)),
)
async def get_settings(request: Request) -> HTTPResponse:
    return json_response(_document(request))


@bp.put("/settings")
@openapi.definition(
    summary="Replace the header rules (in force on every replica within 5 s)",
    operation="saveSettings",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    body=openapi.definitions.RequestBody({"application/json": ref(ProxySettings)}, required=True),
    response=guarded(ok(ProxySettings), error(400), error(403)),
)
async def put_settings(request: Request) -> HTTPResponse:
    try:
        request_rules, response_rules = parse_settings(request.body or b"")
    except ValueError as exc:  # a RuleError naming the rule and field, or invalid JSON
        return api_error(400, "Invalid settings", str(exc))
    store = _store(request)
    if store is None:
        request.app.ctx.rulebook.current = HeaderRuleSet(
            tuple(request_rules), tuple(response_rules)
        )
    else:
        await store.save(request_rules, response_rules)
    return json_response(_document(request))
