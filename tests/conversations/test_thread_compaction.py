"""Server-side compaction in a rebuilt thread: the marker, and a history that
restarts at the compaction block going on in the same history (pure)."""

from __future__ import annotations

from conversations.fields import CONTINUATION
from conversations.thread import rebuild
from tests.conversations.thread_helpers import a, compaction, doc, kinds, reply, said, text, u

SUM = "Summary: one and two were discussed."


def _before() -> list[dict]:
    return [
        doc([u("one")], reply(text("A")), 0),
        doc([u("one"), a(text("A")), u("two")], reply(compaction(SUM), text("B")), 1),
    ]


def test_a_history_restarted_at_the_block_goes_on_where_it_was_returned() -> None:
    before = _before()
    after = [
        doc([a(compaction(SUM), text("B")), u("three")], reply(text("C")), 2),
        doc(
            [a(compaction(SUM), text("B")), u("three"), a(text("C")), u("four")],
            reply(text("D")),
            3,
        ),
    ]
    thread, missing = rebuild([*before, *after])
    turns = thread["turns"]
    assert missing == set()
    assert kinds(turns) == [
        "message:user",
        "message:assistant",
        "message:user",
        "compaction",
        "message:assistant",
        "message:user",
        "message:assistant",
        "message:user",
        "message:assistant",
    ]
    assert said(turns) == ["one", "A", "two", f"{SUM} B", "three", "C", "four", "D"]
    assert {t["segment"] for t in turns} == {0}
    assert [t.get("index") for t in turns] == [0, 1, 2, 3, 3, 4, 5, 6, 7]
    marker, block = turns[3], turns[4]
    assert marker["source"] == "server" and marker["requestId"] == before[1]["requestId"]
    # The reply that returned the block keeps its request's facts.
    assert block["requestId"] == before[1]["requestId"] and block["source"] == "response"
    assert block["usage"]["output_tokens"] == 5
    assert rebuild(list(reversed([*before, *after])))[0] == thread


def test_the_block_resent_alone_still_continues_the_history() -> None:
    # pause_after_compaction: the client sends back the compaction block by itself.
    after = doc([a(compaction(SUM)), u("three")], reply(text("C")), 2)
    turns = rebuild([*_before(), after])[0]["turns"]
    assert said(turns) == ["one", "A", "two", f"{SUM} B", "three", "C"]
    assert kinds(turns).count("compaction") == 1


def test_a_history_that_keeps_what_came_before_the_block_is_marked_too() -> None:
    kept = doc(
        [u("one"), a(text("A")), u("two"), a(compaction(SUM), text("B")), u("three")],
        reply(text("C")),
        2,
    )
    turns = rebuild([*_before(), kept])[0]["turns"]
    assert said(turns) == ["one", "A", "two", f"{SUM} B", "three", "C"]
    assert kinds(turns).count("compaction") == 1 and {t["segment"] for t in turns} == {0}


def test_a_restart_whose_block_the_log_lacks() -> None:
    first, _ = _before()
    restarted = doc([a(compaction(SUM), text("B")), u("three")], reply(text("C")), 2)
    # Only the restarted history: its opening block is stored, with a marker.
    thread, missing = rebuild([restarted])
    assert missing == set()
    assert kinds(thread["turns"]) == [
        "compaction",
        "message:assistant",
        "message:user",
        "message:assistant",
    ]
    assert thread["turns"][1]["source"] == "request"
    # After another history: one boundary, marked as the server's compaction.
    turns = rebuild([first, restarted])[0]["turns"]
    assert kinds(turns) == [
        "message:user",
        "message:assistant",
        "compaction",
        "message:assistant",
        "message:user",
        "message:assistant",
    ]
    assert turns[2]["source"] == "server" and turns[3]["segment"] == 1


def test_claude_codes_own_summary_is_a_client_compaction_boundary() -> None:
    docs = [
        doc([u("one")], reply(text("A")), 0),
        doc([u(f"{CONTINUATION} that ran out of context. Summary.")], reply(text("B")), 1),
    ]
    turns = rebuild(docs)[0]["turns"]
    assert kinds(turns)[2] == "compaction" and turns[2]["source"] == "client"


def test_a_subagents_history_restarts_the_same_way() -> None:
    agent = [["x-claude-code-agent-id", "agent-9"]]
    docs = [
        doc([u("Find it")], reply(compaction(SUM), text("B")), 0, headers=agent),
        doc([a(compaction(SUM), text("B")), u("go on")], reply(text("C")), 1, headers=agent),
    ]
    (view,) = rebuild(docs)[0]["subagents"]
    assert said(view["turns"]) == ["Find it", f"{SUM} B", "go on", "C"]
    assert kinds(view["turns"]).count("compaction") == 1
