"""The two error bodies the proxy writes, and which paths take the dashboard API's."""

from __future__ import annotations

import json

import pytest

from streaming.errors import api_error_body, error_body, is_dashboard_api


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/api", True),
        ("/api/", True),
        ("/api/requests/abcd", True),
        ("/apix", False),
        ("/v1/messages", False),
        ("/v1/../api/settings", False),  # routed as /v1/<path>: the model API's
        ("/dashboard/api", False),
        ("", False),
    ],
)
def test_only_the_api_tree_is_the_dashboard_api(path: str, api: bool) -> None:
    assert is_dashboard_api(path) is api


def test_api_error_body_is_the_seeds_error_response() -> None:
    body = api_error_body("Request not found", 'No request "x"\n')
    assert json.loads(body) == {"error": "Request not found", "details": 'No request "x"\n'}


def test_anthropic_error_body_is_unchanged() -> None:
    assert json.loads(error_body(413, "too big", "req_1")) == {
        "type": "error",
        "error": {"type": "request_too_large", "message": "too big"},
        "request_id": "req_1",
    }
