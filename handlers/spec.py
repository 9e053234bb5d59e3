"""`/openapi.json` and `/openapi.yaml`: the same generated document, two encodings."""

from __future__ import annotations

import json
from typing import Any

import yaml
from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi
from sanic_ext.extensions.openapi.builders import SpecificationBuilder

bp = Blueprint("spec")


def build_spec(request: Request) -> dict[str, Any]:
    # Built per request from the live router, so it always lists every route.
    return SpecificationBuilder().build(request.app).serialize()


@bp.get("/openapi.json")
@openapi.definition(summary="OpenAPI specification (JSON)", tag="health")
async def openapi_json(request: Request) -> HTTPResponse:
    body = json.dumps(build_spec(request), default=str)
    return HTTPResponse(body, content_type="application/json")


@bp.get("/openapi.yaml")
@openapi.definition(summary="OpenAPI specification (YAML)", tag="health")
async def openapi_yaml(request: Request) -> HTTPResponse:
    body = yaml.safe_dump(json.loads(json.dumps(build_spec(request), default=str)), sort_keys=False)
    return HTTPResponse(body, content_type="application/yaml")
