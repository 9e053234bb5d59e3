"""Rollup documents in memory, as MongoDB stores them after the writer's upserts,
and the reads the stats make of them (equality on the filters, a range on `t`),
so the folds can be checked against the pipelines' meaning without a database."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from stats.rollups import fold


def _nest(into: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for name in parents:
        into = into.setdefault(name, {})
    into[leaf] = value


def rollup_documents(requests: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rollup documents the writer would leave for these request documents."""
    out = []
    for delta in fold(requests):
        document: dict[str, Any] = {"_id": delta.id, **delta.key}
        for part in (delta.inc, delta.low, delta.high):
            for name, value in part.items():
                _nest(document, name, value)
        out.append(document)
    return out


def find(documents: list[dict[str, Any]], query: dict[str, Any]) -> list[dict[str, Any]]:
    """`query` as the rollup filters of stats/pipelines.py use it."""
    out = []
    for document in documents:
        if all(_matches(document.get(name), cond) for name, cond in query.items()):
            out.append(document)
    return out


def _matches(value: Any, cond: Any) -> bool:
    if isinstance(cond, dict):
        low: datetime | None = cond.get("$gte")
        high: datetime | None = cond.get("$lt")
        return (low is None or value >= low) and (high is None or value < high)
    return bool(value == cond)
