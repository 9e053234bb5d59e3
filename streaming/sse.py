"""Incremental Server-Sent Events decoder (WHATWG HTML, "Interpreting an event stream").

It sits beside the relay loop and sees every chunk of every stream, so the work per
chunk is bounded by the chunk: the unterminated tail is kept as a bytearray, only the
new chunk is searched for line ends, and lines are split on bytes and decoded whole
(so a multi-byte UTF-8 character split across chunks decodes correctly).

Deviations from a browser EventSource, all deliberate:

- `ServerSentEvent.event` is None when the stream named no type; the spec's default
  type is "message".
- `retry` on an event is the last valid `retry:` value seen in that event's block; the
  stream-wide reconnection time is `SSEDecoder.retry`.
- At end of stream an unterminated event is discarded, as the spec says, but the
  decoder reports how much was left over (`pending_bytes`) so a caller can tell that
  the stream was cut mid-event.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True, frozen=True)
class ServerSentEvent:
    event: str | None
    data: str
    id: str | None
    retry: int | None


class SSEDecoder:
    """Feed raw bytes with `decode`, call `flush` at end of stream. Never raises."""

    __slots__ = (
        "_after_cr",
        "_data",
        "_discarded",
        "_event",
        "_event_bytes",
        "_event_retry",
        "_started",
        "_tail",
        "last_event_id",
        "retry",
    )

    def __init__(self) -> None:
        # Bytes of the line being received; it never contains CR or LF.
        self._tail = bytearray()
        # The previous chunk ended in CR: a LF starting the next one belongs to it.
        self._after_cr = False
        # False until the first line is complete: only it may carry a BOM.
        self._started = False
        self._data: list[str] = []
        self._event: str | None = None
        self._event_retry: int | None = None
        # Bytes of field lines taken into the event being built (comments excluded).
        self._event_bytes = 0
        # What the last flush threw away, reported until more bytes arrive.
        self._discarded = 0
        self.last_event_id: str | None = None
        self.retry: int | None = None

    @property
    def pending_bytes(self) -> int:
        """Bytes received since the last event boundary that belong to no dispatched
        event: the unterminated line plus the field lines of an unfinished event (each
        line end counted as one byte). Non-zero after `flush` means the stream was cut
        mid-event; it keeps that value until more bytes are decoded."""
        return len(self._tail) + self._event_bytes + self._discarded

    def decode(self, chunk: bytes | bytearray | memoryview) -> list[ServerSentEvent]:
        if not chunk:
            return []
        self._discarded = 0
        if not isinstance(chunk, bytes):
            chunk = bytes(chunk)
        if self._after_cr:
            self._after_cr = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if b"\n" not in chunk and b"\r" not in chunk:
            # Fast path for pieces of a long line: amortised O(len(chunk)).
            self._tail += chunk
            return []
        if self._tail:
            self._tail += chunk
            data = bytes(self._tail)
        else:
            data = chunk
        if b"\r" in data:
            self._after_cr = data[-1] == 0x0D
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        self._tail = bytearray(lines.pop())
        events: list[ServerSentEvent] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of stream. Per spec an event without its terminating blank line (and
        an unterminated last line) is discarded, so this returns no events; the
        amount discarded stays readable in `pending_bytes`."""
        self._discarded = self.pending_bytes
        self._tail = bytearray()
        self._event_bytes = 0
        self._after_cr = False
        self._data = []
        self._event = None
        self._event_retry = None
        return []

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if not self._started:
            self._started = True
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
        if not raw:
            return self._dispatch()
        if raw[0] == 0x3A:  # ':' starts a comment (keep-alives)
            return None
        self._event_bytes += len(raw) + 1
        line = raw.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value or None
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                try:
                    retry = int(value)
                except ValueError:  # beyond int()'s digit limit: not a usable delay
                    return None
                self.retry = self._event_retry = retry
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event, retry = self._data, self._event, self._event_retry
        self._data = []
        self._event = None
        self._event_retry = None
        self._event_bytes = 0
        if not data:
            return None
        return ServerSentEvent(
            event=event, data="\n".join(data), id=self.last_event_id, retry=retry
        )
