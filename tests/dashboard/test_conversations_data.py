"""The Conversations list's reads against the test database (SecantusDB, or a
real MongoDB with MONGODB_URI), and its URL parameters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from conversations.search import cursor_text, parse_cursor
from conversations.summary_writer import summary_writer
from dashboard.conversations_data import (
    ListCursor,
    list_page,
    project_options,
    search_page,
)
from dashboard.conversations_page import (
    DEFAULT_LIMIT,
    ListError,
    parse_list_query,
    row_view,
)
from storage.mongo import CONVERSATIONS, REQUESTS, ensure_conversation_indexes, ensure_indexes
from tests.conversations.helpers import T0, documents_of
from tests.fixtures.conversations import exchanges
from tests.fixtures.conversations.claude_code import FABLE, OPUS
from tests.storage.conftest import db

__all__ = ["db"]

MAIN = "5d0c2f1a-7b9e-4c3d-8a61-2f4e9b7c1d03"
SESSION_21 = "7a1c9e4b-2f3d-4e8a-9b6c-0d5e7f1a2b3c"
MAIN_PROJECT = "/home/dev/acme-billing"
PROJECT_21 = "/home/dev/orbit-api"


@pytest.fixture
async def loaded(db: AsyncDatabase[Any]) -> AsyncDatabase[Any]:
    """The main session, then the Claude Code 2.1 one an hour later, logged and
    summarised as the recorder does."""
    await ensure_indexes(db[REQUESTS], None)
    await ensure_conversation_indexes(db[CONVERSATIONS])
    docs = documents_of(exchanges("main_session"), T0)
    docs += documents_of(exchanges("claude_code_21"), T0 + timedelta(hours=1))
    await db[REQUESTS].insert_many(docs)
    assert await summary_writer(db[CONVERSATIONS]).apply(docs)
    return db


async def test_a_page_of_the_list(loaded: AsyncDatabase[Any]) -> None:
    rows, following = await list_page(loaded, None, None, 10)
    assert following is None and [r["id"] for r in rows] == [SESSION_21, MAIN]  # newest first
    newest = rows[0]
    assert newest["projectPath"] == PROJECT_21 and newest["requestCount"] == 9
    assert newest["models"] == sorted({OPUS, FABLE})
    assert newest["subagentRequests"] == 3 and newest["cost"] > 0
    first, following = await list_page(loaded, None, None, 1)
    assert [r["id"] for r in first] == [SESSION_21] and following is not None
    assert ListCursor.parse(following.text()) == following
    second, last = await list_page(loaded, None, following, 1)
    assert [r["id"] for r in second] == [MAIN] and last is None


async def test_pages_by_place_across_time_and_ties(db: AsyncDatabase[Any]) -> None:
    """Summaries months apart and several sharing one instant: each page starts
    exactly after the last row of the one before, newest first, ties by id."""
    await ensure_conversation_indexes(db[CONVERSATIONS])
    when = [T0 - timedelta(days=d) for d in (0, 0, 0, 3, 40, 41, 400)]
    await db[CONVERSATIONS].insert_many(
        [
            {"_id": f"c{n}", "lastActivity": at, "startTime": at, "requestCount": 1, "cost": 0.0}
            for n, at in enumerate(when)
        ]
    )
    seen: list[str] = []
    place = None
    for _ in range(10):
        rows, place = await list_page(db, None, place, 2)
        seen += [r["id"] for r in rows]
        if place is None:
            break
    assert seen == [f"c{n}" for n in range(7)]


async def test_one_project(loaded: AsyncDatabase[Any]) -> None:
    rows, following = await list_page(loaded, MAIN_PROJECT, None, 10)
    assert following is None and [r["id"] for r in rows] == [MAIN]
    # A project is a value: a pattern matches nothing.
    assert await list_page(loaded, "/home/dev/.*", None, 10) == ([], None)
    assert await project_options(loaded) == [MAIN_PROJECT, PROJECT_21]


async def test_search_rows_carry_the_summary_and_an_excerpt(loaded: AsyncDatabase[Any]) -> None:
    found = await search_page(loaded, ["ratelimiter"], None, None, 10)
    assert found.following is None and not found.stopped
    (row,) = found.rows
    assert row["id"] == SESSION_21 and row["requestCount"] == 9 and row["models"]
    assert row["matches"] == found.read >= 1 and "RateLimiter" in row["snippet"]
    assert row["matchedRequestId"]
    assert (await search_page(loaded, ["keyerror"], PROJECT_21, None, 10)).rows == []
    found = await search_page(loaded, ["keyerror"], MAIN_PROJECT, None, 10)
    assert [r["id"] for r in found.rows] == [MAIN]


async def test_search_pages_by_the_place_it_stopped(loaded: AsyncDatabase[Any]) -> None:
    """A word both sessions hold: one row a page, the newest match first, then
    the older page from the link's place, then the end."""
    first = await search_page(loaded, ["the"], None, None, 1)
    assert [r["id"] for r in first.rows] == [SESSION_21] and first.following is not None
    second = await search_page(loaded, ["the"], None, parse_cursor(first.following), 1)
    assert [r["id"] for r in second.rows] == [MAIN] and second.following is None
    assert second.rows[0]["lastMatch"] < first.rows[0]["lastMatch"]


async def test_a_row_for_the_page(loaded: AsyncDatabase[Any]) -> None:
    rows, _ = await list_page(loaded, None, None, 10)
    view = row_view(rows[0])
    assert view.href == f"/dashboard/conversations/{SESSION_21}"
    assert view.project_name == "orbit-api"
    assert view.project_href == "/dashboard/conversations?project=%2Fhome%2Fdev%2Forbit-api"
    assert view.models[0] == OPUS  # the latest model first
    assert view.first_message is not None and view.first_message.startswith("Add per-user")


# ---- parameters ------------------------------------------------------------------------
def test_defaults_and_values() -> None:
    lq = parse_list_query({})
    assert (lq.q, lq.words, lq.project, lq.limit) == (None, [], None, DEFAULT_LIMIT)
    assert lq.before is None and lq.matches_before is None
    place = ListCursor(T0, "conv:1_x")
    assert parse_list_query({"before": place.text()}).before == place
    lq = parse_list_query({"q": " KeyError parse_invoice ", "project": "/p"})
    assert lq.q == "KeyError parse_invoice" and lq.words[0] == "keyerror"
    assert lq.project == "/p"
    # A search's place is a request's, not a conversation's.
    lq = parse_list_query({"q": "x1", "before": "1796530217309_5b6f3327"})
    assert lq.matches_before is not None and lq.before is None
    assert cursor_text(lq.matches_before) == "1796530217309_5b6f3327"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"limit": "0"}, "limit: a whole number from 1 to 100"),
        ({"limit": "101"}, "limit: a whole number from 1 to 100"),
        ({"limit": "-5"}, "limit: a whole number from 1 to 100"),
        ({"before": "yesterday"}, "before: a place in the list"),
        ({"q": "word", "before": "conv:1_x"}, "before: a place in the results"),
        ({"q": "!"}, "q: needs a word"),
        ({"q": "a " * 150}, "q: at most 200 characters"),
        ({"q": " ".join(f"w{n}" for n in range(11))}, "q: at most 10 words"),
        ({"project": "p" * 1025}, "project: at most 1024 characters"),
    ],
)
def test_bad_parameters_are_refused(values: dict[str, str], message: str) -> None:
    with pytest.raises(ListError, match=message.replace("(", r"\(")):
        parse_list_query(values)
