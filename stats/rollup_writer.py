"""The stats rollups, kept exactly once per batch (see stats.derived_writer)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from stats.derived_writer import DerivedWriter
from stats.rollups import Delta, fold, merge_into


def rollup_writer(rollups: AsyncCollection[Any]) -> DerivedWriter[Delta]:
    return DerivedWriter(rollups, fold, merge_into, "rollup")
