"""Backend error responses in Anthropic's shape and status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from providers.openai_errors import (
    BackendFailure,
    anthropic_error_from_openai,
    failure_from_error_object,
    timeout_error,
)
from tests.providers.openai_chunks import error_body


def translate(
    status: int, body: Any, headers: list[tuple[str, str]] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    new_status, out, out_headers = anthropic_error_from_openai(status, raw, headers or [])
    return new_status, json.loads(out), dict(out_headers)


@pytest.mark.parametrize(
    ("status", "expected_status", "expected_type"),
    [
        (400, 400, "invalid_request_error"),
        (401, 401, "authentication_error"),
        (402, 402, "billing_error"),
        (403, 403, "permission_error"),
        (404, 404, "not_found_error"),
        (408, 504, "timeout_error"),
        (409, 409, "conflict_error"),
        (413, 413, "request_too_large"),
        (418, 418, "invalid_request_error"),
        (422, 400, "invalid_request_error"),
        (429, 429, "rate_limit_error"),
        (500, 500, "api_error"),
        (502, 502, "api_error"),
        (503, 529, "overloaded_error"),
        (504, 504, "timeout_error"),
        (529, 529, "overloaded_error"),
        (599, 599, "api_error"),
    ],
)
def test_statuses(status: int, expected_status: int, expected_type: str) -> None:
    new_status, body, headers = translate(status, error_body(status))
    assert new_status == expected_status
    assert body == {
        "type": "error",
        "error": {"type": expected_type, "message": error_body(status)["error"]["message"]},
    }
    assert headers["content-type"] == "application/json"


def test_rate_limit_keeps_retry_headers_and_drops_the_rest() -> None:
    headers = [
        ("Retry-After", "7"),
        ("retry-after-ms", "7000"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-request-id", "req_1"),
        ("set-cookie", "a=b"),
        ("content-length", "99"),
        ("openai-organization", "org-x"),
    ]
    status, _, out = translate(429, error_body(429), headers)
    assert status == 429
    assert out == {
        "content-type": "application/json",
        "retry-after": "7",
        "retry-after-ms": "7000",
        "x-ratelimit-remaining-requests": "0",
        "x-request-id": "req_1",
    }


def test_headers_may_be_a_mapping() -> None:
    _, _, out = translate(429, error_body(429), {"retry-after": "3"})  # type: ignore[arg-type]
    assert out["retry-after"] == "3"


def test_out_of_quota_is_a_billing_error_not_a_rate_limit() -> None:
    status, body, _ = translate(429, error_body(429, quota=True))
    assert (status, body["error"]["type"]) == (402, "billing_error")
    assert "quota" in body["error"]["message"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<html>502 Bad Gateway</html>", "HTTP 502: <html>502 Bad Gateway</html>"),
        (b"", "HTTP 502"),
        (b'{"detail": "Not Found"}', "Not Found"),  # FastAPI
        (b'{"object": "error", "message": "vLLM says no", "code": 400}', "vLLM says no"),
        (b'{"error": "plain text error"}', "plain text error"),
        (b'{"error": {"code": 502}}', "HTTP 502"),
    ],
)
def test_messages_of_other_shapes(raw: bytes, message: str) -> None:
    _, body, _ = translate(502, raw)
    assert message in body["error"]["message"]


def test_a_long_non_json_body_is_quoted_briefly() -> None:
    _, body, _ = translate(500, b"x" * 10_000)
    assert len(body["error"]["message"]) < 400


def test_timeout() -> None:
    status, body, headers = timeout_error()
    assert status == 504
    assert json.loads(body)["error"]["type"] == "timeout_error"
    assert ("content-type", "application/json") in headers


@pytest.mark.parametrize(
    ("error", "status", "error_type"),
    [
        ({"message": "m", "type": "server_error"}, 502, "api_error"),
        (
            {"message": "m", "type": "requests", "code": "rate_limit_exceeded"},
            429,
            "rate_limit_error",
        ),
        ({"message": "m", "code": "insufficient_quota"}, 402, "billing_error"),
        ({"message": "m", "code": 503}, 529, "overloaded_error"),
        ({"message": "m", "type": "overloaded_error"}, 529, "overloaded_error"),
        ({"message": "m", "code": "context_length_exceeded"}, 400, "invalid_request_error"),
        ({"message": "m", "type": "timeout"}, 504, "timeout_error"),
        ({}, 502, "api_error"),
    ],
)
def test_error_objects_inside_bodies_and_streams(
    error: dict[str, Any], status: int, error_type: str
) -> None:
    failure = failure_from_error_object(error)
    assert (failure.status, failure.error_type) == (status, error_type)


def test_a_failure_as_response_and_as_event() -> None:
    failure = BackendFailure(529, "overloaded_error", "Overloaded — retry")
    status, body, headers = failure.response()
    assert status == 529 and ("content-type", "application/json") in headers
    payload = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded — retry"},
    }
    assert json.loads(body) == payload
    event = failure.event()
    assert event.startswith(b"event: error\ndata: ") and event.endswith(b"\n\n")
    assert json.loads(event.split(b"data: ", 1)[1]) == payload
