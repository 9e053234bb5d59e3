"""`/openapi.json` and `/openapi.yaml`: the same generated document, two encodings;
its UI at `/docs` (handlers.docs_ui)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse
from sanic_ext import openapi
from sanic_ext.extensions.openapi.builders import SpecificationBuilder

from handlers.docs_ui import install_docs_ui
from openapi.finish import finish_components
from openapi.operations import OPERATIONS_PRIORITY, finish_operations
from openapi.responses import register_security_schemes
from streaming.errors import error_body


class _SpecBlueprint(Blueprint):
    """The spec brings its UI along: registering this blueprint also installs
    `/docs` (handlers.docs_ui) on the app, in place of sanic-ext's CDN-loaded UI.
    It has to happen while the app is built: sanic-ext reads its UI settings once,
    at start-up, before any listener runs."""

    def register(self, app: Sanic, options: dict[str, Any]) -> None:
        super().register(app, options)
        install_docs_ui(app)


bp = _SpecBlueprint("spec")
register_security_schemes()


@bp.before_server_start
async def complete_components(app: Sanic) -> None:
    finish_components()


@bp.before_server_start(priority=OPERATIONS_PRIORITY)
async def complete_operations(app: Sanic) -> None:
    finish_operations(app)


def hide_docs_ui(app: Sanic) -> None:
    """OPENAPI_DOCS=false: everything under the docs prefix answers 404, the spec at
    /openapi.json|yaml stays. The UI routes stay registered because sanic-ext's
    start-up banner builds the URL of the `openapi.index` route and fails without
    it."""
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
    operation="getOpenAPISpec",
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
    operation="getOpenAPISpecYAML",
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
