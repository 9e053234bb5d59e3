"""The dashboard benchmark's log (bench.stats_data.dashboard_documents) and how
the benchmark reads its pages (bench.dashboard_pages): realistic Claude Code
traffic with the stats fields unchanged, and a table that says what it measured."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.dashboard_pages import THREAD_MS, Timing, more_link, older_link, report
from bench.session_traffic import LARGE_BODIES, LONG_CONVERSATION, ConversationTraffic
from bench.stats_data import dashboard_documents, documents
from conversations.thread import rebuild

START = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
COUNT = 9_000


def test_the_stats_fields_are_the_stats_benchmarks() -> None:
    """The dashboard log is the stats log made traffic: every field the rollups
    read is the one `documents` draws, so the stats figures keep their meaning."""
    plain = list(documents(400, START, SPAN, seed=4))
    extended = list(dashboard_documents(400, START, SPAN, seed=4))
    for a, b in zip(plain, extended, strict=True):
        for name in ("requestId", "timestamp", "model", "organizationId", "statusCode"):
            assert a[name] == b[name]
        assert (a["usage"], a["cost"], a["tokens"]) == (b["usage"], b["cost"], b["tokens"])
        assert a["response"]["rateLimit"] == b["response"]["rateLimit"]


def test_sessions_subagents_and_one_long_conversation() -> None:
    traffic = ConversationTraffic(COUNT, COUNT)
    docs = list(dashboard_documents(COUNT, START, SPAN, seed=COUNT, traffic=traffic))
    per_conversation = Counter(d["conversation"]["id"] for d in docs)
    assert per_conversation[traffic.long_id] == LONG_CONVERSATION
    assert 40 < len(per_conversation) < COUNT // 10
    threads = Counter(d["conversation"]["thread"] for d in docs)
    assert threads["auxiliary"] == len(per_conversation)  # one title call each
    assert threads["subagent"] > COUNT // 50
    assert all(d["conversation"]["words"] for d in docs if d["conversation"]["thread"] == "main")
    # Bodies as recorded: the history resent, compacted before it grows large.
    sizes = sorted(len(d["request"]["body"]) for d in docs)
    assert 5_000 < sizes[len(sizes) // 2] < 40_000
    assert len(traffic.large_ids) == len(LARGE_BODIES)
    large = {d["requestId"]: len(d["request"]["body"]) for d in docs}
    pairs = zip(traffic.large_ids, LARGE_BODIES, strict=True)
    assert all(large[rid] > chars for rid, (_, chars) in pairs)


def test_the_long_conversation_rebuilds_whole() -> None:
    traffic = ConversationTraffic(COUNT, COUNT)
    docs = [
        d
        for d in dashboard_documents(COUNT, START, SPAN, seed=COUNT, traffic=traffic)
        if d["conversation"]["id"] == traffic.long_id
    ]
    thread, missing = rebuild(docs)
    assert not missing
    kinds = Counter(t["type"] for t in thread["turns"])
    assert kinds["message"] > LONG_CONVERSATION and kinds["compaction"] > 10
    assert sum(len(t.get("subagents") or []) for t in thread["turns"]) > 10
    assert thread["subagents"] == []  # every subagent hangs under its Task call
    assert not [t for t in thread["turns"] if t["type"] == "gap"]


def test_the_table_states_targets_and_the_ratio() -> None:
    fast = Timing("/a", None, [5.0] * 3, [6.0] * 3)
    slow = Timing("/t", THREAD_MS, [90.0] * 3, [700.0] * 3)
    table = report([(10_000, {"a": fast, "t": slow}), (1_000_000, {"a": fast, "t": slow})])
    lines = table.splitlines()
    assert lines[0].startswith("| page") and "1,000,000 req" in lines[0]
    assert lines[2] == "| a | 5 / 6 (p95 6) | 5 / 6 (p95 6) | first byte ≤ 100 | ✔ | 1.00x |"
    assert "whole ≤ 500 | ✘ |" in lines[3]


def test_json_routes_are_reported_for_reference_not_judged() -> None:
    slow = Timing("/api/x", None, [900.0] * 3, [900.0] * 3)
    table = report([(10_000, {"api: x": slow, "page": slow})])
    api, page = table.splitlines()[2:4]
    assert api.endswith("| — | (reference) | 1.00x |")
    assert "| first byte ≤ 100 | ✘ |" in page


def test_the_links_a_page_gives_are_followed_as_the_browser_would() -> None:
    page = b'<a href="/dashboard/requests?model=x&amp;before=17_ab">older</a>'
    assert older_link(page) == "/dashboard/requests?model=x&before=17_ab"
    thread = b'<button data-more="/dashboard/conversations/c-1/turns?at=1_2_r&amp;from=40">'
    assert more_link(thread) == "/dashboard/conversations/c-1/turns?at=1_2_r&from=40"
    assert older_link(b"<p>no more</p>") is None and more_link(b"") is None
