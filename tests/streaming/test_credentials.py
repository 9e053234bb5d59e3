"""The credential rule: which header and query-parameter values are fingerprinted,
which known non-secret names stay in clear, and how queries, URLs and free text are
redacted without touching anything else."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import pytest

from streaming.credentials import (
    NON_SECRET_HEADER_PREFIXES,
    NON_SECRET_HEADERS,
    SECRET_FRAGMENTS,
    SECRET_HEADERS,
    fingerprint,
    is_secret_header,
    is_secret_param,
    redact_header,
    redact_query,
    redact_text,
    redact_url,
    sanitize_headers,
)

SECRET = "c1ear-Secret-Value-0123456789"
FP = fingerprint(SECRET)


def test_fingerprint_is_sha256_prefix() -> None:
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    assert FP == "sha256:" + digest[:16]
    # A value with a lone surrogate (surrogateescape-decoded input) fingerprints
    # instead of raising on the journal thread.
    assert fingerprint("a\udcff").startswith("sha256:")


@pytest.mark.parametrize(
    "name",
    [
        *sorted(SECRET_HEADERS),
        "x-goog-api-key",
        "api-key",
        "x-auth-token",
        "X-Goog-Api-Key",
        "API-KEY",
        "x-amz-security-token",
        "x-session-token",
        "x-csrf-token",
        "x-client-secret",
        "x-db-password",
        "x-passwd",
        "x-amz-credential",
        "x-goog-signature",
        "x-private-id",
        "x-jwt-assertion",
        "apikey",
        "x_api_key",
        "authentication-info",
        "x-forwarded-authorization",
        "ocp-apim-subscription-key",
    ],
)
def test_credential_headers_match_the_rule(name: str) -> None:
    assert is_secret_header(name)
    assert redact_header(name, SECRET) == FP


@pytest.mark.parametrize(
    "name",
    [
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
        "anthropic-ratelimit-unified-5h-utilization",
        "x-ratelimit-remaining-tokens",
        "x-claude-code-session-id",  # a correlation id, not a credential (documented)
        "x-claude-code-agent-id",
        "content-length",
        "content-type",
        "keep-alive",
        "user-agent",
        "anthropic-version",
        "anthropic-beta",
        "anthropic-organization-id",
        "request-id",
        "retry-after",
        "x-stainless-os",
        "x-anthropic-billing-header",
        "www-authenticate",
        "idempotency-key",
    ],
)
def test_non_secret_headers_stay_in_clear(name: str) -> None:
    assert not is_secret_header(name)
    assert redact_header(name, "2000000") == "2000000"


def test_every_allow_listed_name_is_one_the_rule_would_catch() -> None:
    """The allow-list holds exceptions only: an entry the fragments would not match
    anyway is dead weight that hides what the rule really does."""
    for name in NON_SECRET_HEADERS:
        assert any(f in name for f in SECRET_FRAGMENTS), name
    for prefix in NON_SECRET_HEADER_PREFIXES:
        assert any(f in prefix + "tokens-limit" for f in SECRET_FRAGMENTS), prefix


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-custom", "sk-ant-api03-abcdef"),
        ("x-custom", "Bearer abc.def"),
        ("x-custom", "  basic dXNlcjpwYXNz"),
        ("x-upstream", "SK-ANT-oat01-xyz"),
    ],
)
def test_values_that_are_credentials_are_fingerprinted_whatever_the_name(
    name: str, value: str
) -> None:
    assert redact_header(name, value) == fingerprint(value)


def test_language_tags_and_plain_values_are_not_mistaken_for_keys() -> None:
    assert redact_header("accept-language", "sk-SK,sk;q=0.9") == "sk-SK,sk;q=0.9"
    assert redact_header("x-plan", "Basic") == "Basic"


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_values_stay_empty(value: str) -> None:
    assert redact_header("x-api-key", value) == value


def test_sanitize_headers_keeps_order_repeats_and_plain_strings() -> None:
    class Sub(str):
        pass

    headers = [
        (Sub("API-Key"), Sub(SECRET)),
        ("x-app", "cli"),
        ("api-key", "other"),
        ("anthropic-ratelimit-tokens-remaining", "1990000"),
    ]
    stored = sanitize_headers(headers)
    assert stored == [
        ["API-Key", FP],
        ["x-app", "cli"],
        ["api-key", fingerprint("other")],
        ["anthropic-ratelimit-tokens-remaining", "1990000"],
    ]
    assert all(type(v) is str for pair in stored for v in pair)


def test_long_header_names_are_judged_without_the_cache() -> None:
    assert is_secret_header("x-" + "a" * 500 + "-token")
    assert not is_secret_header("x-" + "a" * 500)


# ---- query parameters ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "key",
        "KEY",
        "api_key",
        "apikey",
        "api-key",
        "access_token",
        "refresh_token",
        "token",
        "auth",
        "signature",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "sig",
        "password",
        "pwd",
        "pass",
        "secret",
        "client_secret",
    ],
)
def test_credential_params_match_the_rule(name: str) -> None:
    assert is_secret_param(name)
    assert redact_query(f"{name}={SECRET}") == f"{name}={FP}"


@pytest.mark.parametrize("name", ["beta", "limit", "before_id", "after_id", "design", "signal"])
def test_ordinary_params_are_kept(name: str) -> None:
    assert not is_secret_param(name)
    assert redact_query(f"{name}=1") == f"{name}=1"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("beta=true", "beta=true"),
        # Kept byte for byte when nothing is secret, odd encodings included.
        ("a=b%20c&d=e+f&&g", "a=b%20c&d=e+f&&g"),
        (f"beta=true&key={SECRET}", f"beta=true&key={FP}"),
        # Repeated, mixed case, `;` separated.
        (
            f"key={SECRET}&Key=two;TOKEN=three",
            f"key={FP}&Key={fingerprint('two')};TOKEN={fingerprint('three')}",
        ),
        # Percent-encoded names are judged decoded, and keep their spelling.
        (f"%6Bey={SECRET}", f"%6Bey={FP}"),
        (f"api%5Fkey={SECRET}", f"api%5Fkey={FP}"),
        # The fingerprint is of the decoded value: the same as in a header.
        (f"key={quote(SECRET + ' x')}", f"key={fingerprint(SECRET + ' x')}"),
        # Empty values hide nothing; a bare name has no value.
        ("key=&token=", "key=&token="),
        ("key", "key"),
        # A bare credential is fingerprinted whole; so is one under any name.
        ("sk-ant-api03-xyz", fingerprint("sk-ant-api03-xyz")),
        ("q=sk-ant-api03-xyz", f"q={fingerprint('sk-ant-api03-xyz')}"),
    ],
)
def test_redact_query(query: str, expected: str) -> None:
    assert redact_query(query) == expected


def test_redact_url_and_text() -> None:
    url = f"https://api.example.com/v1/models?limit=5&key={SECRET}#top"
    assert redact_url(url) == f"https://api.example.com/v1/models?limit=5&key={FP}#top"
    assert redact_url("https://api.example.com/v1/models") == "https://api.example.com/v1/models"
    assert redact_url(None) is None
    text = f"Cannot connect to https://h:9/v1/x?access_token={SECRET} (refused) for ?a=1"
    redacted = redact_text(text)
    assert SECRET not in redacted
    assert redacted == f"Cannot connect to https://h:9/v1/x?access_token={FP} (refused) for ?a=1"
    assert redact_text("no query here") == "no query here"
    # Prose punctuation after a URL stays prose.
    assert redact_text(f"(see /x?key={SECRET}): refused.") == f"(see /x?key={FP}): refused."
