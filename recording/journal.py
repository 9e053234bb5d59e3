"""The hand-off journal: workers append finished exchanges, the recorder reads them.

The public API lives here; the format, the writer and the reader are in
journal_format.py, journal_writer.py and journal_reader.py (their docstrings
describe the layout, the drop policy and the crash semantics).
"""

from __future__ import annotations

from recording.journal_files import JournalBusyError
from recording.journal_format import (
    FORMAT_VERSION,
    JOURNAL_CLOSE_TIMEOUT,
    Position,
    Record,
)
from recording.journal_reader import JournalReader
from recording.journal_writer import JournalWriter

__all__ = [
    "FORMAT_VERSION",
    "JOURNAL_CLOSE_TIMEOUT",
    "JournalBusyError",
    "JournalReader",
    "JournalWriter",
    "Position",
    "Record",
]
