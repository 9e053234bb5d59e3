"""`/openapi.json` and `/openapi.yaml`: the same generated document, two encodings."""

from __future__ import annotations

import json
from typing import Any

import yaml
from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse
from sanic_ext import openapi
from sanic_ext.extensions.openapi.builders import SpecificationBuilder

from openapi.finish import finish_components
from openapi.responses import register_security_schemes
from streaming.errors import error_body

bp = Blueprint("spec")
register_security_schemes()


@bp.before_server_start
async def complete_components(app: Sanic) -> None:
    finish_components()


def hide_docs_ui(app: Sanic) -> None:
    """OPENAPI_DOCS=false: everything under the docs prefix answers 404, the spec at
    /openapi.json|yaml stays. The UI routes stay registered because sanic-ext's
    start-up banner builds the URL of its index route and fails without it."""
    prefix = app.config.OAS_URL_PREFIX.rstrip("/")

    @app.on_request(priority=200)
    async def no_docs_ui(request: Request) -> HTTPResponse | None:
        if request.path == prefix or request.path.startswith(prefix + "/"):
            return HTTPResponse(
                error_body(404, "API docs UI is disabled (OPENAPI_DOCS=false)"),
                status=404,
                content_type="application/json",
            )
        return None


def build_spec(request: Request) -> dict[str, Any]:
    # Built per request from the live router, so it always lists every route.
    return SpecificationBuilder().build(request.app).serialize()


@bp.get("/openapi.json")
@openapi.definition(
    summary="OpenAPI specification (JSON)",
    tag="health",
    response=[
        openapi.definitions.Response(
            {"application/json": openapi.Object()}, status=200, description="OpenAPI 3 document"
        )
    ],
)
async def openapi_json(request: Request) -> HTTPResponse:
    body = json.dumps(build_spec(request), default=str)
    return HTTPResponse(body, content_type="application/json")


@bp.get("/openapi.yaml")
@openapi.definition(
    summary="OpenAPI specification (YAML), the same document as /openapi.json",
    tag="health",
    response=[
        openapi.definitions.Response(
            {"application/yaml": openapi.Object()}, status=200, description="OpenAPI 3 document"
        )
    ],
)
async def openapi_yaml(request: Request) -> HTTPResponse:
    body = yaml.safe_dump(json.loads(json.dumps(build_spec(request), default=str)), sort_keys=False)
    return HTTPResponse(body, content_type="application/yaml")
