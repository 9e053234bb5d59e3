"""OpenAI-format backend errors in Anthropic's error shape and status.

Clients of the proxy (the SDKs, Claude Code) decide whether to retry, and how long to
wait, from the status, the error `type` and `retry-after`; an error passed on in
OpenAI's shape (or turned into a 500) loses all three. The mapping, from the two
public references (platform.claude.com "Errors", OpenAI's error codes):

- 400, and 422 (the validation errors of FastAPI-based servers such as vLLM) → 400
  `invalid_request_error`;
- 401, 402, 403, 404, 409, 413 → the same status with `authentication_error`,
  `billing_error`, `permission_error`, `not_found_error`, `conflict_error`,
  `request_too_large`;
- 408, 504 → 504 `timeout_error`;
- 429 → 429 `rate_limit_error`, `retry-after` kept; but a 429 whose code is
  `insufficient_quota` or `credit_balance_exhausted` (out of money: a retry cannot
  succeed) → 402 `billing_error`, Anthropic's own billing error;
- 503, 529 → 529 `overloaded_error`: OpenAI's 503 means "overloaded, retry later",
  which is what 529 tells Anthropic clients (and Claude Code retries it);
- other 5xx → the same status with `api_error`; other 4xx → the same status with
  `invalid_request_error` (the Anthropic docs use that type for unlisted 4xx).

The message is the backend's own, verbatim; a body that is not JSON is quoted (first
300 characters) after the status. `retry-after`, `retry-after-ms`, `x-request-id` and
OpenAI's `x-ratelimit-*` headers are kept: the SDKs honour both retry headers, and the
others only inform.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from providers.events import error_payload, sse_event

Headers = Iterable[tuple[str, str]] | Mapping[str, str]

_BY_STATUS: dict[int, tuple[int, str]] = {
    400: (400, "invalid_request_error"),
    401: (401, "authentication_error"),
    402: (402, "billing_error"),
    403: (403, "permission_error"),
    404: (404, "not_found_error"),
    408: (504, "timeout_error"),
    409: (409, "conflict_error"),
    413: (413, "request_too_large"),
    422: (400, "invalid_request_error"),
    429: (429, "rate_limit_error"),
    503: (529, "overloaded_error"),
    504: (504, "timeout_error"),
    529: (529, "overloaded_error"),
}

# Error codes meaning "out of money", sent with a 429 by OpenAI.
_QUOTA_CODES = frozenset({"insufficient_quota", "credit_balance_exhausted"})

# An error inside a stream has no HTTP status of its own: its `code` or `type` says
# what it is. Values seen in OpenAI's references and in vLLM/Ollama/llama.cpp errors.
_BY_CODE: dict[str, str] = {
    "rate_limit_exceeded": "rate_limit_error",
    "rate_limit_error": "rate_limit_error",
    "requests": "rate_limit_error",
    "tokens": "rate_limit_error",
    "insufficient_quota": "billing_error",
    "credit_balance_exhausted": "billing_error",
    "server_overloaded": "overloaded_error",
    "overloaded": "overloaded_error",
    "overloaded_error": "overloaded_error",
    "engine_overloaded": "overloaded_error",
    "timeout": "timeout_error",
    "timeout_error": "timeout_error",
    "invalid_request_error": "invalid_request_error",
    "context_length_exceeded": "invalid_request_error",
}

_KEPT_HEADERS = frozenset({"retry-after", "retry-after-ms", "x-request-id"})
_SNIPPET = 300


class BackendFailure(Exception):
    """The backend answered something that cannot become an Anthropic message: an
    error object, or a body the translation cannot read. Carries what the client is
    told; `response()` for a status and body, `event()` once a stream has started."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def response(self) -> tuple[int, bytes, list[tuple[str, str]]]:
        return self.status, _body(self.error_type, self.message), [_JSON]

    def event(self) -> bytes:
        return sse_event(error_payload(self.error_type, self.message))


_JSON = ("content-type", "application/json")


def anthropic_error_from_openai(
    status: int, body: bytes, headers: Headers
) -> tuple[int, bytes, list[tuple[str, str]]]:
    """An OpenAI-format error response as the Anthropic status, body and headers the
    client gets."""
    error = _error_object(body)
    code = _text(error.get("code")) if error else None
    if status == 429 and code in _QUOTA_CODES:
        new_status, error_type = 402, "billing_error"
    elif status in _BY_STATUS:
        new_status, error_type = _BY_STATUS[status]
    elif status >= 500:
        new_status, error_type = status, "api_error"
    else:
        new_status, error_type = status, "invalid_request_error"
    message = _text(error.get("message")) if error else None
    if not message:
        message = _fallback_message(status, body)
    kept = [(name.lower(), value) for name, value in _pairs(headers) if _kept(name)]
    return new_status, _body(error_type, message), [_JSON, *kept]


def timeout_error(
    message: str = "The OpenAI-format backend did not answer in time",
) -> tuple[int, bytes, list[tuple[str, str]]]:
    """What the client gets when the backend timed out before answering."""
    return 504, _body("timeout_error", message), [_JSON]


def failure_from_error_object(error: Mapping[str, Any]) -> BackendFailure:
    """A failure for an error object found where a completion or chunk was expected
    (mid-stream, or in a 200 body): its type from `code`, else `type`, else api_error."""
    error_type = "api_error"
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            mapped = _BY_STATUS.get(value)
            if mapped is not None:
                error_type = mapped[1]
                break
        elif isinstance(value, str) and value.lower() in _BY_CODE:
            error_type = _BY_CODE[value.lower()]
            break
    message = _text(error.get("message")) or "The OpenAI-format backend reported an error"
    status = {
        "rate_limit_error": 429,
        "billing_error": 402,
        "overloaded_error": 529,
        "timeout_error": 504,
        "invalid_request_error": 400,
    }.get(error_type, 502)
    return BackendFailure(status, error_type, message)


def error_object_of(payload: Any) -> Mapping[str, Any] | None:
    """The error object of a parsed body or chunk, in the shapes backends use:
    `{"error": {...}}` (OpenAI, Ollama, llama.cpp), `{"error": "text"}`, and
    `{"object": "error", "message": ...}` (vLLM)."""
    if not isinstance(payload, Mapping):
        return None
    error = payload.get("error")
    if isinstance(error, Mapping):
        return error
    if isinstance(error, str):
        return {"message": error}
    if payload.get("object") == "error":
        return payload
    return None


def _error_object(body: bytes) -> Mapping[str, Any] | None:
    try:
        parsed = json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None
    error = error_object_of(parsed)
    if error is None and isinstance(parsed, Mapping) and isinstance(parsed.get("detail"), str):
        return {"message": parsed["detail"]}  # FastAPI's default error body
    return error


def _fallback_message(status: int, body: bytes) -> str:
    snippet = body[: _SNIPPET * 4].decode("utf-8", "replace").strip()[:_SNIPPET]
    if snippet:
        return f"The OpenAI-format backend answered HTTP {status}: {snippet}"
    return f"The OpenAI-format backend answered HTTP {status}"


def _body(error_type: str, message: str) -> bytes:
    return json.dumps(
        error_payload(error_type, message), ensure_ascii=False, separators=(",", ":")
    ).encode()


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _kept(name: str) -> bool:
    lower = name.lower()
    return lower in _KEPT_HEADERS or lower.startswith("x-ratelimit-")


def _pairs(headers: Headers) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)
