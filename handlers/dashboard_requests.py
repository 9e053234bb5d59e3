"""The dashboard's request pages: the list, its live tail, a request's detail and
its downloads. Thin: the pages live in dashboard/. Behind DASHBOARD_PASSWORD like
every dashboard page; not in the OpenAPI document (HTML and a browser stream)."""

from __future__ import annotations

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse
from sanic_ext import openapi

from dashboard.detail import detail_page, download_body, download_document
from dashboard.requests_page import requests_page
from dashboard.tail_stream import stop_tail, tail_stream

bp = Blueprint("dashboard_requests", url_prefix="/dashboard/requests")


@bp.before_server_stop
async def end_tail(app: Sanic) -> None:
    # After the drain (which ended the streams already), before Sanic waits on
    # open connections: nothing may hold one open for the tail.
    await stop_tail(app)


@bp.get("", strict_slashes=False)
@openapi.exclude()
async def request_list(request: Request) -> HTTPResponse:
    return await requests_page(request)


@bp.get("/tail")
@openapi.exclude()
async def live_tail(request: Request) -> HTTPResponse | None:
    return await tail_stream(request)


@bp.get("/<request_id:str>")
@openapi.exclude()
async def request_detail(request: Request, request_id: str) -> HTTPResponse:
    return await detail_page(request, request_id)


@bp.get("/<request_id:str>/body/<part:str>")
@openapi.exclude()
async def request_body(request: Request, request_id: str, part: str) -> HTTPResponse | None:
    return await download_body(request, request_id, part)


@bp.get("/<request_id:str>/download")
@openapi.exclude()
async def request_download(request: Request, request_id: str) -> HTTPResponse | None:
    return await download_document(request, request_id)
