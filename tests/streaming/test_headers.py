"""Which headers cross the proxy (pure functions)."""

from __future__ import annotations

from streaming.headers import (
    negotiate_encoding,
    request_headers_for_upstream,
    response_headers_for_client,
)


def test_request_drops_hop_by_hop_host_and_connection_listed() -> None:
    headers = [
        ("Host", "127.0.0.1:3001"),
        ("Connection", "keep-alive, X-Trace"),
        ("X-Trace", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Length", "10"),
        ("TE", "trailers"),
        ("Proxy-Authorization", "Basic abc"),
        ("Upgrade", "h2c"),
        ("x-api-key", "sk"),
        ("anthropic-beta", "a,b"),
        ("X-Dup", "1"),
        ("X-Dup", "2"),
    ]
    assert request_headers_for_upstream(headers) == [
        ("x-api-key", "sk"),
        ("anthropic-beta", "a,b"),
        ("X-Dup", "1"),
        ("X-Dup", "2"),
    ]


def test_response_keeps_everything_but_framing_and_hop_by_hop() -> None:
    headers = [
        ("request-id", "req_1"),
        ("anthropic-ratelimit-requests-remaining", "9"),
        ("retry-after", "3"),
        ("content-encoding", "gzip"),
        ("content-length", "99"),
        ("transfer-encoding", "chunked"),
        ("connection", "close"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]
    assert response_headers_for_client(headers) == [
        ("request-id", "req_1"),
        ("anthropic-ratelimit-requests-remaining", "9"),
        ("retry-after", "3"),
        ("content-encoding", "gzip"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]


def test_accept_encoding_narrowed_to_decodable() -> None:
    assert negotiate_encoding("gzip, deflate, br, zstd") == "gzip, deflate"
    assert negotiate_encoding("br;q=1.0, gzip;q=0.5") == "gzip;q=0.5"
    assert negotiate_encoding("br") == "identity"
    assert negotiate_encoding("identity") == "identity"
    assert negotiate_encoding("GZIP") == "GZIP"
