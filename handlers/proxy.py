"""`/v1/*`: the Anthropic API, forwarded."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from openapi.components import ErrorResponse
from streaming.errors import error_body
from streaming.forward import Forwarder

bp = Blueprint("proxy", url_prefix="/v1")

PASSTHROUGH_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _forwarder(request: Request) -> Forwarder:
    return request.app.ctx.forwarder


@bp.post("/messages")
@openapi.definition(
    summary="Create a message (Anthropic Messages API)",
    description=(
        "Forwarded to the upstream unchanged (path, query such as `?beta=true`, headers "
        "except hop-by-hop ones, body bytes). Streaming responses are relayed event by event."
    ),
    tag="proxy",
    body={"application/json": openapi.Object(description="Anthropic Messages API request")},
    response=[
        openapi.definitions.Response(
            {"application/json": openapi.Object(), "text/event-stream": openapi.String()},
            status=200,
            description="The upstream's message, or its SSE stream",
        ),
        openapi.definitions.Response({"application/json": ErrorResponse}, status=400),
        openapi.definitions.Response({"application/json": ErrorResponse}, status=413),
        openapi.definitions.Response({"application/json": ErrorResponse}, status=502),
        openapi.definitions.Response({"application/json": ErrorResponse}, status=504),
    ],
)
async def create_message(request: Request) -> HTTPResponse | None:
    return await _forwarder(request).handle(request, messages_api=True)


@bp.post("/messages/count_tokens")
@openapi.definition(
    summary="Count tokens of a message request",
    tag="proxy",
    body={"application/json": openapi.Object()},
    response=[
        openapi.definitions.Response({"application/json": openapi.Object()}, status=200),
        openapi.definitions.Response({"application/json": ErrorResponse}, status=400),
    ],
)
async def count_tokens(request: Request) -> HTTPResponse | None:
    return await _forwarder(request).handle(request, messages_api=True)


@bp.get("/models")
@openapi.definition(
    summary="List models (forwarded to the upstream)",
    tag="proxy",
    response=[openapi.definitions.Response({"application/json": openapi.Object()}, status=200)],
)
async def list_models(request: Request) -> HTTPResponse | None:
    return await _forwarder(request).handle(request)


@bp.post("/chat/completions")
@openapi.definition(
    summary="OpenAI chat completions: not supported, use /v1/messages",
    tag="proxy",
    response=[openapi.definitions.Response({"application/json": ErrorResponse}, status=400)],
)
async def chat_completions(request: Request) -> HTTPResponse:
    message = (
        "This proxy speaks the Anthropic Messages API: POST /v1/messages. "
        "The OpenAI chat completions format is not supported."
    )
    return HTTPResponse(error_body(400, message), status=400, content_type="application/json")


@bp.route("/<path:path>", methods=PASSTHROUGH_METHODS)
@openapi.definition(
    summary="Any other Anthropic API path, forwarded unchanged",
    tag="proxy",
    response=[openapi.definitions.Response({"application/json": openapi.Object()}, status=200)],
)
async def passthrough(request: Request, path: str) -> HTTPResponse | None:
    return await _forwarder(request).handle(request)
