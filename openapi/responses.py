"""Response and security declarations shared by the handlers' OpenAPI definitions.

Errors have two documented shapes: the dashboard API (`/api/*`) answers the seed's
`ErrorResponse` (`error`), the model API (`/v1/*`) Anthropic's
(`anthropic_error`), which SDK clients read to decide on retries. Dashboard routes
all document 401 because the guard answers it on any of them when
DASHBOARD_PASSWORD is set.
"""

from __future__ import annotations

from typing import Any

from sanic_ext.extensions.openapi.builders import SpecificationBuilder
from sanic_ext.extensions.openapi.definitions import Component, Response

from openapi.components import AnthropicErrorResponse, ErrorResponse

API_KEY = "apiKey"
BEARER = "bearerAuth"
DASHBOARD = "dashboardBasicAuth"

_ERROR_DESCRIPTIONS = {
    400: "Invalid parameter or body; the message names the parameter",
    401: "Dashboard password required (only when DASHBOARD_PASSWORD is set)",
    403: (
        "Cross-site write refused: a state-changing call must come from the "
        "dashboard's own origin or one listed in CORS_ORIGINS"
    ),
    404: "Not found",
    413: "Request body over REQUEST_MAX_BYTES",
    502: "Upstream unreachable or its response broke off",
    # Not an overload of anything (Anthropic's 503/529 type says that): the log is
    # switched off, or its database is unreachable.
    503: (
        "Request log disabled (REQUEST_LOG=false) or its database unreachable; "
        "a retry helps only once the database is back"
    ),
    504: "Upstream did not answer in time",
}


def ok(schema: Any, description: str = "OK", media: str = "application/json") -> Response:
    return Response({media: ref(schema)}, status=200, description=description)


def error(status: int | str, description: str | None = None) -> Response:
    """An error of the dashboard API, in the seed's `ErrorResponse` shape."""
    return _error(ErrorResponse, status, description)


def anthropic_error(status: int | str, description: str | None = None) -> Response:
    """An error on `/v1/*`, in Anthropic's error shape."""
    return _error(AnthropicErrorResponse, status, description)


def _error(schema: type, status: int | str, description: str | None) -> Response:
    return Response(
        {"application/json": ref(schema)},
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
