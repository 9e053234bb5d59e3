"""`/api/requests*`: the request log, for the dashboard (the seed's contract)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from handlers.params import BadParameter, datetime_param, int_param, text_param
from openapi.components import ErrorResponse
from storage.queries import SHORT_ID
from storage.requests_repo import RequestsRepo
from streaming.errors import error_body

bp = Blueprint("requests", url_prefix="/api/requests")

_MODEL = openapi.definitions.Parameter(
    "model", openapi.String(default="all"), description="Substring of the model, or all"
)
_BAD = openapi.definitions.Response({"application/json": ErrorResponse}, status=400)


def _repo(request: Request) -> RequestsRepo:
    return request.app.ctx.requests_repo


@bp.get("")
@openapi.definition(
    summary="List logged requests, newest first",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[
        openapi.definitions.Parameter("page", openapi.Integer(default=1, minimum=1)),
        openapi.definitions.Parameter(
            "limit", openapi.Integer(default=10, minimum=1, maximum=1000)
        ),
        _MODEL,
    ],
    response=[
        openapi.definitions.Response({"application/json": openapi.Object()}, status=200),
        _BAD,
    ],
)
async def list_requests(request: Request) -> HTTPResponse:
    try:
        page = int_param(request, "page", 1, 1, 1_000_000)
        limit = int_param(request, "limit", 10, 1, 1000)
        model = text_param(request, "model", "all")
    except BadParameter as exc:
        return exc.response()
    items, total = await _repo(request).page(page, limit, model)
    return json({"requests": items, "total": total, "page": page, "limit": limit})


@bp.delete("")
@openapi.definition(
    summary="Clear all logged requests",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    response=[openapi.definitions.Response({"application/json": openapi.Object()}, status=200)],
)
async def delete_requests(request: Request) -> HTTPResponse:
    deleted = await _repo(request).delete_all()
    return json({"message": "Requests cleared", "deleted": deleted})


@bp.get("/summary")
@openapi.definition(
    summary="Request summaries (no bodies) for fast list rendering",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[
        _MODEL,
        openapi.definitions.Parameter("start", openapi.DateTime()),
        openapi.definitions.Parameter("end", openapi.DateTime()),
        openapi.definitions.Parameter("offset", openapi.Integer(default=0, minimum=0)),
        openapi.definitions.Parameter(
            "limit",
            openapi.Integer(default=0, minimum=0, maximum=10000),
            description="0 = unlimited",
        ),
    ],
    response=[
        openapi.definitions.Response({"application/json": openapi.Object()}, status=200),
        _BAD,
    ],
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
    items, total = await _repo(request).summaries(model, start, end, offset, limit)
    return json({"requests": items, "total": total, "offset": offset, "limit": limit})


@bp.get("/latest-date")
@openapi.definition(
    summary="Date of the most recent logged request",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    response=[openapi.definitions.Response({"application/json": openapi.Object()}, status=200)],
)
async def latest_date(request: Request) -> HTTPResponse:
    latest = await _repo(request).latest_date()
    return json({"latestDate": latest.isoformat().replace("+00:00", "Z") if latest else None})


@bp.get("/<request_id:str>")
@openapi.definition(
    summary="One logged request by full or short (prefix) id",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    response=[
        openapi.definitions.Response({"application/json": openapi.Object()}, status=200),
        _BAD,
        openapi.definitions.Response({"application/json": ErrorResponse}, status=404),
    ],
)
async def get_request(request: Request, request_id: str) -> HTTPResponse:
    if not SHORT_ID.match(request_id):
        return HTTPResponse(
            error_body(400, "id: must be 4 to 32 lowercase hex digits"),
            status=400,
            content_type="application/json",
        )
    found = await _repo(request).get(request_id)
    if found is None:
        return HTTPResponse(
            error_body(404, f"No request with id {request_id}"),
            status=404,
            content_type="application/json",
        )
    return json({"request": found, "fullId": found["requestId"]})
