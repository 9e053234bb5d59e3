"""What the Requests page shows, read from its URL (pure).

Every filter, the search, the page (a keyset cursor) and the page size live in
the query string, so a list can be bookmarked, shared and reached with Back:

- `model`, `org`, `session` (exact values), `status` (`2xx`…`5xx`, `error`, or a
  code such as `429`), `outcome`, `stream` (`yes`/`no`);
- `range` (a preset: the last 1h, 24h, 7d, 30d or 90d) or `from`/`to` (ISO 8601,
  epoch milliseconds, or a `datetime-local` value read in `tz`);
- `q`, the search: a request id prefix (4 to 32 hex digits), a session id prefix
  (8 hex digits, a dash, more), a model name known to the log, or else words of
  the prompts and replies (the conversation word index; every word must match);
- `before`/`after`: the place of the last (first) row of the page the link came
  from, `<epoch ms>` or `<epoch ms>_<request id>`; `limit`: rows per page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from conversations.text import words_of
from stats.timebuckets import TimeError, zone
from storage import queries as q

PRESETS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MAX_QUERY_WORDS = 10
MAX_TEXT = 200  # characters of a text parameter

ID_PREFIX = re.compile(r"^[0-9a-f]{4,32}$")
SESSION_PREFIX = re.compile(r"^[0-9a-f]{8}-[0-9a-f-]{0,28}$")
_CURSOR = re.compile(r"^(-?[0-9]{1,15})(?:_([0-9a-f]{32}))?$")
_EPOCH_MS = re.compile(r"^-?[0-9]{1,15}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STREAM = {"yes": True, "no": False}


class FilterError(ValueError):
    """A URL parameter the page cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class Search:
    """How `q` was understood: `kind` is `id`, `session`, `model` or `words`."""

    text: str
    kind: str
    words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ListQuery:
    filter: q.RequestFilter
    search: Search | None
    cursor: q.Cursor | None
    newest_first: bool  # False: the page after `after`, read towards the newest
    limit: int
    preset: str | None
    tz_name: str
    # What the form shows back, as the user typed it.
    values: dict[str, str] = field(default_factory=dict)

    @property
    def first_page(self) -> bool:
        return self.cursor is None

    @property
    def tail_allowed(self) -> bool:
        """The tail adds rows on top: only on the newest page, not during a
        word or id search, and only while the range is open at the top."""
        return (
            self.first_page
            and (self.search is None or self.search.kind in ("session", "model"))
            and self.filter.end is None
        )


def _text(args: Mapping[str, str], name: str) -> str | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if len(raw) > MAX_TEXT or any(ord(c) < 32 for c in raw):
        raise FilterError(f"{name}: must be at most {MAX_TEXT} printable characters")
    return raw


def parse_cursor(name: str, raw: str) -> q.Cursor:
    match = _CURSOR.fullmatch(raw)
    if match is None:
        raise FilterError(f"{name}: not a list position: {raw[:40]!r}")
    try:
        when = datetime.fromtimestamp(int(match[1]) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise FilterError(f"{name}: not a list position: {raw[:40]!r}") from None
    return q.Cursor(when, match[2])


def format_cursor(cursor: q.Cursor) -> str:
    """The URL form of a place: epoch milliseconds (what BSON dates hold), then the id."""
    millis = round(cursor.timestamp.timestamp() * 1000)
    return f"{millis}_{cursor.request_id}" if cursor.request_id else str(millis)


def _instant(name: str, raw: str, tz: ZoneInfo, *, end: bool) -> datetime:
    try:
        if _EPOCH_MS.fullmatch(raw):
            return datetime.fromtimestamp(int(raw) / 1000, UTC)
        if _DATE.fullmatch(raw):
            day = datetime.fromisoformat(raw).replace(tzinfo=tz)
            return (day + timedelta(days=1) if end else day).astimezone(UTC)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except (ValueError, OverflowError, OSError):
        raise FilterError(f"{name}: not a date, a date-time or epoch milliseconds") from None
    # A naive value is what a datetime-local input sends: wall time in the zone.
    return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)


def understand(text: str, known_models: frozenset[str]) -> Search:
    """What a search box entry asks for (see the module docstring)."""
    lowered = text.lower()
    if ID_PREFIX.fullmatch(lowered):
        return Search(text, "id", tuple(words_of(text)[:MAX_QUERY_WORDS]))
    if SESSION_PREFIX.fullmatch(lowered):
        return Search(text, "session")
    if text in known_models:
        return Search(text, "model")
    words = tuple(dict.fromkeys(words_of(text)))[:MAX_QUERY_WORDS]
    if not words:
        raise FilterError("q: nothing to search for: type a word, an id or a model")
    return Search(text, "words", words)


def parse_list_query(
    args: Mapping[str, str], now: datetime, known_models: frozenset[str] = frozenset()
) -> ListQuery:
    """The page `args` (first value of each query parameter) describe."""
    values = {k: v for k, v in args.items() if isinstance(v, str) and v.strip()}
    tz_name = _text(args, "tz") or "UTC"
    try:
        tz = zone(tz_name)
    except TimeError as exc:
        raise FilterError(str(exc)) from None
    status = _text(args, "status")
    if status is not None and status not in q.STATUS_CHOICES and not q.STATUS_CODE.match(status):
        raise FilterError(f"status: one of {', '.join(q.STATUS_CHOICES)} or a code like 429")
    outcome = _text(args, "outcome")
    if outcome is not None and outcome not in q.OUTCOMES:
        raise FilterError(f"outcome: one of {', '.join(q.OUTCOMES)}")
    stream = _text(args, "stream")
    if stream is not None and stream not in _STREAM:
        raise FilterError("stream: yes or no")
    start, end, preset = _range(args, now, tz)
    f = q.RequestFilter(
        model=_text(args, "model"),
        status=status,
        outcome=outcome,
        streaming=_STREAM[stream] if stream else None,
        organization=_text(args, "org"),
        session=_text(args, "session"),
        start=start,
        end=end,
    )
    search = None
    if (text := _text(args, "q")) is not None:
        search = understand(text, known_models)
        f = with_search(f, search)
    before, after = _text(args, "before"), _text(args, "after")
    if before and after:
        raise FilterError("before/after: one at a time")
    cursor = parse_cursor("before", before) if before else None
    if after:
        cursor = parse_cursor("after", after)
    limit_raw = _text(args, "limit")
    limit = DEFAULT_PAGE_SIZE
    if limit_raw is not None:
        if not limit_raw.isdigit() or int(limit_raw) not in PAGE_SIZES:
            raise FilterError(f"limit: one of {', '.join(map(str, PAGE_SIZES))}")
        limit = int(limit_raw)
    return ListQuery(f, search, cursor, not after, limit, preset, tz_name, values)


def with_search(f: q.RequestFilter, search: Search) -> q.RequestFilter:
    """The filter narrowed by what the search box asks (an id search is run on
    its own index by the page; its words are the fallback when no id matches)."""
    if search.kind == "session":
        return replace(f, session_prefix=search.text.lower())
    if search.kind == "model":
        return replace(f, model=search.text)
    if search.kind == "words":
        return replace(f, words=search.words)
    return f


def _range(
    args: Mapping[str, str], now: datetime, tz: ZoneInfo
) -> tuple[datetime | None, datetime | None, str | None]:
    raw_from, raw_to = _text(args, "from"), _text(args, "to")
    if raw_from or raw_to:
        start = _instant("from", raw_from, tz, end=False) if raw_from else None
        end = _instant("to", raw_to, tz, end=True) if raw_to else None
        if start is not None and end is not None and end <= start:
            raise FilterError("to: must be after from")
        return start, end, None
    preset = _text(args, "range")
    if preset is None:
        return None, None, None
    if preset not in PRESETS:
        raise FilterError(f"range: one of {', '.join(PRESETS)}")
    return now - PRESETS[preset], None, preset
