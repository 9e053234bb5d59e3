"""The Edit diff: minimal where it is small, coarse but right where it is big,
bounded in rows, lines and characters whatever the input."""

from __future__ import annotations

from dashboard.thread_diff import (
    CONTEXT,
    MAX_CELLS,
    MAX_LINE,
    MAX_LINES,
    MAX_ROWS,
    DiffRow,
    line_diff,
)


def _shape(rows: list[DiffRow]) -> list[tuple[str, str]]:
    return [(r.kind, r.text) for r in rows]


def test_a_changed_line_with_its_context() -> None:
    old = "\n".join(f"line {n}" for n in range(1, 21)) + "\n"
    new = old.replace("line 10\n", "line ten\nline 10b\n")
    diff = line_diff(old, new)
    assert (diff.added, diff.removed, diff.hidden) == (2, 1, 0)
    assert _shape(diff.rows) == [
        ("skip", f"{9 - CONTEXT} unchanged lines"),
        *[("same", f"line {n}") for n in range(10 - CONTEXT, 10)],
        ("del", "line 10"),
        ("add", "line ten"),
        ("add", "line 10b"),
        *[("same", f"line {n}") for n in range(11, 11 + CONTEXT)],
        ("skip", f"{20 - 10 - CONTEXT} unchanged lines"),
    ]
    # Line numbers of either side.
    deleted = next(r for r in diff.rows if r.kind == "del")
    added = [r for r in diff.rows if r.kind == "add"]
    assert (deleted.old_no, deleted.new_no) == (10, None)
    assert [(r.old_no, r.new_no) for r in added] == [(None, 10), (None, 11)]


def test_the_common_subsequence_is_kept() -> None:
    diff = line_diff("a\nb\nc\nd", "a\nx\nc\ny\nd")
    assert _shape(diff.rows) == [
        ("same", "a"),
        ("del", "b"),
        ("add", "x"),
        ("same", "c"),
        ("add", "y"),
        ("same", "d"),
    ]


def test_new_and_emptied_files() -> None:
    created = line_diff("", "def test():\n    ...\n")
    assert _shape(created.rows) == [("add", "def test():"), ("add", "    ...")]
    emptied = line_diff("x\ny", "")
    assert _shape(emptied.rows) == [("del", "x"), ("del", "y")]
    # Nothing changed: said in one row.
    same = line_diff("same\n" * 3, "same\n" * 3)
    assert _shape(same.rows) == [("skip", "3 unchanged lines")]
    assert same.added == same.removed == 0


def test_a_big_middle_is_shown_coarse_but_complete() -> None:
    side = int(MAX_CELLS**0.5) + 10
    old = "\n".join(f"old {n}" for n in range(side))
    new = "\n".join(f"new {n}" for n in range(side))
    diff = line_diff("head\n" + old + "\ntail", "head\n" + new + "\ntail")
    kinds = [r.kind for r in diff.rows]
    assert kinds == ["same"] + ["del"] * side + ["add"] * side + ["same"]
    assert (diff.added, diff.removed) == (side, side)


def test_rows_lines_and_characters_are_bounded() -> None:
    long_line = "x" * (MAX_LINE * 3)
    diff = line_diff("", "\n".join([long_line] * (MAX_ROWS + 50)))
    assert len(diff.rows) == MAX_ROWS
    assert diff.hidden == 50 and diff.added == MAX_ROWS + 50
    assert all(len(r.text) == MAX_LINE for r in diff.rows)
    huge = line_diff("a\n" * (MAX_LINES * 2), "b\n" * (MAX_LINES * 2))
    assert len(huge.rows) == MAX_ROWS
    assert huge.removed == huge.added == MAX_LINES * 2
    assert huge.hidden == 2 * MAX_LINES - MAX_ROWS + 2 * MAX_LINES
