"""The dashboard's static files: shipped inside the package, read once, served
under content-hashed names so a browser keeps them for a year and a reload
costs nothing.

`asset("app.css")` is `/dashboard/static/app.<hash>.css`: the hash is the first
ten hex digits of the file's SHA-256, so a new release changes the URL and
nothing stale is ever used. The plain name (`/dashboard/static/core.js`) is
served too, revalidated by its ETag: ES modules import each other by plain
relative names (`./core.js`), and a module reached by two URLs would run twice.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
URL_PREFIX = "/dashboard/static/"
HASH_LENGTH = 10
IMMUTABLE = "public, max-age=31536000, immutable"
# Unhashed names: the browser may keep a copy but must ask (a 304 costs a header).
REVALIDATE = "no-cache"

_CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_HASHED = re.compile(
    rf"^(?P<stem>[^/]+)\.(?P<hash>[0-9a-f]{{{HASH_LENGTH}}})(?P<suffix>\.[a-z0-9]+)$"
)
_PLAIN = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    body: bytes
    digest: str  # HASH_LENGTH hex digits of the body's SHA-256
    content_type: str

    @property
    def url(self) -> str:
        path = Path(self.name)
        return f"{URL_PREFIX}{path.stem}.{self.digest}{path.suffix}"

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a request for a static file name resolves to."""

    asset: Asset
    cache_control: str


def _content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    guessed = mimetypes.guess_type(name)[0]
    return _CONTENT_TYPES.get(suffix) or guessed or "application/octet-stream"


@cache
def catalogue(directory: Path = STATIC_DIR) -> dict[str, Asset]:
    """Every file of the static folder by name, read once (they are a few KB)."""
    assets = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:HASH_LENGTH]
        assets[path.name] = Asset(path.name, body, digest, _content_type(path.name))
    return assets


def asset_url(name: str, directory: Path = STATIC_DIR) -> str:
    """The content-hashed URL of a static file; an unknown name is a template bug
    and fails loudly at render time (never a silent 404 in the browser)."""
    try:
        return catalogue(directory)[name].url
    except KeyError:
        raise LookupError(f"no static file {name!r} in {directory}") from None


def lookup(requested: str, directory: Path = STATIC_DIR) -> Lookup | None:
    """The file a `/dashboard/static/<requested>` URL names, or None.

    A hashed name whose hash is current is immutable; a hashed name from another
    release (a page rendered by an older replica during a rolling update) gets the
    current file, revalidated, rather than a 404 that would break that page; a
    plain name is revalidated. Only plain file names are accepted: no separators,
    no dot segments.
    """
    if not _PLAIN.fullmatch(requested) or ".." in requested:
        return None
    files = catalogue(directory)
    if requested in files:
        return Lookup(files[requested], REVALIDATE)
    match = _HASHED.fullmatch(requested)
    if match is None:
        return None
    found = files.get(match["stem"] + match["suffix"])
    if found is None:
        return None
    return Lookup(found, IMMUTABLE if found.digest == match["hash"] else REVALIDATE)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison over a list of entity tags (or `*`)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False
