"""Rollup documents in memory, as MongoDB stores them after the writer's upserts,
and the reads the stats make of them (equality on the filters, a range on `t`),
so the folds can be checked against the pipelines' meaning without a database."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import pytest

from stats import shapes as shape
from stats.overview_fold import Overview
from stats.rollups import fold


def _nest(into: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for name in parents:
        into = into.setdefault(name, {})
    into[leaf] = value


def rollup_documents(
    requests: Iterable[dict[str, Any]], zones: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The rollup documents the writer would leave for these request documents."""
    out = []
    for delta in fold(requests, zones):
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


def assert_same_rows(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Rows equal, costs to their 9-decimal rounding step (sums taken in another
    order may differ by a few ulps), never -0.0."""
    assert len(got) == len(want)
    for new, old in zip(got, want, strict=True):
        assert new.keys() == old.keys()
        for name, value in old.items():
            if isinstance(value, float):
                assert new[name] == pytest.approx(value, abs=1.1e-9), name
                assert math.copysign(1, new[name]) == 1, name
            else:
                assert new[name] == value, name


def assert_same_overview(got: Overview, want: Overview) -> None:
    """Two folds of one Overview agree: rows as `assert_same_rows`, latency
    averages within a rounding step (they divide sums that may differ by ulps),
    percentiles (from integer histograms) exactly."""
    assert [r["model"] for r in got.models] == [r["model"] for r in want.models]
    assert_same_rows(got.models, want.models)
    assert [r["model"] for r in got.latency] == [r["model"] for r in want.latency]
    for new, old in zip(got.latency, want.latency, strict=True):
        assert new == pytest.approx(old, abs=0.051)
        assert {k: v for k, v in new.items() if "p" in k} == {
            k: v for k, v in old.items() if "p" in k
        }
    assert_same_rows([shape.split(b) for b in got.total], [shape.split(b) for b in want.total])
    assert got.per_model.keys() == want.per_model.keys()
    for model, rows in want.per_model.items():
        assert_same_rows(
            [shape.split(b) for b in got.per_model[model]], [shape.split(b) for b in rows]
        )
    assert got.rate_limits == want.rate_limits
