"""Query-parameter parsing shared by the dashboard handlers: typed, bounded, and a
400 in Anthropic's error shape that names the parameter when it is wrong."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sanic import Request
from sanic.response import HTTPResponse

from streaming.errors import error_body

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


class BadParameter(ValueError):
    def response(self) -> HTTPResponse:
        return HTTPResponse(error_body(400, str(self)), status=400, content_type="application/json")


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
