"""Credentials never leave the request path in clear text.

A fingerprint (`sha256:` + 16 hex digits) identifies a key in the log, in routing
rules and in metrics-free diagnostics without revealing it.

Which headers and query parameters carry credentials is decided by rule, not by a
list of known names: every provider and gateway invents its own (`x-goog-api-key`,
`api-key`, `x-auth-token`, `?key=`), and one name missed is a key stored in clear.
The rule, on the lower-cased name (a query parameter's name percent-decoded first):

1. Known non-secret names that the rule below would catch stay in clear
   (`NON_SECRET_HEADERS`, `NON_SECRET_HEADER_PREFIXES`): the rate-limit token
   counts (`anthropic-ratelimit-*-tokens-*`, an OpenAI-format backend's
   `x-ratelimit-*-tokens`), which the log reads, and authentication challenges
   and retry keys, which grant nothing.
2. A name containing one of `SECRET_FRAGMENTS` (`key`, `token`, `secret`, `passw`,
   `auth`, `credential`, `cookie`, `signature`, `private`, `jwt`) is a credential.
   A query parameter named exactly one of `SECRET_SHORT_PARAMS` (`sig`, `pwd`,
   `pass`: too short to look for inside other names) is one too.
3. Whatever the name, a value that is itself plainly a credential (an Anthropic
   key `sk-ant-...`, or an HTTP `Bearer`/`Basic` credential) is one.

A session id (`x-claude-code-session-id`, sent for gateway session aggregation) is
not a credential: it names a conversation and grants no access, and the log groups
by it, so it is kept. An empty value hides nothing and stays empty (a fingerprint of
nothing would claim a credential was sent). Over-matching costs a readable value in
the log; under-matching leaks a key, so the rule errs on the side of matching.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote_plus

# Always credentials, whatever the rule says (also kept for readers looking for them).
SECRET_HEADERS = frozenset(
    {"x-api-key", "authorization", "proxy-authorization", "cookie", "set-cookie"}
)
SECRET_FRAGMENTS = (
    "key",
    "token",
    "secret",
    "passw",  # password, passwd
    "auth",  # authorization, x-auth-token, oauth, authentication-info
    "credential",
    "cookie",
    "signature",
    "private",
    "jwt",
)
SECRET_SHORT_PARAMS = frozenset({"sig", "pwd", "pass"})
# Names the fragments catch that carry no credential.
NON_SECRET_HEADERS = frozenset(
    {
        # Challenges: the scheme and realm a server asks for, not a credential.
        "www-authenticate",
        "proxy-authenticate",
        # A client's retry de-duplication key (the SDKs send one): grants nothing.
        "idempotency-key",
    }
)
# Rate-limit state, read from the stored headers by storage/ratelimits.py: counts
# of tokens (`anthropic-ratelimit-input-tokens-remaining`), never a credential.
NON_SECRET_HEADER_PREFIXES = ("anthropic-ratelimit-", "x-ratelimit-")
# Values that are credentials whatever their name (compared lower-cased).
SECRET_VALUE_PREFIXES = ("sk-ant-", "bearer ", "basic ")

_FRAGMENT = re.compile("|".join(re.escape(f) for f in SECRET_FRAGMENTS))
# Query pairs split on `&` and `;` (older servers take both); the separators are
# kept so a query without credentials comes back byte for byte.
_SEPARATOR = re.compile(r"([&;])")
# A query inside free text (an error message quoting a URL).
_QUERY_IN_TEXT = re.compile(r"\?([^\s\"'<>#]+)")
_TRAILING_PROSE = ".,:!)]}"
# A header name's verdict: a credential, known not to be one (its value is kept
# whatever it looks like), or judged by its value.
_SECRET, _ALLOWED, _BY_VALUE = object(), object(), object()
# First characters of SECRET_VALUE_PREFIXES (and of the whitespace before one).
_SECRET_VALUE_STARTS = frozenset("sSbB \t")
# Names up to this length are remembered; longer ones (rare, client-made) are
# judged each time rather than held in memory.
_CACHED_NAME_CHARS = 128


def fingerprint(secret: str) -> str:
    # surrogatepass: a value decoded with surrogateescape still fingerprints
    # (identically to before for every ordinary string) instead of raising.
    digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
    return "sha256:" + digest[:16]


def is_secret_header(name: str) -> bool:
    """Whether a header of this name carries a credential (the module's rule)."""
    return _header_verdict(name) is _SECRET


def is_secret_param(name: str) -> bool:
    """Whether a query parameter of this (already percent-decoded) name carries a
    credential."""
    lower = name.lower()
    return lower in SECRET_SHORT_PARAMS or _FRAGMENT.search(lower) is not None


def looks_like_secret(value: str) -> bool:
    """A value that is a credential whatever it is called."""
    head = value[:16].lstrip().lower()
    return head.startswith(SECRET_VALUE_PREFIXES)


def redact_header(name: str, value: str) -> str:
    """The value to store for header `name`: its fingerprint when it carries a
    credential, else the value itself (as a plain str)."""
    # Runs for every header of every request on the journal thread, which shares
    # the worker's GIL: the name's verdict is cached, the value looked at once.
    value = str(value)
    verdict = _header_verdict(name)
    if verdict is _ALLOWED or not value or value.isspace():
        return value
    if verdict is _SECRET or (value[0] in _SECRET_VALUE_STARTS and looks_like_secret(value)):
        return fingerprint(value)
    return value


def sanitize_headers(headers: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Headers for storage: secrets replaced by their fingerprints, order and
    duplicates kept (as pairs: header names repeat and may contain dots). Plain
    str throughout (the journal's marshal refuses the server's str subclasses)."""
    return [[str(name), redact_header(name, value)] for name, value in headers]


def redact_query(query: str) -> str:
    """The query string with credential-bearing parameters' values fingerprinted
    (the fingerprint of the decoded value, so it equals the one of the same key
    sent in a header). Everything else is kept byte for byte, order, repeats and
    empty values included; a query without credentials comes back unchanged."""
    if not query:
        return query
    parts = _SEPARATOR.split(str(query))
    changed = False
    for i in range(0, len(parts), 2):  # odd indices are the separators
        raw_name, eq, raw_value = parts[i].partition("=")
        name = unquote_plus(raw_name)
        if not eq:
            # A bare `?sk-ant-...`: the name is the value.
            if looks_like_secret(name):
                parts[i] = _quoted_fingerprint(name)
                changed = True
            continue
        value = unquote_plus(raw_value)
        if value.strip() and (is_secret_param(name) or looks_like_secret(value)):
            parts[i] = f"{raw_name}={_quoted_fingerprint(value)}"
            changed = True
    return "".join(parts) if changed else query


def redact_url(url: str | None) -> str | None:
    """A URL with its query redacted (`redact_query`); scheme, host, path and
    fragment untouched."""
    if not url or "?" not in url:
        return url
    base, _, rest = url.partition("?")
    query, hash_, fragment = rest.partition("#")
    return f"{base}?{redact_query(query)}{hash_}{fragment}"


def redact_text(text: str) -> str:
    """Free text (a log line, an error message) with the query of every URL in it
    redacted."""
    if "?" not in text:
        return text
    return _QUERY_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    # Prose punctuation right after a URL ("...?key=abc: refused") is not the value's.
    query = match.group(1)
    kept = query.rstrip(_TRAILING_PROSE)
    return "?" + redact_query(kept) + query[len(kept) :]


def _header_verdict(name: str) -> object:
    if len(name) <= _CACHED_NAME_CHARS:
        return _cached_verdict(str(name))
    return _judge_header(name.lower())


@functools.lru_cache(maxsize=1024)
def _cached_verdict(name: str) -> object:
    return _judge_header(name.lower())


def _judge_header(lower: str) -> object:
    if lower in SECRET_HEADERS:
        return _SECRET
    if lower in NON_SECRET_HEADERS or lower.startswith(NON_SECRET_HEADER_PREFIXES):
        return _ALLOWED
    return _SECRET if _FRAGMENT.search(lower) else _BY_VALUE


def _quoted_fingerprint(value: str) -> str:
    # `:` is legal in a query (RFC 3986), so the stored form reads `sha256:...`.
    return quote(fingerprint(value), safe=":")
