"""Bodies too big for one document go to GridFS; the document keeps a reference.

MongoDB documents stop at 16 MB and a request may carry 32 MiB. Above
`LARGE_BODY_BYTES`, each body is stored as a GridFS file whose id is derived from
the request id, so a replayed record re-uploads to the same id (a no-op) instead
of leaving an orphan copy.
"""

from __future__ import annotations

from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import FileExists
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

LARGE_BODY_BYTES = 4 * 1024 * 1024
BUCKET = "bodies"


def body_size(document: dict[str, Any]) -> int:
    size = 0
    for part in ("request", "response"):
        body = document.get(part, {}).get("body")
        if isinstance(body, str):
            size += len(body)
    return size


async def offload_bodies(
    db: AsyncDatabase[Any], document: dict[str, Any], *, force: bool = False
) -> dict[str, Any]:
    """A copy of `document` with its bodies moved to GridFS when they are large
    (or always, with `force`: a document that passes 16 MiB in BSON bytes)."""
    if not force and body_size(document) <= LARGE_BODY_BYTES:
        return document
    bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)
    out = dict(document)
    for part in ("request", "response"):
        section = dict(out.get(part) or {})
        body = section.get("body")
        if not isinstance(body, str):
            continue
        file_id = f"{document['_id']}:{part}"
        try:
            await bucket.upload_from_stream_with_id(
                file_id, file_id, body.encode("utf-8"), metadata={"requestId": document["_id"]}
            )
        except (FileExists, DuplicateKeyError):
            pass  # uploaded by an earlier attempt of the same record
        section["body"] = None
        section["bodyRef"] = file_id
        out[part] = section
    return out


async def load_bodies(db: AsyncDatabase[Any], document: dict[str, Any]) -> dict[str, Any]:
    """The document with any GridFS bodies read back in place."""
    bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)
    for part in ("request", "response"):
        section = document.get(part)
        if isinstance(section, dict) and section.get("bodyRef"):
            stream = await bucket.open_download_stream(section["bodyRef"])
            section["body"] = (await stream.read()).decode("utf-8")
    return document


async def delete_all_bodies(db: AsyncDatabase[Any]) -> None:
    await db[f"{BUCKET}.files"].delete_many({})
    await db[f"{BUCKET}.chunks"].delete_many({})
