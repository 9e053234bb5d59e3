"""The app's error handler picks the shape by path: the seed's `{"error", "details"}`
on the dashboard API (`/api`, `/api/*`), Anthropic's everywhere else."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError
from sanic.exceptions import NotFound, PayloadTooLarge, RequestCancelled, RequestTimeout

from runtime.errors import AnthropicErrorHandler
from runtime.settings import Settings

HANDLER = AnthropicErrorHandler(Settings.from_env({"REQUEST_MAX_BYTES": "1000"}))


def _answer(path: str, exception: BaseException) -> tuple[int, Any]:
    request = SimpleNamespace(method="PUT", path=path)
    response = HANDLER.default(request, exception)  # type: ignore[arg-type]
    assert response.content_type == "application/json"
    return response.status, json.loads(response.body)


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/settings", "/api/requests/abcd"])
def test_dashboard_api_paths_get_the_seeds_shape(path: str) -> None:
    status, body = _answer(path, PayloadTooLarge("too big"))
    assert status == 413
    assert body == {
        "error": "Request body too large",
        "details": "Request body exceeds 1000 bytes (REQUEST_MAX_BYTES)",
    }


@pytest.mark.parametrize("path", ["/v1/messages", "/apix", "/v1/../api/settings", "/", ""])
def test_every_other_path_keeps_anthropics_shape(path: str) -> None:
    status, body = _answer(path, PayloadTooLarge("too big"))
    assert status == 413
    assert body == {
        "type": "error",
        "error": {
            "type": "request_too_large",
            "message": "Request body exceeds 1000 bytes (REQUEST_MAX_BYTES)",
        },
    }


def test_a_read_timeout_on_api_is_a_408_in_the_seeds_shape() -> None:
    # Sanic's head timeout says nothing useful; the body deadline says which limit.
    status, body = _answer("/api/settings", RequestTimeout("Request Timeout"))
    assert (status, body) == (
        408,
        {
            "error": "Request timed out",
            "details": "The request was not received within REQUEST_READ_TIMEOUT",
        },
    )
    said = "Request body not received within 2s (REQUEST_READ_TIMEOUT)"
    _, body = _answer("/api/settings", RequestTimeout(said))
    assert body == {"error": "Request timed out", "details": said}
    status, body = _answer("/v1/messages", RequestTimeout("Request Timeout"))
    assert (status, body["error"]["type"]) == (408, "timeout_error")


def test_a_crash_on_api_hides_its_text_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="proxy"):
        status, body = _answer("/api/requests", KeyError("mongodb://user:pw@host"))
    assert status == 500
    assert body == {
        "error": "Internal proxy error",
        "details": "An unexpected error; the proxy's log has the details",
    }
    assert any("unhandled error on PUT /api/requests" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "exception",
    [ServerSelectionTimeoutError("db:27017 down"), AutoReconnect("reset"), TimeoutError()],
)
def test_an_unreachable_log_on_api_is_a_503_warning(
    caplog: pytest.LogCaptureFixture, exception: BaseException
) -> None:
    with caplog.at_level(logging.WARNING, logger="proxy"):
        status, body = _answer("/api/stats", exception)
    assert status == 503
    assert body["error"] == "Request log unavailable"
    assert "db:27017" not in body["details"]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_a_database_error_on_v1_stays_an_anthropic_500() -> None:
    # Not a request-log read: the model API's contract is unchanged.
    status, body = _answer("/v1/messages", ServerSelectionTimeoutError("down"))
    assert status == 500
    assert body["error"] == {"type": "api_error", "message": "Internal proxy error"}


def test_a_client_going_away_on_api_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="proxy"):
        _, body = _answer("/api/requests", RequestCancelled())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert body["error"] == "Client closed the request"
    assert body["details"] == "PUT /api/requests was abandoned by the client"


def test_an_unknown_api_route_is_a_404_and_a_hostile_path_is_cut() -> None:
    status, body = _answer("/api/" + "x" * 5000, NotFound("Requested URL ... not found"))
    assert status == 404 and body["error"] == "Not found"
    assert body["details"] == "No dashboard API route matches PUT /api/" + "x" * 195
