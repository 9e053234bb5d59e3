"""Errors the proxy itself produces, in the shape each API's clients read.

On the model API (`/v1/*`) clients (the SDKs, Claude Code) parse Anthropic's
`{"type":"error","error":{"type","message"}}` and retry on the type; a proxy error
in any other shape shows up as an opaque failure instead of a retryable one. The
dashboard API (`/api/*`) keeps the seed's contract, `{"error", "details"}`
(`ErrorResponse`), which dashboard clients written against the seed's spec read.
"""

from __future__ import annotations

import json

# Anthropic's error type for each status the proxy itself returns.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class ProxyError(Exception):
    """An error the proxy answers itself, before or instead of the upstream."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason  # short machine-readable cause for logs and the record

    @property
    def error_type(self) -> str:
        return error_type_for(self.status)

    def body(self, request_id: str | None = None) -> bytes:
        return error_body(self.status, self.message, request_id)


def error_type_for(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, message: str, request_id: str | None = None) -> bytes:
    payload: dict[str, object] = {
        "type": "error",
        "error": {"type": error_type_for(status), "message": message},
    }
    if request_id:
        payload["request_id"] = request_id
    return json.dumps(payload, separators=(",", ":")).encode()


# The dashboard API's tree: `/api` and everything below it, as routed (raw path).
API_ROOT = "/api"


def is_dashboard_api(path: str) -> bool:
    """Whether an error on `path` answers in the seed's `ErrorResponse` shape.
    `/apix` is not the API; `/v1/../api/x` is routed as a `/v1` path, so it is not
    either."""
    return path == API_ROOT or path.startswith(API_ROOT + "/")


def api_error_body(error: str, details: str) -> bytes:
    """The seed's `ErrorResponse`: `error` says what went wrong in a short sentence,
    `details` the specifics (the parameter and its rule, the limit, the id)."""
    return json.dumps({"error": error, "details": details}, separators=(",", ":")).encode()
