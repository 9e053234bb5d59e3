"""Reads of one logged request for its detail page and its downloads.

The page never loads a large body whole: a body kept in the document is clipped
to what the page shows, a body offloaded to GridFS (storage.bodies, above 4 MiB)
is read only as far as its preview. The downloads stream: GridFS chunk by chunk,
and the document's JSON with each body escaped piece by piece, so no step holds
or encodes a whole large body at once on the event loop.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.asynchronous.database import AsyncDatabase

from storage import queries as q
from storage.bodies import BUCKET
from storage.mongo import REQUESTS

PARTS = ("request", "response")
# What the page needs besides the bodies: not the conversation's stored copies.
DETAIL_PROJECTION: dict[str, int] = {
    "conversation.turns": 0,
    "conversation.reply": 0,
    "conversation.words": 0,
}
CHUNK_CHARS = 256 * 1024  # characters escaped per piece of a download


@dataclass(frozen=True, slots=True)
class BodyText:
    """What the page has of one body: `text` (all of it, or its first part when
    `complete` is False), its `encoding` as stored, and its size when known."""

    text: str | None
    encoding: str | None
    complete: bool
    size: int | None  # characters of the stored text (bytes for GridFS)
    offloaded: bool


async def find_document(db: AsyncDatabase[Any], request_id: str) -> dict[str, Any] | None:
    """The document of a full id, or of a unique short prefix of one."""
    matches = (
        await db[REQUESTS].find(q.id_filter(request_id), DETAIL_PROJECTION).limit(2).to_list(None)
    )
    return matches[0] if len(matches) == 1 else None


def _section(document: dict[str, Any], part: str) -> dict[str, Any]:
    section = document.get(part)
    return section if isinstance(section, dict) else {}


async def body_text(
    db: AsyncDatabase[Any], document: dict[str, Any], part: str, limit: int
) -> BodyText:
    """The body of `part`, whole when it holds at most `limit` characters, else
    its first `limit` characters (a GridFS body: its first `limit` bytes)."""
    section = _section(document, part)
    encoding = section.get("bodyEncoding")
    ref = section.get("bodyRef")
    if isinstance(ref, str):
        bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)
        try:
            stream = await bucket.open_download_stream(ref)
        except NoFile:
            return BodyText(None, encoding, False, None, True)
        size = int(stream.length)
        head = await stream.read(limit)
        await stream.close()
        # A cut inside a multi-byte character loses only that character.
        text = head.decode("utf-8", errors="ignore")
        return BodyText(text, encoding or "utf-8", len(head) >= size, size, True)
    body = section.get("body")
    if not isinstance(body, str):
        return BodyText(None, encoding, False, None, False)
    if len(body) <= limit:
        return BodyText(body, encoding, True, len(body), False)
    return BodyText(body[:limit], encoding, False, len(body), False)


async def body_bytes(
    db: AsyncDatabase[Any], document: dict[str, Any], part: str
) -> AsyncIterator[bytes]:
    """The body of `part` as the client sent or received it (base64 decoded)."""
    section = _section(document, part)
    encoding = str(section.get("bodyEncoding") or "utf-8")
    ref = section.get("bodyRef")
    if isinstance(ref, str):
        bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)
        stream = await bucket.open_download_stream(ref)
        try:
            while chunk := await stream.readchunk():
                yield chunk
        finally:
            await stream.close()
        return
    body = section.get("body")
    if not isinstance(body, str):
        return
    if encoding.startswith("base64"):
        try:
            yield base64.b64decode(body)
        except (binascii.Error, ValueError):
            yield body.encode("ascii", errors="replace")
        return
    for start in range(0, len(body), CHUNK_CHARS):
        yield body[start : start + CHUNK_CHARS].encode("utf-8", errors="surrogatepass")


def download_name(document: dict[str, Any], part: str) -> tuple[str, str]:
    """(file name, content type) of a body download."""
    section = _section(document, part)
    encoding = str(section.get("bodyEncoding") or "utf-8")
    stem = f"{document.get('requestId', 'request')}-{part}"
    if encoding.startswith("base64"):
        coding = encoding.partition(";")[2]
        return f"{stem}.bin{'.' + coding if coding else ''}", "application/octet-stream"
    return f"{stem}.json", "application/json; charset=utf-8"


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


async def document_json(db: AsyncDatabase[Any], document: dict[str, Any]) -> AsyncIterator[str]:
    """The stored document as JSON, bodies as the stored text (a GridFS body read
    back in place), each body escaped piece by piece."""
    holes: dict[str, str] = {}
    shell = jsonable({k: v for k, v in document.items() if k != "_id"})
    for part in PARTS:
        section = shell.get(part)
        if isinstance(section, dict) and (
            isinstance(section.get("body"), str) or section.get("bodyRef")
        ):
            marker = f"\u0000body:{part}\u0000"
            section["body"] = marker
            holes[json.dumps(marker)] = part
    text = json.dumps(shell, ensure_ascii=False, indent=2)
    for encoded_marker, part in holes.items():
        before, _, text = text.partition(encoded_marker)
        yield before
        yield '"'
        async for piece in _escaped_body(db, document, part):
            yield piece
        yield '"'
    yield text


async def _escaped_body(
    db: AsyncDatabase[Any], document: dict[str, Any], part: str
) -> AsyncIterator[str]:
    section = _section(document, part)
    ref = section.get("bodyRef")
    if isinstance(ref, str):
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        async for chunk in body_bytes(db, document, part):
            yield json.dumps(decoder.decode(chunk), ensure_ascii=False)[1:-1]
        yield json.dumps(decoder.decode(b"", final=True), ensure_ascii=False)[1:-1]
        return
    body = section.get("body")
    if isinstance(body, str):
        for start in range(0, len(body), CHUNK_CHARS):
            yield json.dumps(body[start : start + CHUNK_CHARS], ensure_ascii=False)[1:-1]
