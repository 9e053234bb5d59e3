"""The conversation summaries, kept exactly once per batch (see stats.derived_writer)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from conversations.summaries import SummaryDelta, fold, merge_into
from stats.derived_writer import DerivedWriter


def summary_writer(conversations: AsyncCollection[Any]) -> DerivedWriter[SummaryDelta]:
    return DerivedWriter(
        conversations, lambda docs: fold(docs).values(), merge_into, "conversation"
    )
