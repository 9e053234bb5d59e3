"""The Requests page's URL (dashboard.requests_filters) and its rows
(dashboard.requests_rows): pure, no browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.requests_filters import (
    DEFAULT_PAGE_SIZE,
    FilterError,
    format_cursor,
    parse_cursor,
    parse_list_query,
    understand,
)
from dashboard.requests_page import tail_url
from dashboard.requests_rows import row_view, status_class
from storage import queries as q

NOW = datetime(2026, 12, 6, 15, 30, tzinfo=UTC)
MODELS = frozenset({"claude-opus-5-5", "claude-haiku-4-5"})


def test_no_parameters_is_the_newest_page_of_everything() -> None:
    lq = parse_list_query({}, NOW)
    assert lq.filter == q.RequestFilter()
    assert lq.cursor is None and lq.newest_first and lq.first_page
    assert lq.limit == DEFAULT_PAGE_SIZE and lq.tail_allowed


def test_every_filter_is_read() -> None:
    lq = parse_list_query(
        {
            "model": "claude-opus-5-5",
            "status": "5xx",
            "outcome": "client_closed",
            "stream": "no",
            "org": "org-1",
            "session": "abc",
            "range": "24h",
            "limit": "100",
        },
        NOW,
    )
    assert lq.filter == q.RequestFilter(
        model="claude-opus-5-5",
        status="5xx",
        outcome="client_closed",
        streaming=False,
        organization="org-1",
        session="abc",
        start=NOW - timedelta(hours=24),
    )
    assert lq.limit == 100 and lq.preset == "24h"


def test_custom_times_are_read_in_the_pages_zone() -> None:
    lq = parse_list_query(
        {"from": "2026-12-01T09:00", "to": "2026-12-02", "tz": "Europe/Paris"}, NOW
    )
    assert lq.filter.start == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert lq.filter.end == datetime(2026, 12, 2, 23, 0, tzinfo=UTC)  # the whole 2nd, Paris
    assert not lq.tail_allowed  # an end time: nothing new can appear on top
    iso = parse_list_query({"from": "2026-12-01T09:00:00Z"}, NOW)
    assert iso.filter.start == datetime(2026, 12, 1, 9, tzinfo=UTC)
    epoch = parse_list_query({"from": "1764579600000"}, NOW)
    assert epoch.filter.start == datetime(2025, 12, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ({"status": "7xx"}, "status"),
        ({"outcome": "exploded"}, "outcome"),
        ({"stream": "maybe"}, "stream"),
        ({"range": "3w"}, "range"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-12-02", "to": "2026-12-01"}, "to"),
        ({"tz": "Mars/Olympus"}, "Mars/Olympus"),
        ({"limit": "7"}, "limit"),
        ({"before": "soon"}, "before"),
        ({"before": "1", "after": "2"}, "before/after"),
        ({"model": "x" * 500}, "model"),
        ({"q": "!!!"}, "q"),
    ],
)
def test_bad_parameters_are_named(args: dict[str, str], names: str) -> None:
    with pytest.raises(FilterError, match=names.split("/")[0].replace("+", r"\+")):
        parse_list_query(args, NOW)


def test_cursors_round_trip_in_the_url() -> None:
    keyed = q.Cursor(datetime(2026, 12, 6, 15, 0, 1, 123000, tzinfo=UTC), "ab" * 16)
    assert parse_cursor("before", format_cursor(keyed)) == keyed
    boundary = q.Cursor(datetime(2026, 12, 6, tzinfo=UTC))
    assert parse_cursor("before", format_cursor(boundary)) == boundary
    older = parse_list_query({"before": format_cursor(keyed)}, NOW)
    assert older.cursor == keyed and older.newest_first and not older.tail_allowed
    newer = parse_list_query({"after": format_cursor(keyed)}, NOW)
    assert newer.cursor == keyed and not newer.newest_first


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("3fa85f64", "id"),
        ("3FA85F64A", "id"),
        ("3fa85f64-5717-4562", "session"),
        ("claude-opus-5-5", "model"),
        ("fix the migration", "words"),
        ("claude-opus-9", "words"),
    ],
)
def test_what_a_search_asks_for(text: str, kind: str) -> None:
    assert understand(text, MODELS).kind == kind


def test_a_search_narrows_the_filter() -> None:
    words = parse_list_query({"q": "Fix the  migration, fix it"}, NOW, MODELS)
    assert words.filter.words == ("fix", "the", "migration", "it")
    assert not words.tail_allowed
    session = parse_list_query({"q": "3FA85F64-5717"}, NOW, MODELS)
    assert session.filter.session_prefix == "3fa85f64-5717" and session.tail_allowed
    model = parse_list_query({"q": "claude-haiku-4-5"}, NOW, MODELS)
    assert model.filter.model == "claude-haiku-4-5"
    by_id = parse_list_query({"q": "cafe"}, NOW, MODELS)
    assert by_id.search is not None and by_id.search.words == ("cafe",)
    assert by_id.filter.words == ()  # the id index is tried first; words are the fallback


def test_a_row_is_plain_formatted_text() -> None:
    row = row_view(
        {
            "requestId": "0123456789abcdef" * 2,
            "timestamp": datetime(2026, 12, 6, 15, 0, 1, 5000, tzinfo=UTC),
            "model": "claude-opus-5-5",
            "statusCode": 529,
            "outcome": "upstream_error",
            "isStreaming": True,
            "tokens": 12345,
            "cost": {"usd": 0.0123},
            "responseTime": 15300,
            "timeToFirstByte": 842.4,
            "sessionId": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        }
    )
    assert row.href == "/dashboard/requests/" + "0123456789abcdef" * 2
    assert row.time_iso == "2026-12-06T15:00:01.005Z"
    assert (row.status, row.status_class, row.outcome_text) == ("529", "server", "upstream error")
    assert (row.tokens, row.cost, row.duration, row.ttfb) == (
        "12,345",
        "$0.012",
        "15.3 s",
        "842 ms",
    )
    assert row.session_short == "3fa85f64"
    assert row.session_href == "/dashboard/requests?session=3fa85f64-5717-4562-b3fc-2c963f66afa6"


def test_rows_from_the_api_shape_and_missing_values() -> None:
    row = row_view({"requestId": "ab" * 16, "timestamp": "2026-12-06T15:00:00Z", "unpriced": True})
    assert row.time_iso == "2026-12-06T15:00:00.000Z"
    assert row.cost == "unpriced" and row.tokens == "\u2013" and row.status == "\u2013"
    assert row.session_href == ""


@pytest.mark.parametrize(
    ("status", "outcome", "expected"),
    [
        (200, "completed", "ok"),
        (429, None, "client"),
        (503, None, "server"),
        (200, "client_closed", "failed"),
    ],
)
def test_status_badges(status: int, outcome: str | None, expected: str) -> None:
    assert status_class(status, outcome) == expected


def test_the_tail_follows_the_lists_filters_but_not_its_page() -> None:
    lq = parse_list_query(
        {"model": "m", "status": "5xx", "stream": "yes", "limit": "25", "range": "1h"}, NOW
    )
    assert tail_url(lq) == "/dashboard/requests/tail?model=m&status=5xx&stream=yes"
    by_model = parse_list_query({"q": "claude-opus-5-5"}, NOW, MODELS)
    assert tail_url(by_model) == "/dashboard/requests/tail?model=claude-opus-5-5"
    by_session = parse_list_query({"q": "3fa85f64-57"}, NOW, MODELS)
    assert tail_url(by_session) == "/dashboard/requests/tail?q=3fa85f64-57"
    assert tail_url(parse_list_query({}, NOW)) == "/dashboard/requests/tail"
