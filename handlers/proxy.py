"""`/v1/*`: the Anthropic API, forwarded."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from forwarding.forward import Forwarder
from openapi.anthropic import AnthropicRequest, AnthropicResponse, ModelsResponse, TokenCount
from openapi.responses import API_KEY, BEARER, error, ref
from streaming.errors import error_body

bp = Blueprint("proxy", url_prefix="/v1")

PASSTHROUGH_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

# What the proxy itself answers on any forwarded route; any other status (401, 429,
# 529, ...) is the upstream's own, relayed unchanged in the same error shape.
_NO_BODY_ERRORS = (
    error(400, "Invalid request (the proxy's checks, or the upstream's)"),
    error(502),
    error(504),
    error("default", "An upstream error, relayed unchanged"),
)
# Routes that take a body: its read deadline and size limit apply too.
_PROXY_ERRORS = (
    *_NO_BODY_ERRORS,
    error(408, "The client did not send its request within REQUEST_READ_TIMEOUT"),
    error(413),
)


def _forwarder(request: Request) -> Forwarder:
    return request.app.ctx.forwarder


@bp.post("/messages")
@openapi.secured(API_KEY)
@openapi.secured(BEARER)
@openapi.definition(
    summary="Create a message (Anthropic Messages API)",
    description=(
        "Forwarded to the upstream unchanged (path, query such as `?beta=true`, headers "
        "except hop-by-hop ones, body bytes). Streaming responses are relayed event by event."
    ),
    tag="proxy",
    body=openapi.definitions.RequestBody(
        {"application/json": ref(AnthropicRequest)}, required=True
    ),
    response=[
        openapi.definitions.Response(
            {"application/json": ref(AnthropicResponse), "text/event-stream": openapi.String()},
            status=200,
            description="The upstream's message, or its SSE stream",
        ),
        *_PROXY_ERRORS,
    ],
)
async def create_message(request: Request) -> HTTPResponse | None:
    return await _forwarder(request).handle(request, messages_api=True)


@bp.post("/messages/count_tokens")
@openapi.secured(API_KEY)
@openapi.secured(BEARER)
@openapi.definition(
    summary="Count tokens of a message request",
    tag="proxy",
    body=openapi.definitions.RequestBody(
        {"application/json": ref(AnthropicRequest)}, required=True
    ),
    response=[
        openapi.definitions.Response(
            {"application/json": ref(TokenCount)}, status=200, description="Token count"
        ),
        *_PROXY_ERRORS,
    ],
)
async def count_tokens(request: Request) -> HTTPResponse | None:
    return await _forwarder(request).handle(request, messages_api=True)


@bp.get("/models")
@openapi.secured(API_KEY)
@openapi.secured(BEARER)
@openapi.definition(
    summary="List models (forwarded to the upstream)",
    tag="proxy",
    response=[
        openapi.definitions.Response(
            {"application/json": ref(ModelsResponse)}, status=200, description="The upstream's list"
        ),
        *_NO_BODY_ERRORS,
    ],
)
async def list_models(request: Request) -> HTTPResponse | None:
    return await _forwarder(request).handle(request)


@bp.post("/chat/completions")
@openapi.secured(API_KEY)
@openapi.secured(BEARER)
@openapi.definition(
    summary="OpenAI chat completions: not supported, use /v1/messages",
    tag="proxy",
    response=[error(400, "Always: use POST /v1/messages")],
)
async def chat_completions(request: Request) -> HTTPResponse:
    message = (
        "This proxy speaks the Anthropic Messages API: POST /v1/messages. "
        "The OpenAI chat completions format is not supported."
    )
    return HTTPResponse(error_body(400, message), status=400, content_type="application/json")


@bp.route("/<path:path>", methods=PASSTHROUGH_METHODS)
@openapi.secured(API_KEY)
@openapi.secured(BEARER)
@openapi.definition(
    summary="Any other Anthropic API path, forwarded unchanged",
    tag="proxy",
    response=[
        openapi.definitions.Response(
            {"application/json": openapi.Object()}, status=200, description="The upstream's answer"
        ),
        *_PROXY_ERRORS,
    ],
)
async def passthrough(request: Request, path: str) -> HTTPResponse | None:
    return await _forwarder(request).handle(request)
