"""`/v1/*`: the Anthropic API, forwarded; and `HEAD /`, Claude Code's start-up probe."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from forwarding.forward import Forwarder
from forwarding.models import MODELS_BUDGET, SOURCE_HEADER, ModelsForwarder
from openapi.anthropic import AnthropicRequest, AnthropicResponse, ModelsResponse, TokenCount
from openapi.responses import API_KEY, BEARER, anthropic_error, ref
from streaming.errors import error_body

api = Blueprint("proxy", url_prefix="/v1")
# `/` itself: outside the /v1 prefix, so a blueprint of its own.
root = Blueprint("proxy_root")
bp = Blueprint.group(api, root)

PASSTHROUGH_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

# What the proxy itself answers on any forwarded route; any other status (401, 429,
# 529, ...) is the upstream's own, relayed unchanged in the same error shape.
_NO_BODY_ERRORS = (
    anthropic_error(400, "Invalid request (the proxy's checks, or the upstream's)"),
    anthropic_error(502),
    anthropic_error(504),
    anthropic_error("default", "An upstream error, relayed unchanged"),
)
# Routes that take a body: its read deadline and size limit apply too.
_PROXY_ERRORS = (
    *_NO_BODY_ERRORS,
    anthropic_error(408, "The client did not send its request within REQUEST_READ_TIMEOUT"),
    anthropic_error(413),
)


def _forwarder(request: Request) -> Forwarder:
    return request.app.ctx.forwarder


def _models_forwarder(request: Request) -> ModelsForwarder:
    """Built on first use beside this worker's forwarder (wiring builds that one in
    `before_server_start`), and again if the forwarder is ever replaced."""
    ctx = request.app.ctx
    models: ModelsForwarder | None = getattr(ctx, "models_forwarder", None)
    if models is None or models.parent is not ctx.forwarder:
        budget = request.app.ctx.settings.models_discovery_timeout
        models = ctx.models_forwarder = ModelsForwarder(ctx.forwarder, budget=budget)
    return models


@api.post("/messages")
@openapi.secured(API_KEY)
@openapi.secured(BEARER)
@openapi.definition(
    summary="Create a message (Anthropic Messages API)",
    operation="createMessage",
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


@api.post("/messages/count_tokens")
@openapi.secured(API_KEY)
@openapi.secured(BEARER)
@openapi.definition(
    summary="Count tokens of a message request",
    operation="countTokens",
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


@api.get("/models")
@openapi.secured(API_KEY)
@openapi.secured(BEARER)
@openapi.definition(
    summary="List models: the upstream's, plus the models the routing config serves",
    operation="listModels",
    description=(
        "Forwarded with the client's headers and query, answered within "
        f"{MODELS_BUDGET:g} s (Claude Code's model discovery gives up at 3 s). The first "
        "page (no `after_id`/`before_id`) also lists, first, the model names the routing "
        "rules send to a provider that the upstream did not list. Never a redirect. When "
        "the upstream is slow, unreachable or answers 3xx/5xx, the routed models alone "
        f"(200, header `{SOURCE_HEADER}: routing`); `{SOURCE_HEADER}: upstream+routing` "
        "marks a list the proxy extended. 4xx (a bad key) are relayed unchanged."
    ),
    tag="proxy",
    response=[
        openapi.definitions.Response(
            {"application/json": ref(ModelsResponse)},
            status=200,
            description="The upstream's list, with the routed models added on the first page",
        ),
        *_NO_BODY_ERRORS,
    ],
)
async def list_models(request: Request) -> HTTPResponse | None:
    return await _models_forwarder(request).handle(request)


@api.post("/chat/completions")
@openapi.secured(API_KEY)
@openapi.secured(BEARER)
@openapi.definition(
    summary="OpenAI chat completions: not supported, use /v1/messages",
    operation="chatCompletions",
    tag="proxy",
    response=[anthropic_error(400, "Always: use POST /v1/messages")],
)
async def chat_completions(request: Request) -> HTTPResponse:
    message = (
        "This proxy speaks the Anthropic Messages API: POST /v1/messages. "
        "The OpenAI chat completions format is not supported."
    )
    return HTTPResponse(error_body(400, message), status=400, content_type="application/json")


@api.route("/<path:path>", methods=PASSTHROUGH_METHODS)
@openapi.secured(API_KEY)
@openapi.secured(BEARER)
@openapi.definition(
    summary="Any other Anthropic API path, forwarded unchanged",
    description=(
        "Every method, HEAD and OPTIONS included, is forwarded as sent; each method is "
        "its own operation (`passthroughGet`, `passthroughHead`, ...)."
    ),
    operation="passthrough",
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


@root.route("/", methods=["HEAD"])
@openapi.definition(
    summary="Claude Code's start-up probe: 200, no body",
    description="No auth, not forwarded, not recorded. `GET /` (a browser) is the dashboard's.",
    operation="startupProbe",
    tag="health",
    response=[openapi.definitions.Response({}, status=200, description="Up (no body)")],
)
async def probe(request: Request) -> HTTPResponse:
    """Claude Code's start-up `HEAD /`: an explicit 200, so it never reaches whatever
    `GET /` does (a redirect would fail the probe). Not forwarded, not recorded.
    A content type is named: without one Sanic writes `content-type: None`."""
    return HTTPResponse(status=200, content_type="text/plain; charset=utf-8")
