"""The request list's query builders (storage.queries): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage import list_plan as lp
from storage import queries as q
from storage.mongo import _request_models

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def index_fields() -> dict[str, list[str]]:
    return {m.document["name"]: list(m.document["key"]) for m in _request_models()}


def first_match(pipeline: list[dict[str, Any]]) -> dict[str, Any]:
    return pipeline[0]["$match"]


def test_a_zero_limit_is_the_maximum_never_everything() -> None:
    assert q.capped_limit(0, q.MAX_SUMMARY_LIMIT) == q.MAX_SUMMARY_LIMIT
    assert q.capped_limit(-3, 50) == 50
    assert q.capped_limit(10**9, q.MAX_LIST_LIMIT) == q.MAX_LIST_LIMIT
    assert q.capped_limit(25, q.MAX_LIST_LIMIT) == 25


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("2xx", {"statusCode": {"$gte": 200, "$lt": 300}}),
        ("5xx", {"statusCode": {"$gte": 500, "$lt": 600}}),
        ("429", {"statusCode": 429}),
        (
            "error",
            {"$or": [{"statusCode": {"$gte": 400}}, {"outcome": {"$ne": "completed"}}]},
        ),
    ],
)
def test_status_filters(status: str, expected: dict[str, Any]) -> None:
    assert q.status_filter(status) == expected


@pytest.mark.parametrize("status", ["6xx", "42", "abc", "0429"])
def test_unknown_status_filters_are_refused(status: str) -> None:
    with pytest.raises(ValueError):
        q.status_filter(status)


def test_the_prefix_range_covers_exactly_the_prefix() -> None:
    bounds = q.prefix_range("ab3f")
    for inside in ("ab3f", "ab3f0000", "ab3fffff"):
        assert bounds["$gte"] <= inside < bounds["$lt"]
    for outside in ("ab3e", "ab40", "ab3"):
        assert not bounds["$gte"] <= outside < bounds["$lt"]


@pytest.mark.parametrize(
    ("f", "index"),
    [
        (q.RequestFilter(), "timestamp_desc"),
        (q.RequestFilter(status="2xx", outcome="completed", streaming=True), "timestamp_desc"),
        (q.RequestFilter(model="m", organization="o"), "model_time"),
        (q.RequestFilter(organization="o", status="2xx"), "org_time"),
        (q.RequestFilter(model="m", outcome="client_closed"), "outcome_time"),
        (q.RequestFilter(model="m", words=("hello",)), "conversation_words_time"),
        (q.RequestFilter(model="m", words=("a",), session="s"), "session_time"),
        (q.RequestFilter(session_prefix="3fa8", model="m"), "session_time"),
    ],
)
def test_the_most_selective_index_leads_and_its_fields_alone(
    f: q.RequestFilter, index: str
) -> None:
    """The first `$match` names only fields of the index it walks (the development
    database turns any other field there into a collection scan); everything
    else the filter asks is checked in the second."""
    fields = index_fields()
    plan = lp.plan(f)
    assert plan.index == index
    pipeline = lp.window_pipeline(
        plan, T0 - timedelta(hours=1), T0, newest_first=True, cursor=None, limit=51
    )
    assert set(first_match(pipeline)) <= set(fields[index])
    asked = (
        sum(
            1
            for value in (f.model, f.organization, f.session, f.session_prefix, f.status, f.outcome)
            if value
        )
        + (f.streaming is not None)
        + (1 if f.words else 0)
    )
    leading = 1 if plan.leading else 0
    assert leading + len(plan.residual) == asked
    assert plan.more_leads == ()
    assert pipeline[-1] == {"$project": q.LIST_PROJECTION}
    assert {"$limit": 51} in pipeline


def test_more_than_one_word_keeps_the_longest_as_anchor_and_all_of_them_after() -> None:
    plan = lp.plan(q.RequestFilter(words=("fix", "migration", "db")))
    assert plan.leading == {"conversation.words": "migration"}
    assert {"conversation.words": {"$all": ["fix", "migration", "db"]}} in plan.residual


@pytest.mark.parametrize(
    ("counts", "anchored"),
    [
        ({"fix": 3, "migration": 40, "db": 1}, "db"),  # counted rarest, although short
        ({"fix": 0, "migration": 5, "db": 0}, "fix"),  # a tie: the longer of the two
        ({}, "migration"),  # nothing counted: the longest
    ],
)
def test_a_multi_word_search_is_anchored_on_its_rarest_word(
    counts: dict[str, int], anchored: str
) -> None:
    words = ("fix", "migration", "db")
    plan = lp.plan(q.RequestFilter(words=words), counts)
    assert plan.leading == {"conversation.words": anchored}
    assert {"conversation.words": {"$all": list(words)}} in plan.residual


def test_the_word_sample_is_a_minute_next_to_the_first_window() -> None:
    """At most a minute of log (what `$count` may read), just below where a read
    from now starts (under the quiet stretch), below a cursor, above a range's start."""
    quiet = timedelta(hours=3)
    f = q.RequestFilter(words=("a", "b"))
    assert lp.sample_window(f, None, quiet, T0, True) == (T0 - quiet - lp.SAMPLE_SPAN, T0 - quiet)
    assert lp.sample_window(f, T0, quiet, T0, True) == (T0 - lp.SAMPLE_SPAN, T0)
    ranged = q.RequestFilter(words=("a", "b"), start=T0 - timedelta(seconds=20), end=T0)
    assert lp.sample_window(ranged, None, timedelta(0), T0, True) == (ranged.start, T0)
    assert lp.sample_window(ranged, None, timedelta(0), T0, False) == (ranged.start, T0)
    assert lp.sample_window(ranged, None, quiet, T0, True) is None  # all of it is quiet
    pipeline = lp.sample_pipeline("a", T0 - lp.SAMPLE_SPAN, T0)
    assert pipeline == [
        {
            "$match": {
                "conversation.words": "a",
                "timestamp": {"$gte": T0 - lp.SAMPLE_SPAN, "$lt": T0},
            }
        },
        {"$count": "n"},
    ]
    assert set(first_match(pipeline)) <= set(index_fields()["conversation_words_time"])


def test_the_window_at_a_keyed_cursor_includes_its_timestamp_and_skips_seen_ids() -> None:
    cursor = q.Cursor(T0, "cc" * 16)
    plan = lp.plan(q.RequestFilter())
    older = lp.window_pipeline(
        plan, T0 - timedelta(hours=1), T0, newest_first=True, cursor=cursor, limit=5
    )
    assert first_match(older)["timestamp"] == {"$gte": T0 - timedelta(hours=1), "$lte": T0}
    assert older[1]["$match"] == {
        "$nor": [{"timestamp": T0, "requestId": {"$gte": cursor.request_id}}]
    }
    assert older[2] == {"$sort": {"timestamp": -1}}
    newer = lp.window_pipeline(
        plan, T0, T0 + timedelta(hours=1), newest_first=False, cursor=cursor, limit=5
    )
    assert first_match(newer)["timestamp"] == {"$gte": T0, "$lt": T0 + timedelta(hours=1)}
    assert newer[1]["$match"] == {
        "$nor": [{"timestamp": T0, "requestId": {"$lte": cursor.request_id}}]
    }
    assert newer[2] == {"$sort": {"timestamp": 1}}


def test_a_time_boundary_cursor_excludes_its_timestamp_and_later_windows_ignore_it() -> None:
    plan = lp.plan(q.RequestFilter())
    boundary = q.Cursor(T0)
    older = lp.window_pipeline(
        plan, T0 - timedelta(hours=1), T0, newest_first=True, cursor=boundary, limit=5
    )
    assert first_match(older)["timestamp"] == {"$gte": T0 - timedelta(hours=1), "$lt": T0}
    assert len(older) == 4  # no residual stage
    newer = lp.window_pipeline(plan, T0, None, newest_first=False, cursor=boundary, limit=5)
    assert first_match(newer)["timestamp"] == {"$gt": T0}
    keyed = q.Cursor(T0, "ab" * 16)
    further = lp.window_pipeline(
        plan,
        T0 - timedelta(hours=3),
        T0 - timedelta(hours=1),
        newest_first=True,
        cursor=keyed,
        limit=5,
    )
    assert "$nor" not in str(further)


def test_windows_are_cut_to_the_filters_range() -> None:
    f = q.RequestFilter(start=T0 - timedelta(days=1), end=T0)
    assert lp.clamp_window(f, None, None) == (f.start, f.end)
    inside = (T0 - timedelta(hours=2), T0 - timedelta(hours=1))
    assert lp.clamp_window(f, *inside) == inside
    assert lp.clamp_window(f, T0 - timedelta(days=9), T0 + timedelta(days=9)) == (f.start, f.end)


def test_windows_grow_by_what_the_last_one_yielded() -> None:
    span = timedelta(minutes=10)
    assert lp.next_span(span, 0, 51) == span * lp.MAX_GROWTH
    assert lp.next_span(span, 1, 1000) == span * lp.MAX_GROWTH  # sparse: capped growth
    assert lp.next_span(span, 50, 1) == span  # nearly done: never narrower
    assert lp.next_span(span, 30, 40) == span * 2  # 1.5 * 40 / 30


@pytest.mark.parametrize(
    ("f", "leading"),
    [
        (q.RequestFilter(status="error"), None),
        (q.RequestFilter(status="4xx", model="m"), {"model": "m"}),
        (q.RequestFilter(status="429"), None),
    ],
    ids=repr,
)
def test_error_filters_read_the_failed_requests_alone(
    f: q.RequestFilter, leading: dict[str, Any] | None
) -> None:
    """Failed requests are a few percent of the log: an error status filter reads
    each failed outcome's rows on `outcome_time`, and still checks the status."""
    plan = lp.plan(f)
    assert plan.index == "outcome_time"
    assert plan.leads == tuple({"outcome": o} for o in lp.ERROR_OUTCOMES)
    assert q.status_filter(f.status or "") in plan.residual
    assert leading is None or leading in plan.residual
    _assert_leads_use(plan, "outcome_time")


@pytest.mark.parametrize(
    "f",
    [
        q.RequestFilter(status="5xx", organization="o", streaming=True),
        q.RequestFilter(status="error", organization="o", model="m"),
        q.RequestFilter(status="503", organization="o"),
    ],
    ids=repr,
)
def test_an_organizations_failures_are_read_on_its_own_index(f: q.RequestFilter) -> None:
    """Not every organization's failed rows with the organization checked after:
    its own, on `org_outcome_time`, the organization in every lead, not residual."""
    plan = lp.plan(f)
    assert plan.index == "org_outcome_time"
    assert plan.leads == tuple({"organizationId": "o", "outcome": o} for o in lp.ERROR_OUTCOMES)
    assert q.status_filter(f.status or "") in plan.residual
    assert {"organizationId": "o"} not in plan.residual
    assert f.model is None or {"model": f.model} in plan.residual
    _assert_leads_use(plan, "org_outcome_time")


def test_an_index_not_built_yet_is_not_planned_on() -> None:
    """After an upgrade the new index is built while the proxy serves: until the
    collection lists it, an organization's failures are read as before."""
    f = q.RequestFilter(status="5xx", organization="o")
    plan = lp.plan(f, indexes=frozenset({"outcome_time", "org_time"}))
    assert plan.index == "outcome_time"
    assert plan.leads == tuple({"outcome": o} for o in lp.ERROR_OUTCOMES)
    assert {"organizationId": "o"} in plan.residual
    assert lp.plan(f, indexes=frozenset({"org_outcome_time"})).index == "org_outcome_time"


def test_a_session_still_leads_an_organizations_failures() -> None:
    plan = lp.plan(q.RequestFilter(status="5xx", organization="o", session="s"))
    assert (plan.index, plan.leads) == ("session_time", ({"sessionId": "s"},))
    assert {"organizationId": "o"} in plan.residual


def _assert_leads_use(plan: lp.Plan, index: str) -> None:
    fields = set(index_fields()[index])
    for lead in plan.leads:
        pipeline = lp.window_pipeline(
            plan, T0 - timedelta(hours=1), T0, newest_first=True, cursor=None, limit=9, lead=lead
        )
        assert first_match(pipeline) == {
            **lead,
            "timestamp": {"$gte": T0 - timedelta(hours=1), "$lt": T0},
        }
        assert set(first_match(pipeline)) <= fields


@pytest.mark.parametrize("status", ["2xx", "3xx", "200", "399", None])
def test_other_statuses_are_not_led_by_outcome(status: str | None) -> None:
    assert lp.status_leads(status) == ()
    assert lp.plan(q.RequestFilter(status=status, model="m")).leads == ({"model": "m"},)


def test_ties_are_read_by_equality_and_beyond_the_cursor() -> None:
    plan = lp.plan(q.RequestFilter(model="m", status="2xx"))
    cursor = q.Cursor(T0, "ab" * 16)
    pipeline = lp.ties_pipeline(plan, T0, newest_first=True, cursor=cursor, limit=lp.MAX_TIES)
    assert first_match(pipeline) == {"model": "m", "timestamp": T0}
    assert {"requestId": {"$lt": cursor.request_id}} in pipeline[1]["$match"]["$and"]
    newer = lp.ties_pipeline(plan, T0, newest_first=False, cursor=cursor, limit=lp.MAX_TIES)
    assert {"requestId": {"$gt": cursor.request_id}} in newer[1]["$match"]["$and"]
    elsewhere = lp.ties_pipeline(
        plan, T0 - timedelta(seconds=1), newest_first=True, cursor=cursor, limit=10
    )
    assert "requestId" not in str(elsewhere[1])


def test_an_id_prefix_search_walks_the_request_id_index() -> None:
    f = q.RequestFilter(model="m", status="4xx", start=T0)
    pipeline = lp.id_prefix_pipeline("ab12", f, 21)
    assert set(first_match(pipeline)) == {"requestId"}
    assert set(index_fields()["requestId_unique"]) == {"requestId"}
    residual = pipeline[1]["$match"]["$and"]
    assert {"model": "m"} in residual and {"timestamp": {"$gte": T0}} in residual
    assert {"$limit": 21} in pipeline


def test_the_tail_reads_by_completion_time_on_its_index() -> None:
    pipeline = q.tail_pipeline(T0, 100)
    assert first_match(pipeline) == {q.COMPLETED: {"$gte": T0}}
    assert index_fields()["completed_time"] == [q.COMPLETED]
    assert pipeline[1] == {"$sort": {q.COMPLETED: 1}}


def row(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "requestId": "ab" * 16,
        "timestamp": T0,
        "model": "claude-opus-5-5",
        "statusCode": 200,
        "outcome": "completed",
        "isStreaming": True,
        "sessionId": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "organizationId": "org-1",
    }
    return base | fields


@pytest.mark.parametrize(
    ("f", "passing", "failing"),
    [
        (q.RequestFilter(model="claude-opus-5-5"), row(), row(model="claude-haiku-4-5")),
        (q.RequestFilter(status="5xx"), row(statusCode=529), row(statusCode=429)),
        (q.RequestFilter(status="429"), row(statusCode=429), row(statusCode=200)),
        (q.RequestFilter(status="error"), row(outcome="client_closed"), row()),
        (q.RequestFilter(status="error"), row(statusCode=400), row(statusCode=None)),
        (q.RequestFilter(outcome="proxy_error"), row(outcome="proxy_error"), row()),
        (q.RequestFilter(streaming=False), row(isStreaming=False), row()),
        (q.RequestFilter(organization="org-2"), row(organizationId="org-2"), row()),
        (q.RequestFilter(session="s1"), row(sessionId="s1"), row()),
        (q.RequestFilter(session_prefix="3fa85"), row(), row(sessionId=None)),
        (
            q.RequestFilter(start=T0, end=T0 + timedelta(hours=1)),
            row(),
            row(timestamp=T0 + timedelta(hours=1)),
        ),
    ],
)
def test_the_tails_predicate(
    f: q.RequestFilter, passing: dict[str, Any], failing: dict[str, Any]
) -> None:
    assert q.matches(passing, f)
    assert not q.matches(failing, f)


def test_the_tail_matches_nothing_during_a_word_search() -> None:
    assert not q.matches(row(), q.RequestFilter(words=("hello",)))
