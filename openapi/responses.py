"""Response and security declarations shared by the handlers' OpenAPI definitions.

Every error the proxy writes has Anthropic's shape, so every 4xx/5xx points at the
one `ErrorResponse` component; dashboard routes all document 401 because the
guard answers it on any of them when DASHBOARD_PASSWORD is set.
"""

from __future__ import annotations

from typing import Any

from sanic_ext.extensions.openapi.builders import SpecificationBuilder
from sanic_ext.extensions.openapi.definitions import Component, Response

from openapi.components import ErrorResponse

API_KEY = "apiKey"
BEARER = "bearerAuth"
DASHBOARD = "dashboardBasicAuth"

_ERROR_DESCRIPTIONS = {
    400: "Invalid parameter or body; the message names the parameter",
    401: "Dashboard password required (only when DASHBOARD_PASSWORD is set)",
    404: "Not found",
    413: "Request body over REQUEST_MAX_BYTES",
    502: "Upstream unreachable or its response broke off",
    503: "The request log is disabled (REQUEST_LOG=false) or unavailable",
    504: "Upstream did not answer in time",
}


def ok(schema: Any, description: str = "OK", media: str = "application/json") -> Response:
    return Response({media: ref(schema)}, status=200, description=description)


def error(status: int | str, description: str | None = None) -> Response:
    return Response(
        {"application/json": ref(ErrorResponse)},
        status=status,
        description=description or _ERROR_DESCRIPTIONS[int(status)],
    )


def ref(schema: Any) -> Any:
    """A `$ref` to a named component for a component class, anything else as given."""
    return Component(schema) if isinstance(schema, type) else schema


def guarded(*responses: Response) -> list[Response]:
    """A dashboard operation's responses, plus the 401 every dashboard route can answer."""
    return [*responses, error(401)]


def register_security_schemes() -> None:
    spec = SpecificationBuilder()
    spec.add_security_scheme(
        API_KEY,
        "apiKey",
        location="header",
        name="x-api-key",
        description="Anthropic API key, forwarded to the upstream (never stored in clear)",
    )
    spec.add_security_scheme(
        BEARER,
        "http",
        scheme="bearer",
        description="Bearer token (OAuth), forwarded to the upstream (never stored in clear)",
    )
    spec.add_security_scheme(
        DASHBOARD,
        "http",
        scheme="basic",
        description="DASHBOARD_PASSWORD as the password, any username",
    )
