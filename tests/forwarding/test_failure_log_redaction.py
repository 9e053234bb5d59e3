"""The failure lines (`forward_failed`, `request_rejected`, `failover`...) print the
query, the upstream URL and the error text: credentials in any of them appear only
as fingerprints."""

from __future__ import annotations

import logging

import pytest

from forwarding.failure_log import failure_fields, format_fields, log_forward_failure
from streaming.credentials import fingerprint
from streaming.exchange import Exchange, Outcome

KEY = "AIza-query-SECRET-0001"
TOKEN = "oauth-query-SECRET-0002"
QUERY = f"beta=true&key={KEY}&Access_Token={TOKEN}"


def _exchange() -> Exchange:
    exchange = Exchange(
        method="GET",
        path="/v1/models",
        query=QUERY,
        request_headers=[("x-goog-api-key", "header-SECRET-0003")],
        request_body=b"",
        request_id="req0456",
    )
    exchange.upstream_url = f"https://upstream.example/v1/models?{QUERY}"
    exchange.status = 502
    exchange.finish(Outcome.PROXY_ERROR, "upstream_redirect")
    return exchange


def test_failure_fields_fingerprint_query_and_error() -> None:
    error = f"Cannot reach https://upstream.example/v1/models?{QUERY}: refused"
    fields = failure_fields(_exchange(), error)
    assert fields["query"] == f"beta=true&key={fingerprint(KEY)}&Access_Token={fingerprint(TOKEN)}"
    assert (
        fields["error"]
        == f"Cannot reach https://upstream.example/v1/models?{fields['query']}: refused"
    )
    line = format_fields(fields)
    assert KEY not in line and TOKEN not in line and "SECRET" not in line


def test_forward_failed_lines_hold_no_clear_credential(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="proxy.forward")
    log_forward_failure(_exchange(), f"Upstream answered 302 for ?key={KEY}")
    lines = [r.getMessage() for r in caplog.records if r.name == "proxy.forward"]
    assert len(lines) == 2
    text = "\n".join(lines)
    assert "SECRET" not in text
    assert fingerprint(KEY) in lines[0] and fingerprint(KEY) in lines[1]
    # The human-readable line names the upstream with its query redacted.
    assert f"https://upstream.example/v1/models?beta=true&key={fingerprint(KEY)}" in lines[1]
