"""Which headers cross the proxy, in each direction.

Forwarding keeps every header except the hop-by-hop ones (RFC 9110 §7.6.1, plus
the legacy ones proxies conventionally drop) and those that describe the framing
of one particular connection; the other hop re-frames the body itself.
"""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# Recomputed by the next hop: the body is re-framed on each connection.
_FRAMING = frozenset({"content-length", "host"})

# Encodings the proxy can decode on the side to record a body; see `negotiate_encoding`.
DECODABLE_ENCODINGS = ("gzip", "deflate")


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    # Headers named in `Connection` are hop-by-hop for this message too.
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def request_headers_for_upstream(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Client request headers as they go upstream: all but hop-by-hop and Host.

    `accept-encoding` is narrowed to what the proxy can decode, so the bytes the
    client gets can be relayed untouched while the log can still read them.
    """
    items = list(headers)
    drop = HOP_BY_HOP | _FRAMING | _connection_tokens(items)
    out: list[tuple[str, str]] = []
    for name, value in items:
        lower = name.lower()
        if lower in drop:
            continue
        if lower == "accept-encoding":
            value = negotiate_encoding(value)
        out.append((name, value))
    return out


def response_headers_for_client(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Upstream response headers as they go to the client: all but hop-by-hop ones
    and `content-length` (the server frames the body it writes)."""
    items = list(headers)
    drop = HOP_BY_HOP | _FRAMING | _connection_tokens(items)
    return [(name, value) for name, value in items if name.lower() not in drop]


def negotiate_encoding(accept_encoding: str) -> str:
    """Keep only the codings of `accept_encoding` the proxy can decode itself.

    Anthropic gzips JSON when asked. Relaying compressed bytes untouched keeps the
    proxy cheap and byte-faithful; the log decodes them on the side with zlib,
    which has no brotli or zstd, so those are not offered upstream.
    """
    kept: list[str] = []
    for part in accept_encoding.split(","):
        token = part.strip()
        coding = token.split(";", 1)[0].strip().lower()
        if coding in DECODABLE_ENCODINGS or coding == "identity":
            kept.append(token)
    return ", ".join(kept) if kept else "identity"


def get_header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers:
        if key.lower() == lower:
            return value
    return None
