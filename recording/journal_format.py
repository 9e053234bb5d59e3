"""The hand-off journal's on-disk format: owners, segments, frames, positions.

Layout: `<directory>/<owner>/` per writer (one per worker process), holding
`owner.lock` (flock'ed by the live writer) and segments `<n:012d>.seg`, numbered
from 1. A segment is a plain concatenation of frames; a frame never spans two
segments:

    header   28 bytes, little-endian:
             magic b"CPJ1" | u32 meta length | u64 request-body length |
             u64 response-body length | u32 CRC32
    payload  meta | request body | response body

The CRC32 covers the header's first 24 bytes (magic and lengths) and the whole
payload, so a torn frame or a flipped length fails it as well as a flipped byte.

The meta is `marshal`'ed (str/int/float/bool/None/list/dict/tuple/bytes only): it
is several times faster than JSON or pickle on the writer thread, but marshal's
format belongs to the Python minor version. Workers and the recorder run the same
image; a change of Python minor version or of this layout bumps FORMAT_VERSION
(and with it the magic), and a journal written by another version reads as
corrupt records. marshal is not safe against crafted input: the journal
directory must be writable by the proxy only, and the reader decodes a meta only
after its frame's CRC matched.
"""

from __future__ import annotations

import marshal
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FORMAT_VERSION = 1
# Seconds a worker's close() may take to flush its queue.
JOURNAL_CLOSE_TIMEOUT = 5.0

MAGIC = b"CPJ%d" % FORMAT_VERSION
_PREFIX = struct.Struct("<4sIQQ")
_CRC = struct.Struct("<I")
HEADER_SIZE = _PREFIX.size + _CRC.size
# Sanity bounds on a header's lengths, so a corrupt header is rejected before the
# reader tries to read what it claims. No real meta comes near this.
MAX_META_BYTES = 64 * 1024 * 1024
MAX_BODY_BYTES = 1 << 40

LOCK_NAME = "owner.lock"
SEGMENT_SUFFIX = ".seg"
_OWNER = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")
_SEGMENT = re.compile(r"^(\d{12})\.seg$")


@dataclass(frozen=True, order=True, slots=True)
class Position:
    segment: int  # segment number within one owner
    offset: int  # byte offset within that segment


@dataclass(slots=True)
class Record:
    owner: str
    start: Position
    end: Position  # position just after this record
    meta: dict[str, Any]  # what the worker passed, decoded
    request_body: bytes
    response_body: bytes  # the response chunks concatenated


def valid_owner(name: str) -> bool:
    """An owner is one path component, never hidden, never `.`/`..`."""
    return bool(_OWNER.match(name))


def segment_name(segment: int) -> str:
    return f"{segment:012d}{SEGMENT_SUFFIX}"


def segment_number(name: str) -> int | None:
    match = _SEGMENT.match(name)
    return int(match.group(1)) if match else None


def encode_meta(meta: dict[str, Any]) -> bytes:
    if type(meta) is not dict:
        raise TypeError(f"meta must be a dict, not {type(meta).__name__}")
    data = marshal.dumps(meta, 4)
    if len(data) > MAX_META_BYTES:
        raise ValueError(f"meta is {len(data)} bytes, more than {MAX_META_BYTES}")
    return data


def decode_meta(data: bytes) -> dict[str, Any]:
    meta = marshal.loads(data)
    if type(meta) is not dict:
        raise ValueError("meta is not a dict")
    return meta


def build_frame(
    meta: bytes, request_body: bytes, response_chunks: Sequence[bytes]
) -> tuple[list[bytes], int]:
    """The frame as buffers for os.writev (the bodies are not copied) and its length."""
    response_len = sum(map(len, response_chunks))
    prefix = _PREFIX.pack(MAGIC, len(meta), len(request_body), response_len)
    crc = zlib.crc32(prefix)
    crc = zlib.crc32(meta, crc)
    crc = zlib.crc32(request_body, crc)
    buffers = [b"", meta]
    if request_body:
        buffers.append(request_body)
    for chunk in response_chunks:
        if chunk:
            crc = zlib.crc32(chunk, crc)
            buffers.append(chunk)
    buffers[0] = prefix + _CRC.pack(crc)
    return buffers, HEADER_SIZE + len(meta) + len(request_body) + response_len


@dataclass(frozen=True, slots=True)
class Header:
    meta_len: int
    request_len: int
    response_len: int
    crc: int
    prefix: bytes

    @property
    def frame_len(self) -> int:
        return HEADER_SIZE + self.meta_len + self.request_len + self.response_len


def parse_header(data: bytes) -> Header | None:
    """The header at the start of `data` (HEADER_SIZE bytes), None when it cannot be one."""
    magic, meta_len, request_len, response_len = _PREFIX.unpack_from(data)
    if magic != MAGIC or meta_len > MAX_META_BYTES:
        return None
    if request_len > MAX_BODY_BYTES or response_len > MAX_BODY_BYTES:
        return None
    (crc,) = _CRC.unpack_from(data, _PREFIX.size)
    return Header(meta_len, request_len, response_len, crc, bytes(data[: _PREFIX.size]))


def payload_crc(header: Header, meta: bytes, request_body: bytes, response_body: bytes) -> int:
    crc = zlib.crc32(header.prefix)
    crc = zlib.crc32(meta, crc)
    crc = zlib.crc32(request_body, crc)
    return zlib.crc32(response_body, crc)
