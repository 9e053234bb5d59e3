"""The stats rollups, kept exactly once per batch (see stats.derived_writer)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from stats.derived_writer import DerivedWriter
from stats.rollups import Delta, fold, merge_into


def rollup_writer(rollups: AsyncCollection[Any], zones: Sequence[str] = ()) -> DerivedWriter[Delta]:
    """`zones`: the `STATS_ZONES` whose local days and hours are rolled up too."""
    return DerivedWriter(rollups, partial(fold, zones=tuple(zones)), merge_into, "rollup")
