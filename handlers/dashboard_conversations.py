"""The dashboard's conversation pages: the list, a thread, and a thread's next
turns as a fragment. Thin: the pages live in dashboard/. Behind
DASHBOARD_PASSWORD like every dashboard page; not in the OpenAPI document
(HTML, not an API)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from dashboard.conversations_page import conversations_page
from dashboard.thread_page import thread_fragment, thread_page

bp = Blueprint("dashboard_conversations", url_prefix="/dashboard/conversations")


@bp.get("", strict_slashes=False)
@openapi.exclude()
async def conversation_list(request: Request) -> HTTPResponse:
    return await conversations_page(request)


@bp.get("/<conversation_id:str>")
@openapi.exclude()
async def conversation_thread(request: Request, conversation_id: str) -> HTTPResponse:
    return await thread_page(request, conversation_id)


@bp.get("/<conversation_id:str>/turns")
@openapi.exclude()
async def conversation_turns(request: Request, conversation_id: str) -> HTTPResponse:
    return await thread_fragment(request, conversation_id)
