"""The conversation summaries, kept exactly once per batch (see stats.derived_writer)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from stats.derived_writer import DerivedWriter
from storage.conversation_summaries import SummaryDelta, fold, merge_into


def summary_writer(conversations: AsyncCollection[Any]) -> DerivedWriter[SummaryDelta]:
    return DerivedWriter(
        conversations, lambda docs: fold(docs).values(), merge_into, "conversation"
    )
