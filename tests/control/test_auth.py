"""Dashboard Basic auth: credential check and which paths need it."""

from __future__ import annotations

import base64
import hmac

import pytest

from control import auth
from control.auth import WWW_AUTHENTICATE, check_basic, needs_auth


def basic(credentials: str | bytes) -> str:
    raw = credentials.encode() if isinstance(credentials, str) else credentials
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("header", "password", "expected"),
    [
        (basic("admin:s3cret"), "s3cret", True),
        (basic("anyone:s3cret"), "s3cret", True),  # username ignored
        (basic(":s3cret"), "s3cret", True),
        (basic("user:pa:ss"), "pa:ss", True),  # only the first colon splits
        (basic("ü:pässwörd"), "pässwörd", True),
        ("basic " + basic("u:s3cret")[6:], "s3cret", True),  # scheme is case-insensitive
        ("  Basic   " + basic("u:s3cret")[6:] + "  ", "s3cret", True),
        (basic("admin:wrong"), "s3cret", False),
        (basic("admin:s3cret "), "s3cret", False),
        (basic("admin:S3CRET"), "s3cret", False),
        (basic("admin:"), "s3cret", False),
        (basic("s3cret"), "s3cret", False),  # no colon
        (basic("admin:s3cret"), "", False),  # nothing to authenticate against
        (basic(":"), "", False),
        (None, "s3cret", False),
        ("", "s3cret", False),
        ("Basic", "s3cret", False),
        ("Basic ", "s3cret", False),
        ("Bearer " + basic("u:s3cret")[6:], "s3cret", False),
        ("Basic not-base64!!", "s3cret", False),
        ("Basic " + base64.b64encode(b"u:s3cret").decode()[:-2], "s3cret", False),
        (basic(b"u:\xff\xfe"), "s3cret", False),  # not UTF-8
        ("Basicdm9vOnMzY3JldA==", "s3cret", False),
    ],
)
def test_check_basic(header: str | None, password: str, expected: bool) -> None:
    assert check_basic(header, password) is expected


def test_comparison_goes_through_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert check_basic(basic("u:pässword"), "pässword")
    assert not check_basic(basic("u:nope"), "pässword")
    assert calls == [
        ("pässword".encode(), "pässword".encode()),
        (b"nope", "pässword".encode()),
    ]


def test_www_authenticate_challenges_basic() -> None:
    assert WWW_AUTHENTICATE.startswith("Basic realm=")


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/livez",
        "/metrics",
        "/openapi.json",
        "/openapi.yaml",
        "/docs",
        "/docs/",
        "/docs/openapi.json",
        "/docs/swagger",
        "/v1",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/models",
        "/v1/messages?beta=true",
        "/health/",
        "/",  # the HEAD probe and a redirect to /dashboard, which is protected
    ],
)
def test_open_paths(path: str) -> None:
    assert needs_auth(path) is False


@pytest.mark.parametrize(
    "path",
    [
        "/api/settings",
        "/api/requests",
        "/api/",
        "/api",
        "/dashboard",
        "/conversations/abc",
        "/index.html",
        "/healthz",
        "/health/x",
        "/metrics/extra",
        "/docsx",
        "/v1x/messages",
        "/v2/messages",
        "/openapi.yml",
        # Traversal or encoding tricks that a normalising router might resolve to /api.
        "/v1/../api/settings",
        "/docs/../api/settings",
        "/v1/%2e%2e/api/settings",
        "/v1%2F..%2Fapi%2Fsettings",
        "/v1/./messages",
        "//v1/messages",
        "/v1//messages",
        "",
        "api/settings",
    ],
)
def test_protected_paths(path: str) -> None:
    assert needs_auth(path) is True
