"""Query-parameter parsing shared by the dashboard handlers: typed, bounded, and a
400 naming the parameter when it is wrong; and the dashboard API's error answers,
in the seed's `ErrorResponse` shape (`{"error", "details"}`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sanic import Request
from sanic.response import HTTPResponse

from streaming.errors import api_error_body

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


LOG_UNAVAILABLE = (
    "Request log unavailable",
    "The request log is disabled (REQUEST_LOG=false) or its database is not connected",
)


def api_error(status: int, error: str, details: str) -> HTTPResponse:
    """An `/api/*` error: `error` a short sentence, `details` the specifics."""
    return HTTPResponse(
        api_error_body(error, details), status=status, content_type="application/json"
    )


def log_unavailable() -> HTTPResponse:
    """The 503 of every route that reads the request log when there is none."""
    return api_error(503, *LOG_UNAVAILABLE)


class BadParameter(ValueError):
    """A parameter the route cannot take. The message starts with the parameter's
    name (`page: must be between 1 and 1000000, got 0`), like stats' TimeError."""

    @property
    def parameter(self) -> str:
        name, colon, _ = str(self).partition(":")
        return name if colon else ""

    def response(self) -> HTTPResponse:
        error = f"Invalid parameter '{self.parameter}'" if self.parameter else "Invalid parameter"
        return api_error(400, error, str(self))


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    # ASCII digits only: int() would also take "1_000", " 5 " and other scripts' digits.
    if not _INTEGER.fullmatch(raw):
        raise BadParameter(f"{name}: must be an integer, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadParameter(f"{name}: must be between {low} and {high}, got {value}")
    return value


def datetime_param(request: Request, name: str, *, required: bool = False) -> datetime | None:
    """ISO 8601 (a `Z` suffix or offset; naive means UTC) or epoch milliseconds."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required:
            raise BadParameter(f"{name}: required (ISO 8601 or epoch milliseconds)")
        return None
    try:
        if raw.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(raw) / 1000, UTC)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except (ValueError, OverflowError, OSError):
        raise BadParameter(f"{name}: not an ISO 8601 date-time or epoch ms: {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def text_param(
    request: Request, name: str, default: str | None = None, max_length: int = 200
) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > max_length or any(ord(c) < 32 for c in raw):
        raise BadParameter(f"{name}: must be at most {max_length} printable characters")
    return raw
