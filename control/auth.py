"""Dashboard HTTP Basic auth (DASHBOARD_PASSWORD).

The request log holds every prompt, so with a password set the dashboard and its
API answer only to it. The model API (`/v1/*`) keeps the client's own credentials,
and probes and docs stay open so orchestration and tooling keep working.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import unquote

# Sent with every 401 so browsers show their login prompt; the username is ignored.
WWW_AUTHENTICATE = 'Basic realm="claude-proxy dashboard", charset="UTF-8"'

# `/` only answers Claude Code's start-up `HEAD /` probe and redirects browsers to
# /dashboard (which is protected): nothing behind it needs the password.
_OPEN_EXACT = frozenset({"/", "/health", "/livez", "/metrics", "/openapi.json", "/openapi.yaml"})
# A path equal to one of these or below it is open.
_OPEN_TREES = ("/docs", "/v1")


def check_basic(header_value: str | None, password: str) -> bool:
    """True when `header_value` (an Authorization header) carries Basic credentials
    whose password equals `password`. The username is ignored. The comparison runs
    through hmac.compare_digest on UTF-8 bytes so its time does not depend on where
    the first difference is. Anything malformed is False, and so is an empty
    configured password (there is nothing to authenticate against)."""
    if not password or not header_value:
        return False
    scheme, _, encoded = header_value.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # bad base64 or bad UTF-8
        return False
    _user, colon, given = decoded.partition(":")
    if not colon:
        return False
    return hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8"))


def needs_auth(path: str) -> bool:
    """Whether a request for `path` must present the dashboard password.

    Deny by default: only the listed open paths are free, so a new dashboard page or
    API route is protected without anyone remembering to add it. The path is
    percent-decoded and any query dropped; a path with dot or empty segments is
    judged protected rather than risk a prefix check being fooled by a router (or a
    reverse proxy in front) that normalises it differently.
    """
    path = unquote(path.partition("?")[0])
    if not path.startswith("/"):
        return True
    segments = path.split("/")[1:]
    if any(s in (".", "..") for s in segments) or "" in segments[:-1]:
        return True
    # One trailing slash is tolerated: routers commonly treat `/health/` as `/health`.
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    if path in _OPEN_EXACT:
        return False
    return not any(path == tree or path.startswith(tree + "/") for tree in _OPEN_TREES)
