"""Conversation search (conversations.search): the newest matching requests,
grouped by conversation, latest match first, paged by keyset and bounded in the
documents one page reads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from conversations import search as cs
from storage.mongo import REQUESTS, ensure_all_indexes
from storage.queries import Cursor
from tests.aggregate_counter import count_aggregate_rows

NOW = datetime.now(UTC).replace(microsecond=0)
PROJECTS = ("/src/alpha", "/src/beta")


def request(i: int, conversation: str, at: datetime, words: list[str]) -> dict[str, Any]:
    return {
        "_id": f"{i:032x}",
        "requestId": f"{i:032x}",
        "timestamp": at,
        "conversation": {
            "id": conversation,
            "projectPath": PROJECTS[int(conversation.rsplit("-", 1)[1]) % 2],
            "words": words,
            "turns": [{"role": "user", "content": [{"type": "text", "text": " ".join(words)}]}],
        },
    }


def interleaved(count: int, conversations: int) -> list[dict[str, Any]]:
    """`count` requests of `conversations` conversations taking turns, minutes to
    days apart, a few sharing one millisecond; every third lacks `parser`."""
    docs = []
    at = NOW
    for i in range(count):
        at -= timedelta(minutes=(i % 7) * 50) if i % 5 else timedelta(0)
        words = ["currency", "parser"] if i % 3 else ["currency"]
        docs.append(request(i, f"conv-{(i * 7) % conversations}", at, words))
    return docs


def newest_first(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(docs, key=lambda d: (d["timestamp"], d["requestId"]), reverse=True)


def latest_first(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(conversation, its newest request) in the order of the newest request."""
    out: dict[str, str] = {}
    for d in newest_first(docs):
        out.setdefault(d["conversation"]["id"], d["requestId"])
    return list(out.items())


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The request documents each aggregation of the log returned."""
    return count_aggregate_rows(monkeypatch, REQUESTS)


async def every_page(
    search: Callable[[Cursor | None], Any],
) -> list[cs.SearchPage]:
    pages: list[cs.SearchPage] = []
    place: Cursor | None = None
    for _ in range(200):
        page = await search(place)
        pages.append(page)
        if page.following is None:
            return pages
        place = page.following
    raise AssertionError("the pages never ended")


async def test_latest_match_first_and_pages_cover_every_match_once(
    db: AsyncDatabase[Any],
) -> None:
    await ensure_all_indexes(db, None)
    docs = interleaved(90, 9)
    await db[REQUESTS].insert_many(docs)
    matching = [d for d in docs if "parser" in d["conversation"]["words"]]
    first = await cs.search(db, ["currency", "parser"], limit=4)
    expected = latest_first(matching)[:4]
    assert [(h.conversation_id, h.request_id) for h in first.hits] == expected
    assert first.following is not None and not first.stopped
    pages = await every_page(
        lambda place: cs.search(db, ["parser", "currency"], before=place, limit=4, max_docs=25)
    )
    # Each page: distinct conversations by latest match; its matches are exactly
    # the matching requests between its place and the next page's.
    bounds = [None] + [p.following for p in pages]
    for page, upper, lower in zip(pages, bounds, bounds[1:], strict=False):
        ids = [h.conversation_id for h in page.hits]
        assert len(ids) == len(set(ids)) <= 4
        assert [h.last_match for h in page.hits] == sorted(
            (h.last_match for h in page.hits), reverse=True
        )
        stretch = [d for d in matching if _between(d, lower, upper)]
        assert sum(h.matches for h in page.hits) == len(stretch) == page.read
        assert [(h.conversation_id, h.request_id) for h in page.hits] == latest_first(stretch)
    assert sum(p.read for p in pages) == len(matching)


def _between(doc: dict[str, Any], lower: Cursor | None, upper: Cursor | None) -> bool:
    """The doc lies after `upper` (exclusive) and up to `lower` (inclusive), in
    the newest-first order of (timestamp, request id)."""
    key = (doc["timestamp"], doc["requestId"])

    def place(c: Cursor) -> tuple[datetime, str]:
        return (c.timestamp, c.request_id or "")

    return (upper is None or key < place(upper)) and (lower is None or key >= place(lower))


async def test_a_page_reads_at_most_its_budget(db: AsyncDatabase[Any], counted: list[int]) -> None:
    """Two conversations taking turns over 300 matching requests: a page of ten
    conversations cannot fill; it stops at its budget and says where to go on."""
    await ensure_all_indexes(db, None)
    docs = interleaved(300, 2)
    await db[REQUESTS].insert_many(docs)
    page = await cs.search(db, ["currency"], limit=10, max_docs=40)
    assert sum(counted) <= 40 + len(counted)  # one look-ahead row per query at most
    assert page.read <= 40 and page.stopped and page.following is not None
    assert [(h.conversation_id, h.request_id) for h in page.hits] == latest_first(
        newest_first(docs)[: page.read]
    )
    counted.clear()
    found = await cs.search(db, ["currency"], limit=10)
    assert sum(counted) <= cs.PAGE_DOCS + len(counted) and found.read == cs.PAGE_DOCS
    # Pages go on from there until every match was read once.
    pages = await every_page(
        lambda place: cs.search(db, ["currency"], before=place, limit=10, max_docs=40)
    )
    assert sum(p.read for p in pages) == len(docs) and not pages[-1].stopped


async def test_a_full_page_stops_at_the_first_conversation_left_out(
    db: AsyncDatabase[Any], counted: list[int]
) -> None:
    await ensure_all_indexes(db, None)
    docs = [request(i, f"conv-{i}", NOW - timedelta(minutes=i), ["parser"]) for i in range(60)]
    await db[REQUESTS].insert_many(docs)
    page = await cs.search(db, ["parser"], limit=5)
    assert [h.conversation_id for h in page.hits] == [f"conv-{i}" for i in range(5)]
    assert page.following == Cursor(docs[4]["timestamp"], docs[4]["requestId"])
    assert page.read == 5 and not page.stopped
    # It read what the page needed, not the 60 matches nor the budget.
    assert sum(counted) < 30


async def test_filters_narrow_the_search(db: AsyncDatabase[Any]) -> None:
    await ensure_all_indexes(db, None)
    docs = interleaved(40, 4)
    await db[REQUESTS].insert_many(docs)
    alpha = [d for d in docs if d["conversation"]["projectPath"] == "/src/alpha"]
    found = await cs.search(db, ["currency"], project="/src/alpha", limit=10)
    assert [(h.conversation_id, h.request_id) for h in found.hits] == latest_first(alpha)
    assert found.following is None and sum(h.matches for h in found.hits) == len(alpha)
    start, end = NOW - timedelta(days=2), NOW - timedelta(hours=12)
    window = [d for d in docs if start <= d["timestamp"] < end]
    found = await cs.search(db, ["currency"], start=start, end=end, limit=10)
    assert [(h.conversation_id, h.request_id) for h in found.hits] == latest_first(window)
    assert (await cs.search(db, ["currency", "nothing"], limit=10)).hits == []


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    place = Cursor(datetime(2026, 11, 20, 12, 0, 0, 123000, tzinfo=UTC), "ab" * 16)
    assert cs.parse_cursor(cs.cursor_text(place)) == place
    edge = Cursor(datetime(2026, 11, 20, tzinfo=UTC))
    assert cs.cursor_text(edge) == str(int(edge.timestamp.timestamp() * 1000))
    assert cs.parse_cursor(cs.cursor_text(edge)) == edge
    for bad in ("", "x", "12_", "-5_ab", "12_a b", "1" * 16, "12_" + "a" * 129):
        assert cs.parse_cursor(bad) is None, bad
