"""Where each top-level member of a JSON object starts and ends, in its bytes.

The proxy promises byte-faithful forwarding, so changing `stream` or `model` must not
round-trip the body through json.loads/dumps: that would reorder nothing but would
still rewrite `1.0`, `1e5`, `-0`, unicode escapes, whitespace and duplicate keys. This
small tokenizer finds where each top-level member's value starts and ends (an
`ObjectLayout`); `control.jsonedit` splices new bytes in there and copies everything
else untouched.

Validation: the top level is checked against the full JSON grammar. Inside nested
values the scan checks bracket pairing and that every token is a valid JSON token
(strings with their escapes, numbers, literals) but not the order of tokens, so
`[1 2]` nested in a value passes; the upstream rejects such a body exactly as it
would have without the proxy. UTF-8 validity is checked on the whole body. NaN and
Infinity, which json.loads accepts but JSON does not, are refused.

The regexes use possessive quantifiers (Python 3.11+) so that long strings and long
runs of scalars are consumed in C without building backtracking state. The work in
Python is one step per member and one per run of brackets, so the scan stays linear
and cheap on bodies of many tiny members or deep nesting, which a client may send.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import NoReturn

_BOM = b"\xef\xbb\xbf"

# A JSON string: unescaped bytes other than `"`, `\` and control characters, or an
# escape from RFC 8259 §7. Bytes >= 0x80 pass here; UTF-8 is checked separately.
_STRING_SRC = rb'"(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4}))*+"'
_NUMBER_SRC = rb"-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?"
_LITERAL_SRC = rb"true|false|null"

_WS = re.compile(rb"[ \t\n\r]*+")
_STRING = re.compile(_STRING_SRC)
_SCALAR = re.compile(rb"(?:" + _NUMBER_SRC + rb"|" + _LITERAL_SRC + rb")(?![0-9A-Za-z.+\-])")
# Separators and whole tokens: everything inside a container but brackets.
_FLAT_SRC = (
    rb"(?:[ \t\n\r,:]++|" + _STRING_SRC + rb"|" + _NUMBER_SRC + rb"|" + _LITERAL_SRC + rb")*+"
)
# ... and innermost containers (no brackets inside) too, whole: checked by the same
# rules as the bracket loop applies, in C. One that does not close as it should is
# not taken here, and the loop meets its opening bracket and reports where it fails.
_GAP = re.compile(
    rb"(?:[ \t\n\r,:]++|"
    + _STRING_SRC
    + rb"|"
    + _NUMBER_SRC
    + rb"|"
    + _LITERAL_SRC
    + rb"|\["
    + _FLAT_SRC
    + rb"\]|\{"
    + _FLAT_SRC
    + rb"\})*+"
)

# A member up to its value: the key, the colon and the blanks around it.
_MEMBER_HEAD = re.compile(rb"(" + _STRING_SRC + rb")[ \t\n\r]*+:[ \t\n\r]*+")
# What follows a member's value: `,` (and the blanks before the next key) or `}`.
_MEMBER_TAIL = re.compile(rb"[ \t\n\r]*+(?:(,)[ \t\n\r]*+|\})")
_OPENERS = re.compile(rb"[\[{]++")
_CLOSERS = re.compile(rb"[\]}]++")
_CLOSER_OF = bytes.maketrans(b"[{", b"]}")
_BRACKETS = frozenset(b"[]{}")

_OPEN_OBJECT, _CLOSE_OBJECT = ord("{"), ord("}")
_OPEN_ARRAY, _CLOSE_ARRAY = ord("["), ord("]")
_QUOTE, _COLON, _COMMA = ord('"'), ord(":"), ord(",")


@dataclass(frozen=True, slots=True)
class Member:
    """One top-level member; offsets index the body, ends are exclusive."""

    key: str  # decoded, so `"str\u0065am"` is "stream" as every JSON parser sees it
    key_start: int
    key_end: int
    value_start: int
    value_end: int


@dataclass(frozen=True, slots=True)
class ObjectLayout:
    open_brace: int
    close_brace: int
    members: tuple[Member, ...]

    def find(self, key: str) -> list[Member]:
        return [member for member in self.members if member.key == key]


# Bytes of progress between two pauses of a stepped scan: ~4 ms of regex work, or a
# few thousand Python steps on bodies of tiny nested containers.
STEP_BYTES = 256 * 1024

# Deeper nesting is refused: no real request comes near it, and every JSON parser on
# the way (Python's gives up near 1,000 levels) has such a limit.
MAX_DEPTH = 1000

# ... or between two pauses, bracket steps of the Python loop (~2 ms).
_STEPS_PER_PAUSE = 2048

ScanSteps = Generator[None, None, ObjectLayout]


def scan_object(body: bytes) -> ObjectLayout:
    """Locate the members of the top-level object. ValueError if `body` is not one
    JSON object (optionally surrounded by whitespace, after an optional UTF-8 BOM,
    which json.loads also accepts)."""
    steps = scan_steps(body)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


async def scan_object_async(body: bytes) -> ObjectLayout:
    """`scan_object`, pausing every `STEP_BYTES` so that a worker's event loop keeps
    relaying other streams while a 30 MB body is checked (the scan holds the GIL:
    a thread would not help)."""
    steps = scan_steps(body)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(0)


def scan_steps(body: bytes) -> ScanSteps:
    """The scan as a generator that yields after every `STEP_BYTES` of progress and
    returns the layout (raises ValueError like `scan_object`)."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError("body must be bytes")
    buf = bytes(body)
    yield from _check_utf8(buf)
    pos = len(_BOM) if buf.startswith(_BOM) else 0
    pos = _skip_ws(buf, pos)
    if pos >= len(buf) or buf[pos] != _OPEN_OBJECT:
        raise ValueError("body is not a JSON object")
    open_brace = pos
    members: list[Member] = []
    pos = _skip_ws(buf, pos + 1)
    paused_at = pos
    if pos < len(buf) and buf[pos] == _CLOSE_OBJECT:
        close_brace = pos
    else:
        while True:
            head = _MEMBER_HEAD.match(buf, pos)
            if head is None:
                _member_head_error(buf, pos)
            key_start, key_end = head.span(1)
            value_start = head.end()
            value_end = yield from _value_end(buf, value_start)
            key = _key(buf, key_start, key_end)
            members.append(Member(key, key_start, key_end, value_start, value_end))
            tail = _MEMBER_TAIL.match(buf, value_end)
            if tail is None:
                _member_tail_error(buf, value_end)
            if tail.group(1) is None:
                close_brace = tail.end() - 1
                break
            pos = tail.end()
            if pos - paused_at >= STEP_BYTES:  # many small members
                paused_at = pos
                yield
    if _skip_ws(buf, close_brace + 1) != len(buf):
        raise ValueError(f"unexpected data after the object at byte {close_brace + 1}")
    return ObjectLayout(open_brace, close_brace, tuple(members))


def _check_utf8(buf: bytes) -> Generator[None, None, None]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    for start in range(0, len(buf), STEP_BYTES):
        piece = buf[start : start + STEP_BYTES]
        # Up to 3 bytes of an unfinished character held back from the last piece.
        held = len(decoder.getstate()[0])
        try:
            decoder.decode(piece, final=start + STEP_BYTES >= len(buf))
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"body is not valid UTF-8 at byte {start - held + exc.start}"
            ) from None
        yield
    if not buf:
        decoder.decode(b"", final=True)


def _member_head_error(buf: bytes, pos: int) -> NoReturn:
    key_end = _string_end(buf, pos, "an object key")
    _expect(buf, _skip_ws(buf, key_end), _COLON, "':' after an object key")
    raise AssertionError("unreachable: a key and its colon match _MEMBER_HEAD")


def _member_tail_error(buf: bytes, value_end: int) -> NoReturn:
    _expect(buf, _skip_ws(buf, value_end), _CLOSE_OBJECT, "',' or '}' after a value")
    raise AssertionError("unreachable: `,` and `}` match _MEMBER_TAIL")


def _key(buf: bytes, start: int, end: int) -> str:
    raw = buf[start + 1 : end - 1]
    if b"\\" not in raw:
        return raw.decode("utf-8")  # no escapes: the bytes are the key (UTF-8 is checked)
    # json.loads decodes the escapes exactly as the upstream's parser will.
    return json.loads(buf[start:end])


def _skip_ws(buf: bytes, pos: int) -> int:
    match = _WS.match(buf, pos)
    return match.end() if match else pos


def _expect(buf: bytes, pos: int, byte: int, what: str) -> None:
    if pos >= len(buf) or buf[pos] != byte:
        raise ValueError(f"expected {what} at byte {pos}")


def _string_end(buf: bytes, pos: int, what: str) -> int:
    match = _STRING.match(buf, pos) if pos < len(buf) and buf[pos] == _QUOTE else None
    if match is None:
        raise ValueError(f"expected {what} (a valid JSON string) at byte {pos}")
    return match.end()


def _value_end(buf: bytes, pos: int) -> Generator[None, None, int]:
    if pos >= len(buf):
        raise ValueError("unexpected end of body, expected a value")
    first = buf[pos]
    if first == _QUOTE:
        return _string_end(buf, pos, "a string")
    if first in (_OPEN_OBJECT, _OPEN_ARRAY):
        return (yield from _container_end(buf, pos))
    match = _SCALAR.match(buf, pos)
    if match is None:
        raise ValueError(f"expected a JSON value at byte {pos}")
    return match.end()


def _cut(buf: bytes, after: int, end: int) -> int:
    """Where a piece of `_GAP` matching starting before `after` may end: just past
    the first `,` at least `STEP_BYTES` further on. A number or literal is never cut
    there (a cut `1e5` would read as `1` and then fail at `e5`); a string the cut
    falls into does not match at all, so the run stops before it and a wider piece
    takes it."""
    comma = buf.find(b",", after + STEP_BYTES)
    return end if comma < 0 else comma + 1


def _container_end(buf: bytes, pos: int) -> Generator[None, None, int]:
    # Python-level work is one step per bracket (per run of brackets when they are
    # nested without anything between); everything else, innermost containers
    # included, is consumed by `_GAP` matches between two steps, a piece of about
    # `STEP_BYTES` at a time so that a stepped scan pauses between pieces too.
    # The closing brackets still expected, innermost last. The container's own
    # opening bracket is taken first: `_GAP` would swallow a flat one whole, and
    # the separators after it.
    owed = bytearray(buf[pos : pos + 1].translate(_CLOSER_OF))
    pos += 1
    end = len(buf)
    limit = _cut(buf, pos, end)
    paused_at, steps = pos, 0
    while True:
        steps += 1
        if steps >= _STEPS_PER_PAUSE or pos - paused_at >= STEP_BYTES:
            paused_at, steps = pos, 0
            yield
        if pos >= limit:
            limit = _cut(buf, pos, end)
        gap = _GAP.match(buf, pos, limit)  # `*+` matches, possibly empty, at any position
        reached = gap.end() if gap else pos
        if limit < end and (reached == limit or buf[reached] not in _BRACKETS):
            # The piece is done, or a token the cut fell into stopped it: go on
            # from there with the next (wider) piece.
            if reached < limit:
                limit = _cut(buf, limit, end)
            pos = reached
            continue
        pos = reached
        if pos >= end:
            raise ValueError("unexpected end of body inside a nested value")
        byte = buf[pos]
        following = buf[pos + 1] if pos + 1 < end else 0
        if byte == _OPEN_OBJECT or byte == _OPEN_ARRAY:
            if following != _OPEN_OBJECT and following != _OPEN_ARRAY:
                owed.append(_CLOSE_OBJECT if byte == _OPEN_OBJECT else _CLOSE_ARRAY)
                pos += 1
                if len(owed) > MAX_DEPTH:
                    raise ValueError(f"nested too deeply (over {MAX_DEPTH} levels) at byte {pos}")
                continue
            run = _OPENERS.match(buf, pos)
            assert run is not None  # it starts with an opening bracket
            owed += run.group().translate(_CLOSER_OF)
            pos = run.end()
            if len(owed) > MAX_DEPTH:
                raise ValueError(f"nested too deeply (over {MAX_DEPTH} levels) at byte {pos}")
        elif byte == _CLOSE_OBJECT or byte == _CLOSE_ARRAY:
            if following != _CLOSE_OBJECT and following != _CLOSE_ARRAY:
                if owed[-1] != byte:
                    _mismatch(buf, pos, owed)
                owed.pop()
                pos += 1
            else:
                match = _CLOSERS.match(buf, pos)
                assert match is not None  # it starts with a closing bracket
                run = match.group()[: len(owed)]
                at = len(owed) - len(run)
                if run != owed[at:][::-1]:
                    _mismatch(buf, pos, owed)
                del owed[at:]
                pos += len(run)
            if not owed:
                return pos
        else:
            raise ValueError(f"unexpected byte {chr(byte)!r} at byte {pos} in a nested value")


def _mismatch(buf: bytes, pos: int, owed: bytearray) -> NoReturn:
    # The first closing bracket from `pos` on that is not the one owed.
    for offset, want in enumerate(reversed(owed)):
        if buf[pos + offset] != want:
            got = chr(buf[pos + offset])
            raise ValueError(f"unexpected byte {got!r} at byte {pos + offset} in a nested value")
    raise AssertionError("unreachable: the closing brackets differ from what is owed")
