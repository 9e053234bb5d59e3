"""Whether streamed JSON text has closed its top-level value, fed fragment by fragment.

The stream translator closes a tool_use block as soon as its arguments are complete
(so the client may start the tool, as Anthropic's one-block-at-a-time streams allow)
and keeps it open while they are not (a backend that interleaves calls may still add
to it). Only brackets, quotes and escapes are tracked, never the values, and each
fragment is scanned once: linear in the arguments, whatever the fragment sizes, an
escape or a quote split between two fragments included. It is not a validator; the
joined text is parsed once, when the block closes.
"""

from __future__ import annotations

import re

_SIGNIFICANT = re.compile(r'[\\"{}\[\]]')


class JsonBalance:
    __slots__ = ("_broken", "_depth", "_escaped", "_in_string", "_opened")

    def __init__(self) -> None:
        self._depth = 0
        self._in_string = False
        self._escaped = False  # the last fragment ended inside a string on a backslash
        self._opened = False
        self._broken = False

    @property
    def complete(self) -> bool:
        """An object or array was opened and every bracket since is closed."""
        return self._opened and self._depth == 0 and not self._in_string and not self._broken

    def feed(self, text: str) -> None:
        start = 0
        if self._escaped and text:
            self._escaped = False
            start = 1
        skip = -1
        for match in _SIGNIFICANT.finditer(text, start):
            pos = match.start()
            if pos == skip:
                continue
            char = match.group()
            if self._in_string:
                if char == "\\":
                    skip = pos + 1
                    if skip == len(text):
                        self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
                self._opened = True
            elif char in "}]":
                self._depth -= 1
                if self._depth < 0:
                    self._broken = True
