"""`/api/requests*`: the request log, for the dashboard (the seed's contract). Items
are shaped by storage/request_log_shape.py: the list and the detail answer the
seed's `RequestLog`, the summary its `RequestSummary`."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from handlers.params import (
    BadParameter,
    api_error,
    datetime_param,
    int_param,
    log_unavailable,
    text_param,
)
from openapi import params
from openapi import requests as schemas
from openapi.responses import error, guarded, ok
from storage import request_log_shape as shape
from storage.queries import SHORT_ID
from storage.requests_repo import RequestsRepo

bp = Blueprint("requests", url_prefix="/api/requests")

_MODEL = openapi.definitions.Parameter(
    "model", params.text(default="all"), description="Substring of the model, or all"
)
_BAD = error(400)
_OFF = error(503)


def _repo(request: Request) -> RequestsRepo | None:
    # Absent with REQUEST_LOG=false (or no database under a test client).
    return getattr(request.app.ctx, "requests_repo", None)


@bp.get("")
@openapi.definition(
    summary="List logged requests, newest first",
    operation="getRequests",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[
        openapi.definitions.Parameter("page", params.integer(1, 1, 1_000_000)),
        openapi.definitions.Parameter("limit", params.integer(10, 1, 1000)),
        _MODEL,
    ],
    response=guarded(ok(schemas.RequestList), _BAD, _OFF),
)
async def list_requests(request: Request) -> HTTPResponse:
    try:
        page = int_param(request, "page", 1, 1, 1_000_000)
        limit = int_param(request, "limit", 10, 1, 1000)
        model = text_param(request, "model", "all")
    except BadParameter as exc:
        return exc.response()
    if (repo := _repo(request)) is None:
        return log_unavailable()
    items, total = await repo.page(page, limit, model)
    listed = [shape.list_item(item) for item in items]
    return json({"requests": listed, "total": total, "page": page, "limit": limit})


@bp.delete("")
@openapi.definition(
    summary="Clear all logged requests",
    operation="deleteRequests",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    response=guarded(ok(schemas.RequestsCleared), error(403), _OFF),
)
async def delete_requests(request: Request) -> HTTPResponse:
    if (repo := _repo(request)) is None:
        return log_unavailable()
    deleted = await repo.delete_all()
    return json({"message": "Requests cleared", "deleted": deleted})


@bp.get("/summary")
@openapi.definition(
    summary="Request summaries (no bodies) for fast list rendering",
    operation="getRequestsSummary",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[
        _MODEL,
        openapi.definitions.Parameter("start", params.DATE_TIME),
        openapi.definitions.Parameter("end", params.DATE_TIME),
        openapi.definitions.Parameter("offset", params.integer(0, 0, 10_000_000)),
        openapi.definitions.Parameter(
            "limit",
            params.integer(0, 0, 10000),
            description="0 = unlimited",
        ),
    ],
    response=guarded(ok(schemas.RequestSummaryList), _BAD, _OFF),
)
async def summary(request: Request) -> HTTPResponse:
    try:
        model = text_param(request, "model", "all")
        start = datetime_param(request, "start")
        end = datetime_param(request, "end")
        offset = int_param(request, "offset", 0, 0, 10_000_000)
        limit = int_param(request, "limit", 0, 0, 10_000)
        if start and end and start > end:
            raise BadParameter("start: must not be after end")
    except BadParameter as exc:
        return exc.response()
    if (repo := _repo(request)) is None:
        return log_unavailable()
    items, total = await repo.summaries(model, start, end, offset, limit)
    listed = [shape.summary_item(item) for item in items]
    return json({"requests": listed, "total": total, "offset": offset, "limit": limit})


@bp.get("/latest-date")
@openapi.definition(
    summary="Date of the most recent logged request",
    operation="getLatestRequestDate",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    response=guarded(ok(schemas.LatestDate), _OFF),
)
async def latest_date(request: Request) -> HTTPResponse:
    if (repo := _repo(request)) is None:
        return log_unavailable()
    latest = await repo.latest_date()
    return json({"latestDate": latest.isoformat().replace("+00:00", "Z") if latest else None})


@bp.get("/<request_id:str>")
@openapi.definition(
    summary="One logged request by full or short (prefix) id",
    operation="getRequestByID",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[
        openapi.definitions.Parameter(
            "request_id",
            openapi.String(pattern=SHORT_ID.pattern),
            location="path",
            required=True,
            description="Full request id (32 hex digits) or a unique prefix of 4 or more",
        )
    ],
    response=guarded(ok(schemas.RequestDetail), _BAD, error(404), _OFF),
)
async def get_request(request: Request, request_id: str) -> HTTPResponse:
    if not SHORT_ID.match(request_id):
        return BadParameter("id: must be 4 to 32 lowercase hex digits").response()
    if (repo := _repo(request)) is None:
        return log_unavailable()
    found = await repo.get(request_id)
    if found is None:
        return api_error(
            404,
            "Request not found",
            f"No logged request has the id {request_id} (a short id must match exactly one)",
        )
    return json({"request": shape.detail(found), "fullId": found["requestId"]})
