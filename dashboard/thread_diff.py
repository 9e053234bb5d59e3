"""A line diff of an Edit's `old_string` against its `new_string` (pure, bounded).

The lines both sides share at the start and at the end are found in linear
time; only what lies between is compared. A middle small enough for an exact
longest-common-subsequence table (`MAX_CELLS` cells) gets the minimal diff;
a bigger one is shown as its old lines removed and its new lines added, which
is still correct, just coarser. Unchanged runs longer than twice `CONTEXT`
lines are folded to a "… n unchanged lines" row, the diff shows at most
`MAX_ROWS` rows, and each line at most `MAX_LINE` characters, so the work and
the page stay bounded whatever an Edit holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CONTEXT = 3
MAX_CELLS = 10_000
MAX_ROWS = 400
MAX_LINE = 400
# Lines read from either side at most (the rest is counted, not compared).
MAX_LINES = 5_000

Kind = Literal["same", "del", "add", "skip"]


@dataclass(frozen=True, slots=True)
class DiffRow:
    kind: Kind
    text: str
    old_no: int | None = None
    new_no: int | None = None


@dataclass(frozen=True, slots=True)
class Diff:
    rows: list[DiffRow]
    added: int
    removed: int
    hidden: int  # changed or unchanged lines beyond MAX_ROWS, not shown


def _lines(text: str) -> tuple[list[str], int]:
    """The first MAX_LINES lines of `text`, and how many there are in all."""
    if not text:
        return [], 0
    # A final newline ends the last line; it does not start another one.
    lines = text.removesuffix("\n").split("\n", MAX_LINES)
    if len(lines) > MAX_LINES:
        return lines[:MAX_LINES], MAX_LINES + lines[MAX_LINES].count("\n") + 1
    return lines, len(lines)


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def _middle(old: list[str], new: list[str]) -> list[tuple[Kind, int, int]]:
    """Edit script of two line lists: (kind, old index, new index) per row."""
    if not old or not new or len(old) * len(new) > MAX_CELLS:
        return [("del", i, -1) for i in range(len(old))] + [("add", -1, j) for j in range(len(new))]
    rows, cols = len(old), len(new)
    # lcs[i][j]: the longest common subsequence of old[i:] and new[j:].
    lcs = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        here, below = lcs[i], lcs[i + 1]
        for j in range(cols - 1, -1, -1):
            here[j] = below[j + 1] + 1 if old[i] == new[j] else max(below[j], here[j + 1])
    script: list[tuple[Kind, int, int]] = []
    i = j = 0
    while i < rows and j < cols:
        if old[i] == new[j]:
            script.append(("same", i, j))
            i, j = i + 1, j + 1
        elif lcs[i + 1][j] >= lcs[i][j + 1]:
            script.append(("del", i, -1))
            i += 1
        else:
            script.append(("add", -1, j))
            j += 1
    script += [("del", k, -1) for k in range(i, rows)]
    script += [("add", -1, k) for k in range(j, cols)]
    return script


def line_diff(old_text: str, new_text: str) -> Diff:
    old, old_total = _lines(old_text)
    new, new_total = _lines(new_text)
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    script: list[tuple[Kind, int, int]] = [("same", i, i) for i in range(head)]
    for kind, i, j in _middle(old[head : len(old) - tail], new[head : len(new) - tail]):
        script.append((kind, i + head if i >= 0 else -1, j + head if j >= 0 else -1))
    script += [("same", len(old) - tail + k, len(new) - tail + k) for k in range(tail)]
    rows = _rows(script, old, new)
    added = sum(1 for kind, _, _ in script if kind == "add") + (new_total - len(new))
    removed = sum(1 for kind, _, _ in script if kind == "del") + (old_total - len(old))
    hidden = max(0, len(rows) - MAX_ROWS) + (old_total - len(old)) + (new_total - len(new))
    return Diff(rows[:MAX_ROWS], added, removed, hidden)


def _rows(script: list[tuple[Kind, int, int]], old: list[str], new: list[str]) -> list[DiffRow]:
    """The script as rows, long unchanged runs folded around the changes."""
    rows: list[DiffRow] = []
    start = 0
    while start < len(script):
        if script[start][0] != "same":
            kind, i, j = script[start]
            text = old[i] if kind == "del" else new[j]
            rows.append(
                DiffRow(kind, _clip(text), i + 1 if i >= 0 else None, j + 1 if j >= 0 else None)
            )
            start += 1
            continue
        end = start
        while end < len(script) and script[end][0] == "same":
            end += 1
        keep_head = CONTEXT if start > 0 else 0
        keep_tail = CONTEXT if end < len(script) else 0
        if end - start > keep_head + keep_tail + 1:
            shown = list(range(start, start + keep_head))
            folded = end - start - keep_head - keep_tail
            rest = list(range(end - keep_tail, end))
        else:
            shown, folded, rest = list(range(start, end)), 0, []
        rows += [_same(script[k], old) for k in shown]
        if folded:
            rows.append(DiffRow("skip", f"{folded} unchanged lines"))
        rows += [_same(script[k], old) for k in rest]
        start = end
    return rows


def _same(step: tuple[Kind, int, int], old: list[str]) -> DiffRow:
    _, i, j = step
    return DiffRow("same", _clip(old[i]), i + 1, j + 1)
