"""The SSE decoder and the header helpers stay linear on adversarial streams (pure).

Timing rules (best of three, 256 KB vs 1 MB) are those of
`tests.storage.test_linear_time.assert_linear`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streaming.sse import ServerSentEvent, SSEDecoder
from tests.storage.test_linear_time import assert_linear

# Serial (make test's second phase): timings that must grow linearly (1 MB vs 256 KB).
pytestmark = pytest.mark.serial


def _decode_all(chunks: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.decode(chunk))
    decoder.flush()
    return events


def _split(raw: bytes, size: int) -> list[bytes]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


STREAMS: dict[str, Callable[[int], list[bytes]]] = {
    "one-long-data-line": lambda n: [b"data: " + b"x" * n + b"\n\n"],
    "long-line-in-small-chunks": lambda n: _split(b"data: " + b"x" * n + b"\n\n", 64),
    "long-line-never-ended": lambda n: _split(b"data: " + b"x" * n, 1024),
    "many-tiny-events": lambda n: [b"data: x\n\n" * (n // 9)],
    "many-data-lines-one-event": lambda n: [b"data:\n" * (n // 6) + b"\n"],
    "cr-line-ends": lambda n: [b"\r" * n],
    "crlf-split-across-chunks": lambda n: [b"data: x\r", b"\n"] * (n // 9),
    "comments": lambda n: [b":" * n + b"\n", b": keep-alive\n" * (n // 13)],
    "huge-retry": lambda n: [b"retry: " + b"9" * n + b"\n\n"],
    "long-ids-and-types": lambda n: [b"id: " + b"i" * n + b"\nevent: " + b"e" * n + b"\n\n"],
    "field-without-colon": lambda n: [b"data" * (n // 4) + b"\n\n"],
    "invalid-utf8": lambda n: [b"data: " + b"\xff\xfe" * (n // 2) + b"\n\n"],
}


@pytest.mark.parametrize("make", STREAMS.values(), ids=STREAMS.keys())
def test_sse_decoding_is_linear(make: Callable[[int], list[bytes]]) -> None:
    assert_linear(_decode_all, make)


def test_the_adversarial_streams_still_decode_right() -> None:
    # The inputs above are not rejected or mangled, only decoded in linear time.
    (event,) = _decode_all(STREAMS["long-line-in-small-chunks"](1000))
    assert event.data == "x" * 1000
    assert len(_decode_all(STREAMS["many-tiny-events"](900))) == 100
    (joined,) = _decode_all(STREAMS["many-data-lines-one-event"](60))
    assert joined.data == "\n" * 9
    assert len(_decode_all(STREAMS["crlf-split-across-chunks"](90))) == 0  # no blank line
    decoder = SSEDecoder()
    decoder.decode(b"retry: " + b"9" * 10_000 + b"\n\n")
    assert decoder.retry is None  # beyond int()'s digits: not a usable delay
