"""Keeps the rollups in step with the request documents the writer stores.

Called with exactly the documents an insert stored (duplicates of earlier
attempts excluded), so a replayed journal never counts a request twice. If the
rollup update fails, its deltas are kept and merged into the next attempt; a
process that dies before then leaves the rollups short by those requests, which
`python -m storage.rebuild_rollups` repairs (the request documents are the
source of truth).
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

from storage.rollups import Delta, fold, merge_into, rollup_id

logger = logging.getLogger("proxy.rollups")


class RollupWriter:
    def __init__(self, rollups: AsyncCollection[Any]) -> None:
        self._rollups = rollups
        self._pending: dict[str, Delta] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def apply(self, documents: list[dict[str, Any]]) -> bool:
        """Count `documents` into the rollups; False if some deltas wait for a retry."""
        if documents:
            merge_into(self._pending, fold(documents))
        if not self._pending:
            return True
        deltas = list(self._pending.values())
        try:
            await self._rollups.bulk_write([d.update() for d in deltas], ordered=False)
        except BulkWriteError as exc:
            failed = {e["index"] for e in exc.details.get("writeErrors", [])}
            self._pending = {rollup_id(deltas[i].key): deltas[i] for i in failed}
            logger.warning("%d rollup updates failed; retrying with the next batch", len(failed))
            return False
        except PyMongoError as exc:
            # Unknown how much of an unordered bulk landed; retrying may count a
            # few requests twice, which a rebuild corrects. Losing them silently
            # would be worse.
            logger.warning("rollup update failed (%s); retrying with the next batch", exc)
            return False
        self._pending = {}
        return True
