"""The app's error handler: Anthropic's shape, and only real faults logged as errors."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
from sanic.exceptions import RequestCancelled

from runtime.errors import AnthropicErrorHandler
from runtime.settings import Settings

REQUEST = SimpleNamespace(method="POST", path="/v1/messages")


def test_a_client_going_away_is_not_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    handler = AnthropicErrorHandler(Settings.from_env({}))
    with caplog.at_level(logging.DEBUG, logger="proxy"):
        response = handler.default(REQUEST, RequestCancelled())  # type: ignore[arg-type]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert json.loads(response.body)["type"] == "error"


def test_an_unexpected_exception_is_logged_and_hidden(caplog: pytest.LogCaptureFixture) -> None:
    handler = AnthropicErrorHandler(Settings.from_env({}))
    with caplog.at_level(logging.ERROR, logger="proxy"):
        response = handler.default(REQUEST, KeyError("secret detail"))  # type: ignore[arg-type]
    assert response.status == 500
    assert json.loads(response.body)["error"] == {
        "type": "api_error",
        "message": "Internal proxy error",
    }
    assert any("unhandled error on POST /v1/messages" in r.getMessage() for r in caplog.records)
