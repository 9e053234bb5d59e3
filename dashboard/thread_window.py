"""A long conversation read a window of requests at a time, for the thread view.

Rebuilding a whole thread reads every request of the conversation, and the
development database fetches and sorts a whole index range before it limits: a
conversation of 2,000 requests costs seconds. The thread view therefore reads
one window: from a place in the conversation (its start, or a cursor) up to
`WINDOW_MAIN` main-thread requests, with the subagent and side-call requests
made meanwhile, plus the main request after them (the `lookahead`, whose tool
results answer the window's last calls, and where the next window starts).

Windows are read in time ranges on the `conversation_time` index, sized from
the conversation's summary (its request count over its duration) and widened by
what each range found, so every query stays within the window's few requests:
at most `MAX_ROUNDS` queries and `MAX_WINDOW_DOCS` documents per window.

A window ends before a main request, never right after a failed one (its retry
follows), so a subagent's requests stay with the call that started them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from conversations import queries as q
from conversations.thread import order_key
from storage.mongo import REQUESTS

WINDOW_MAIN = 20
MAX_WINDOW_DOCS = 400
MAX_ROUNDS = 12
MIN_SPAN = timedelta(seconds=1)
MAX_GROWTH = 4.0
_CURSOR = re.compile(r"^(\d{1,15})_(\d{1,9})_([A-Za-z0-9._:-]{0,128})$")

Doc = dict[str, Any]


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A place in a conversation's log order: (timestamp, message count, request id)."""

    at: datetime
    n: int
    rid: str

    @classmethod
    def of(cls, doc: Doc) -> Cursor:
        at = doc["timestamp"]
        return cls(
            at if at.tzinfo else at.replace(tzinfo=UTC),
            doc.get("messageCount") or 0,
            doc["requestId"],
        )

    def text(self) -> str:
        return f"{int(self.at.timestamp() * 1000)}_{self.n}_{self.rid}"

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        found = _CURSOR.match(text)
        if found is None:
            return None
        at = datetime.fromtimestamp(int(found.group(1)) / 1000, UTC)
        return cls(at, int(found.group(2)), found.group(3))


def _key(doc: Doc) -> tuple[datetime, int, str]:
    at, n, rid = order_key(doc)
    return (at if at.tzinfo else at.replace(tzinfo=UTC), n, rid)


def _main(doc: Doc) -> bool:
    return (doc.get("conversation") or {}).get("thread") == "main"


@dataclass(slots=True)
class Window:
    docs: list[Doc]  # this window's requests, in log order
    lookahead: Doc | None  # the first main request of the next window
    next: Cursor | None  # where the next window starts (None: this is the last)


def cut(docs: list[Doc], start: Cursor | None, mains: int = WINDOW_MAIN) -> Window:
    """The window of `docs` (read from `start` on, maybe beyond the window)
    holding `mains` main requests; the next window starts at the main request
    after them, unless the last one failed (its retry belongs with it)."""
    ordered = sorted(docs, key=_key)
    if start is not None:
        ordered = [d for d in ordered if _key(d) >= (start.at, start.n, start.rid)]
    seen = 0
    previous_failed = False
    for index, doc in enumerate(ordered):
        if not _main(doc):
            continue
        if seen >= mains and not previous_failed:
            return Window(ordered[:index], doc, Cursor.of(doc))
        seen += 1
        conv = doc.get("conversation") or {}
        previous_failed = bool(conv.get("error")) and not conv.get("reply")
    return Window(ordered, None, None)


def _after(doc: Doc) -> Cursor:
    """The place just after `doc`: a window that stopped at its bounds goes on there."""
    found = Cursor.of(doc)
    return Cursor(found.at, found.n, found.rid + "\x00")


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def first_span(summary: Doc | None) -> timedelta:
    """The time range expected to hold a window's requests."""
    start, end = (
        _aware((summary or {}).get("startTime")),
        _aware((summary or {}).get("lastActivity")),
    )
    count = (summary or {}).get("requestCount")
    if start is None or end is None or not isinstance(count, int) or count <= 0:
        return timedelta(days=1)
    per_request = (end - start) / count
    return max(MIN_SPAN, per_request * WINDOW_MAIN * 2)


async def read_window(
    db: AsyncDatabase[Any], conversation_id: str, summary: Doc | None, start: Cursor | None
) -> Window:
    """The window starting at `start` (None: the conversation's first request)."""
    requests = db[REQUESTS]
    lower = start.at if start is not None else _aware((summary or {}).get("startTime"))
    end = _aware((summary or {}).get("lastActivity"))
    span = first_span(summary)
    docs: list[Doc] = []
    for rounds in range(1, MAX_ROUNDS + 1):
        upper = lower + span if lower is not None else None
        # The last range is left open: it reaches the end of the conversation.
        last = upper is None or end is None or upper > end or rounds == MAX_ROUNDS
        where: dict[str, Any] = q.thread_filter(conversation_id)
        bounds: dict[str, datetime] = {}
        if lower is not None:
            bounds["$gte"] = lower
        if not last and upper is not None:
            bounds["$lt"] = upper
        if bounds:
            where["timestamp"] = bounds
        left = MAX_WINDOW_DOCS + 1 - len(docs)
        found = (
            await requests.find(where, q.THREAD_PROJECTION)
            .sort([("timestamp", 1)])
            .limit(left)
            .to_list(None)
        )
        docs += found
        window = cut(docs, start)
        if window.next is not None or last or len(docs) > MAX_WINDOW_DOCS:
            break
        # Sized by what this range found: the requests still wanted at its pace.
        wanted = WINDOW_MAIN + 1 - sum(1 for d in window.docs if _main(d))
        pace = len(found) / span.total_seconds() if found else 0.0
        growth = (
            MAX_GROWTH
            if pace <= 0
            else min(MAX_GROWTH, max(1.0, wanted / (pace * span.total_seconds())))
        )
        lower, span = upper, span * growth
    if window.next is None and len(docs) > MAX_WINDOW_DOCS:
        # The bound cut the window short: the next one goes on after its last request.
        kept = window.docs[:MAX_WINDOW_DOCS]
        return Window(kept, None, _after(kept[-1]))
    return window
