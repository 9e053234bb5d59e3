"""A long conversation read a window of requests at a time: where windows end,
how a page of one window pairs calls and results across its edges, and that
each read stays within a bounded time range of the index (against the test
database)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from conversations.summary_writer import summary_writer
from conversations.thread import rebuild
from dashboard.thread_page import _results
from dashboard.thread_view import Place, build_page
from dashboard.thread_window import (
    MAX_WINDOW_DOCS,
    WINDOW_MAIN,
    Cursor,
    cut,
    read_window,
)
from storage.mongo import CONVERSATIONS, REQUESTS, ensure_conversation_indexes, ensure_indexes
from tests.conversations.helpers import T0, documents_of
from tests.dashboard.conversation_sessions import long_session
from tests.fixtures.conversations import exchanges
from tests.storage.conftest import db

__all__ = ["db"]


def _main_session() -> list[dict[str, Any]]:
    return [d for d in documents_of(exchanges("main_session")) if d["conversation"]]


def _threads(docs: list[dict[str, Any]]) -> list[str]:
    return [d["conversation"]["thread"] for d in docs]


# ---- where a window ends (pure) ----------------------------------------------------------
def test_a_window_ends_before_a_main_request() -> None:
    docs = _main_session()
    first = cut(list(reversed(docs)), None, 3)  # any input order
    assert _threads(first.docs) == [
        "auxiliary",
        "main",
        "auxiliary",
        "main",
        "main",
        "subagent",  # the subagent stays with the call that started it
        "subagent",
    ]
    assert first.lookahead is not None and first.lookahead["conversation"]["start"] == 6
    assert first.next == Cursor.of(first.lookahead)
    # The failed request and its retry stay together, whatever the count says.
    second = cut(docs, first.next, 2)
    starts = [d["conversation"]["start"] for d in second.docs]
    assert starts == [6, 8, 8] and second.docs[1]["conversation"]["error"]
    rest = cut(docs, second.next, 100)
    assert rest.next is None and rest.lookahead is None
    seen = first.docs + second.docs + rest.docs
    assert [d["requestId"] for d in seen] == [d["requestId"] for d in docs]


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    doc = _main_session()[3]
    cursor = Cursor.of(doc)
    assert Cursor.parse(cursor.text()) == cursor
    for bad in ("", "x", "1_2", "1_2_a b", "99999999999999999_1_a", "1_2_" + "a" * 200):
        assert Cursor.parse(bad) is None, bad


def test_calls_and_results_across_the_edge_of_a_window() -> None:
    docs = _main_session()
    first = cut(docs, None, 3)
    thread, _ = rebuild(first.docs)
    page = build_page(
        thread, "c", place=Place(next_at=first.next.text(), extra=_results(first.lookahead))
    )
    assert page is not None
    (task,) = [b.tool for t in page.turns for b in t.blocks if b.tool and b.tool.name == "Task"]
    assert task.result is not None and "Two readers of the currency key" in task.result.text
    assert task.subagents and task.subagents[0].turns
    assert page.more_fragment == f"/dashboard/conversations/c/turns?at={first.next.text()}"

    second = cut(docs, first.next, 3)
    thread, missing = rebuild(second.docs)
    assert missing == {second.docs[0]["requestId"]}  # it starts inside the history
    carried = frozenset(_results(second.docs[0]))
    page = build_page(thread, "c", place=Place(at=first.next.text(), carried=carried))
    assert page is not None
    kinds = [t.kind for t in page.turns]
    # No gap for what earlier pages hold, no turn for results shown there.
    assert kinds[0] == "assistant" and "gap" not in kinds
    assert not [b for t in page.turns for b in t.blocks if b.kind == "orphan_result"]
    assert page.turns[0].anchor.startswith("turn-") and page.turns[0].anchor != "turn-0"


# ---- reading windows from the database --------------------------------------------------------
class _Spy:
    """The database, noting every request-log query's filter."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
        self.filters: list[dict[str, Any]] = []

    def __getitem__(self, name: str) -> Any:
        collection = self.db[name]
        spy = self

        class Collection:
            def find(self, where: dict[str, Any], *args: Any) -> Any:
                spy.filters.append(where)
                return collection.find(where, *args)

        return Collection()


async def _load(db: AsyncDatabase[Any], docs: list[dict[str, Any]]) -> dict[str, Any]:
    await ensure_indexes(db[REQUESTS], None)
    await ensure_conversation_indexes(db[CONVERSATIONS])
    await db[REQUESTS].insert_many(docs)
    assert await summary_writer(db[CONVERSATIONS]).apply(docs)
    found = await db[CONVERSATIONS].find_one({"_id": docs[0]["conversation"]["id"]})
    assert found is not None
    return found


async def _all_windows(db: Any, cid: str, summary: dict[str, Any]) -> list[list[str]]:
    windows, cursor = [], None
    while True:
        window = await read_window(db, cid, summary, cursor)
        windows.append([d["requestId"] for d in window.docs])
        if window.next is None:
            return windows
        cursor = window.next
        assert len(windows) < 50


@pytest.mark.parametrize("idle", [timedelta(0), timedelta(days=3)])
async def test_windows_cover_the_conversation_once(db: AsyncDatabase[Any], idle: timedelta) -> None:
    entries, session = long_session(2 * WINDOW_MAIN + 7)
    docs = documents_of(entries[:10], T0) + documents_of(
        entries[10:], T0 + idle + timedelta(seconds=30)
    )
    summary = await _load(db, docs)
    spy = _Spy(db)
    windows = await _all_windows(spy, session, summary)
    assert [len(w) for w in windows] == [WINDOW_MAIN, WINDOW_MAIN, 7]
    assert [rid for w in windows for rid in w] == [d["requestId"] for d in docs]
    # Every query but a window's last is a bounded range of the index.
    bounded = [f for f in spy.filters if "$lt" in f.get("timestamp", {})]
    assert all(f["conversation.id"] == session and "$gte" in f["timestamp"] for f in spy.filters)
    assert len(bounded) >= len(spy.filters) - len(windows)


async def test_a_burst_is_cut_at_the_bound(db: AsyncDatabase[Any]) -> None:
    """A window holds at most MAX_WINDOW_DOCS requests; the next goes on after."""
    base = _main_session()[5]  # a subagent request
    burst = []
    for n in range(MAX_WINDOW_DOCS + 30):
        doc = {**base, "_id": f"{n:032x}", "requestId": f"{n:032x}"}
        doc["timestamp"] = T0 + timedelta(milliseconds=n)
        doc["conversation"] = {**base["conversation"], "id": "burst"}
        burst.append(doc)
    summary = await _load(db, burst)
    first = await read_window(db, "burst", summary, None)
    assert len(first.docs) == MAX_WINDOW_DOCS and first.next is not None
    rest = await read_window(db, "burst", summary, first.next)
    assert len(rest.docs) == 30 and rest.next is None
    assert rest.docs[0]["requestId"] == f"{MAX_WINDOW_DOCS:032x}"
