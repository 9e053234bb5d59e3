"""The headers every dashboard response carries.

The policy allows only this origin's own files: no inline script or style (the
templates have neither), no plugins, no framing, no `<base>` rewriting, forms
posting home only. A prompt that slipped past escaping could still not run.
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)

SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

# Pages show recorded data behind a password: never kept by shared caches, and
# revalidated by the browser (no-store would also keep them out of the back/forward
# cache, which makes Back slower for nothing).
PAGE_CACHE_CONTROL = "private, no-cache"


def security_headers() -> dict[str, str]:
    return dict(SECURITY_HEADERS)
