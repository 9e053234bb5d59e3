"""Keeps the conversation summaries in step with the request documents the
writer stores (the counterpart of `storage.rollup_writer` for conversations).

Called with exactly the documents an insert stored (duplicates of earlier
attempts excluded), so a replayed journal never counts a request twice. Failed
updates keep their deltas, merged into the next attempt; a process that dies
before then leaves those conversations short, which
`python -m storage.rebuild_rollups` repairs.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

from storage.conversation_summaries import SummaryDelta, fold, merge_into

logger = logging.getLogger("proxy.conversations")


class SummaryWriter:
    def __init__(self, conversations: AsyncCollection[Any]) -> None:
        self._conversations = conversations
        self._pending: dict[str, SummaryDelta] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def apply(self, documents: list[dict[str, Any]]) -> bool:
        """Count `documents` into their summaries; False if some wait for a retry."""
        if documents:
            merge_into(self._pending, fold(documents).values())
        if not self._pending:
            return True
        deltas = list(self._pending.values())
        try:
            await self._conversations.bulk_write([d.update() for d in deltas], ordered=False)
        except BulkWriteError as exc:
            failed = {e["index"] for e in exc.details.get("writeErrors", [])}
            self._pending = {deltas[i].id: deltas[i] for i in failed}
            logger.warning(
                "%d conversation updates failed; retrying with the next batch", len(failed)
            )
            return False
        except PyMongoError as exc:
            # As for the rollups: a retry may count a few requests twice (a
            # rebuild corrects it); dropping them silently would be worse.
            logger.warning("conversation update failed (%s); retrying with the next batch", exc)
            return False
        self._pending = {}
        return True
