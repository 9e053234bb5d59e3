"""SSEDecoder against the WHATWG event-stream rules and the recorded fixtures."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Iterable

import pytest

from streaming.sse import ServerSentEvent, SSEDecoder
from tests.fixtures import COMPLETE_STREAMS, FIXTURE_DIR, STREAMS, events_of, stream_bytes

SMALL_STREAMS = tuple(name for name in STREAMS if len(stream_bytes(name)) < 8192)


def decode_chunks(chunks: Iterable[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.decode(chunk))
    events.extend(decoder.flush())
    return events


def decode(raw: bytes) -> list[ServerSentEvent]:
    return decode_chunks([raw])


def sized(raw: bytes, size: int) -> list[bytes]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def random_chunks(raw: bytes, rng: random.Random, largest: int) -> list[bytes]:
    chunks, i = [], 0
    while i < len(raw):
        n = rng.randint(1, largest)
        chunks.append(raw[i : i + n])
        i += n
    return chunks


def terminated_names(name: str) -> list[str]:
    """Independent of the decoder: the loader's names of complete, data-carrying events."""
    return [
        event
        for event, raw in events_of(name)
        if event and (raw.endswith(b"\n\n") or raw.endswith(b"\r\n\r\n"))
    ]


# --- fixtures ------------------------------------------------------------------------


@pytest.mark.parametrize("name", STREAMS)
def test_fixture_whole(name: str) -> None:
    events = decode(stream_bytes(name))
    assert [e.event for e in events] == terminated_names(name)
    for event in events:
        assert json.loads(event.data)["type"] == event.event


@pytest.mark.parametrize("name", STREAMS)
def test_fixture_one_byte_chunks(name: str) -> None:
    raw = stream_bytes(name)
    assert decode_chunks(sized(raw, 1)) == decode(raw)


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("size", [2, 3, 7, 64, 1000])
def test_fixture_fixed_chunks(name: str, size: int) -> None:
    raw = stream_bytes(name)
    assert decode_chunks(sized(raw, size)) == decode(raw)


@pytest.mark.parametrize("name", SMALL_STREAMS)
def test_fixture_every_two_way_split(name: str) -> None:
    raw = stream_bytes(name)
    expected = decode(raw)
    for i in range(len(raw) + 1):
        assert decode_chunks([raw[:i], raw[i:]]) == expected, i


@pytest.mark.parametrize("name", STREAMS)
def test_fixture_random_chunkings(name: str) -> None:
    raw = stream_bytes(name)
    expected = decode(raw)
    for seed in range(25):
        rng = random.Random(seed)
        largest = rng.choice([3, 17, 200, 5000])
        assert decode_chunks(random_chunks(raw, rng, largest)) == expected, seed


def test_fixture_names_known() -> None:
    assert set(COMPLETE_STREAMS) <= set(STREAMS)
    assert "overloaded_midstream" not in COMPLETE_STREAMS
    assert "cut_before_stop" not in COMPLETE_STREAMS
    # Every fixture file is replayed: none is forgotten in STREAMS.
    on_disk = {path.stem for path in FIXTURE_DIR.glob("*.sse")}
    assert on_disk == set(STREAMS)
    assert set(STREAMS) - set(COMPLETE_STREAMS) == {"overloaded_midstream", "cut_before_stop"}


@pytest.mark.parametrize("name", STREAMS)
def test_events_of_covers_every_byte(name: str) -> None:
    parts = events_of(name)
    assert b"".join(raw for _, raw in parts) == stream_bytes(name)
    assert all(raw for _, raw in parts)


def test_events_of_names() -> None:
    names = [name for name, _ in events_of("text_basic")]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "ping" in names
    assert [n for n, _ in events_of("crlf")] == names
    unknown = [n for n, _ in events_of("pings_unknown")]
    assert unknown[:2] == ["", ""]  # a comment block and a lone retry: block
    assert "content_block_annotation" in unknown
    cut = events_of("cut_before_stop")
    assert cut[-1][0] == "content_block_delta" and not cut[-1][1].endswith(b"\n")


def test_crlf_fixture_matches_text_basic() -> None:
    crlf = decode(stream_bytes("crlf"))
    basic = decode(stream_bytes("text_basic"))
    assert b"\r\n" in stream_bytes("crlf")
    assert [e.event for e in crlf] == [e.event for e in basic]
    assert all("\r" not in e.data for e in crlf)


def test_crlf_fixture_split_inside_every_crlf() -> None:
    raw = stream_bytes("crlf")
    expected = decode(raw)
    cuts = [i + 1 for i in range(len(raw)) if raw[i : i + 2] == b"\r\n"]
    assert len(cuts) > 20
    assert (
        decode_chunks([raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)])
        == expected
    )


def test_pings_unknown_fixture_fields() -> None:
    decoder = SSEDecoder()
    events = decoder.decode(stream_bytes("pings_unknown"))
    assert decoder.retry == 3000
    assert decoder.last_event_id == "evt_0001"
    assert events[0].event == "message_start" and events[0].id == "evt_0001"
    assert "content_block_annotation" in [e.event for e in events]
    assert [e.event for e in events].count("ping") == 3
    assert not any(e.data.startswith(":") for e in events)


def test_long_line_fixture_split_inside_multibyte() -> None:
    raw = stream_bytes("long_line")
    expected = decode(raw)
    assert max(len(line) for line in raw.split(b"\n")) > 100 * 1024
    rocket = "🚀".encode()
    first = raw.index(rocket)
    for offset in range(1, len(rocket)):
        assert decode_chunks([raw[: first + offset], raw[first + offset :]]) == expected
    e_acute = raw.index("é".encode()) + 1
    assert decode_chunks([raw[:e_acute], raw[e_acute:]]) == expected
    text = "".join(
        json.loads(e.data)["delta"].get("text", "")
        for e in expected
        if e.event == "content_block_delta"
    )
    assert "🚀🎉" in text and "Résumé" in text and "\ufffd" not in text


# --- line endings and UTF-8 ----------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol: bytes) -> None:
    raw = eol.join([b"event: a", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])
    assert decode(raw) == [
        ServerSentEvent(event="a", data="1\n2", id=None, retry=None),
        ServerSentEvent(event=None, data="3", id=None, retry=None),
    ]


def test_mixed_line_endings() -> None:
    raw = b"data: a\rdata: b\r\ndata: c\n\r\n"
    assert [e.data for e in decode(raw)] == ["a\nb\nc"]


def test_cr_at_chunk_end_lf_at_next_start_is_one_line_end() -> None:
    events = decode_chunks([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert [e.data for e in events] == ["a\nb"]


def test_lone_cr_then_other_byte_across_chunks() -> None:
    events = decode_chunks([b"data: a\r", b"data: b\r", b"\r"])
    assert [e.data for e in events] == ["a\nb"]


def test_cr_chunk_alone() -> None:
    events = decode_chunks([b"data: a", b"\r", b"\r", b"\n", b"data: b\n\n"])
    assert [e.data for e in events] == ["a", "b"]


def test_multibyte_split_at_every_byte() -> None:
    raw = "data: héllo 🚀 wörld\n\n".encode()
    for i in range(len(raw) + 1):
        assert [e.data for e in decode_chunks([raw[:i], raw[i:]])] == ["héllo 🚀 wörld"]
    assert [e.data for e in decode_chunks(sized(raw, 1))] == ["héllo 🚀 wörld"]


def test_invalid_utf8_replaced() -> None:
    assert [e.data for e in decode(b"data: a\xffb\xc3\n\n")] == ["a\ufffdb\ufffd"]


def test_bom_stripped_only_at_stream_start() -> None:
    bom = b"\xef\xbb\xbf"
    assert [e.data for e in decode_chunks([bom[:2], bom[2:] + b"data: x\n\n"])] == ["x"]
    # Later, a BOM is just part of a field name, so the line is an unknown field.
    assert decode(b"data: x\n\n" + bom + b"data: y\n\n") == decode(b"data: x\n\n")


# --- fields --------------------------------------------------------------------------


def test_comments_ignored() -> None:
    raw = b": hello\n:\ndata: x\n: mid-event comment\ndata: y\n\n: trailing\n"
    assert [e.data for e in decode(raw)] == ["x\ny"]


def test_field_without_colon() -> None:
    assert [e.data for e in decode(b"data\n\n")] == [""]
    assert [e.data for e in decode(b"data\ndata\n\n")] == ["\n"]
    assert decode(b"event\ndata: x\n\n")[0].event is None


def test_only_one_leading_space_stripped() -> None:
    assert decode(b"data:  two\n\n")[0].data == " two"
    assert decode(b"data:none\n\n")[0].data == "none"
    assert decode(b"data: a: b\n\n")[0].data == "a: b"
    assert decode(b"data: x \n\n")[0].data == "x "


def test_data_trailing_newline_removed_once() -> None:
    assert decode(b"data: a\ndata:\n\n")[0].data == "a\n"


def test_empty_data_buffer_not_dispatched() -> None:
    assert decode(b"event: lonely\n\n") == []
    assert decode(b"id: 1\nretry: 5\n\n") == []
    # The event type does not leak into the next event.
    assert decode(b"event: lonely\n\ndata: x\n\n")[0].event is None


def test_empty_data_line_is_dispatched() -> None:
    assert decode(b"event: e\ndata:\n\n") == [ServerSentEvent("e", "", None, None)]


def test_event_type_last_wins_and_resets() -> None:
    events = decode(b"event: a\nevent: b\ndata: 1\n\ndata: 2\n\n")
    assert [(e.event, e.data) for e in events] == [("b", "1"), (None, "2")]


def test_id_persists_and_nul_ignored() -> None:
    raw = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\x003\ndata: c\n\nid\ndata: d\n\n"
    decoder = SSEDecoder()
    events = decoder.decode(raw)
    assert [e.id for e in events] == ["1", "1", "1", ""]
    assert decoder.last_event_id == ""


def test_retry_only_ascii_digits() -> None:
    raw = (
        b"retry: 1500\ndata: a\n\nretry: 15x\ndata: b\n\n"
        b"retry:\ndata: c\n\nretry: \xc2\xb2\ndata: d\n\n"
    )
    decoder = SSEDecoder()
    events = decoder.decode(raw)
    assert [e.retry for e in events] == [1500, None, None, None]
    assert decoder.retry == 1500
    assert decode(b"retry: -5\ndata: a\n\n")[0].retry is None
    assert decode(b"retry: " + b"9" * 5000 + b"\ndata: a\n\n")[0].data == "a"


def test_unknown_fields_ignored() -> None:
    assert decode(b"foo: bar\nDATA: x\ndata: y\nEvent: z\n\n") == [
        ServerSentEvent(None, "y", None, None)
    ]


def test_event_is_frozen() -> None:
    event = decode(b"data: x\n\n")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = "y"  # type: ignore[misc]


def test_accepts_bytearray_and_memoryview() -> None:
    decoder = SSEDecoder()
    events = decoder.decode(bytearray(b"data: a\n"))
    events += decoder.decode(memoryview(b"\ndata: b\n\n"))
    assert [e.data for e in events] == ["a", "b"]
    assert decoder.decode(b"") == []


# --- end of stream -------------------------------------------------------------------


def test_unterminated_event_discarded_and_reported() -> None:
    decoder = SSEDecoder()
    assert [e.data for e in decoder.decode(b"data: a\n\ndata: b\n")] == ["a"]
    assert decoder.pending_bytes == len(b"data: b\n")
    assert decoder.flush() == []
    assert decoder.pending_bytes == len(b"data: b\n")
    # Another flush reports the same; fresh bytes start a clean count.
    assert decoder.flush() == [] and decoder.pending_bytes == len(b"data: b\n")
    assert [e.data for e in decoder.decode(b"data: c\n\n")] == ["c"]
    assert decoder.pending_bytes == 0


def test_unterminated_line_discarded_and_reported() -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b'data: a\n\ndata: {"tru') != []
    assert decoder.pending_bytes == len(b'data: {"tru')
    assert decoder.flush() == []
    assert decoder.pending_bytes == len(b'data: {"tru')


def test_clean_end_has_no_pending_bytes() -> None:
    decoder = SSEDecoder()
    decoder.decode(b"data: a\n\n: keep-alive\n\n: trailing comment\n")
    decoder.flush()
    assert decoder.pending_bytes == 0


@pytest.mark.parametrize("name", COMPLETE_STREAMS)
def test_complete_fixtures_end_clean(name: str) -> None:
    decoder = SSEDecoder()
    for chunk in sized(stream_bytes(name), 5):
        decoder.decode(chunk)
    assert decoder.flush() == [] and decoder.pending_bytes == 0


@pytest.mark.parametrize("name", ["cut_before_stop", "overloaded_midstream"])
def test_cut_fixture_pending(name: str) -> None:
    decoder = SSEDecoder()
    decoder.decode(stream_bytes(name))
    decoder.flush()
    tail = events_of(name)[-1][1]
    if name == "cut_before_stop":
        assert decoder.pending_bytes == len(tail)
    else:
        assert decoder.pending_bytes == 0


# --- robustness and speed ------------------------------------------------------------


def test_garbage_never_raises() -> None:
    alphabet = b"\r\n:\x00\xff\xc3\xa9 data event id retry \xf0\x9f\x9a\x80x9"
    for seed in range(200):
        rng = random.Random(seed)
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        events = decode_chunks(random_chunks(raw, rng, 9))
        assert events == decode(raw), seed
        assert all(isinstance(e, ServerSentEvent) for e in events)
    random_bytes = random.Random(7).randbytes(100_000)
    decode_chunks(sized(random_bytes, 13))


def test_long_line_in_small_chunks_is_linear() -> None:
    text = "é🚀" * 70_000  # ~420 KiB of UTF-8 on one line
    raw = f"data: {text}\n\n".encode()
    for size in (1, 7):
        started = time.perf_counter()
        events = decode_chunks(sized(raw, size))
        elapsed = time.perf_counter() - started
        assert [e.data for e in events] == [text]
        # Linear work is well under a second; re-scanning the buffer per chunk is minutes.
        assert elapsed < 10, elapsed


def test_many_small_events_in_one_chunk() -> None:
    raw = b"".join(b'event: ping\ndata: {"n": %d}\n\n' % i for i in range(20_000))
    events = decode(raw)
    assert len(events) == 20_000 and events[-1].data == '{"n": 19999}'
