"""Where the request log ends: the newest minute the rollups counted a request in.

Reads that walk the log (or the conversation summaries) back from now in growing
time windows start there instead of crossing a quiet stretch window by window: a
log that stopped six hours ago would otherwise be read first in windows that hold
nothing, then in one grown four times too wide, and the development database
reads a whole index range before it sorts and limits.

The edge is found coarsest tier first, each finer tier read within the newest
counted bucket of the coarser one (at most ~75 small rollup documents in four
indexed reads on `(tier, cuboid, t)`), never by sorting anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from stats.timebuckets import COARSEST_FIRST, TIERS, Tier, aware, floor_to

# How far back the edge is looked for: a log quiet for longer is walked back
# window by window as before (its readers cap their rounds).
EDGE_DAYS = 32


def first_query(now: datetime) -> dict[str, Any]:
    """The coarsest tier's rollups (every request, no cuboid) of the last EDGE_DAYS."""
    coarsest = COARSEST_FIRST[0]
    since = floor_to(now, coarsest) - timedelta(days=EDGE_DAYS)
    return {"tier": coarsest.name, "cuboid": "", "t": {"$gte": since}}


def within(tier: Tier, start: datetime, parent: Tier) -> dict[str, Any]:
    """`tier`'s rollups (every request) inside the `parent` bucket starting at `start`."""
    end = start + timedelta(seconds=parent.seconds)
    return {"tier": tier.name, "cuboid": "", "t": {"$gte": start, "$lt": end}}


def newest_bucket(docs: list[dict[str, Any]]) -> datetime | None:
    """The start of the newest rollup bucket that counted a request."""
    counted = [aware(d["t"]) for d in docs if _requests(d) > 0]
    return max(counted) if counted else None


async def log_edge(rollups: AsyncCollection[Any], now: datetime) -> datetime | None:
    """The end of the newest minute with a request (within EDGE_DAYS of `now`),
    None when none was counted or the rollups cannot be read."""
    projection = {"_id": 0, "t": 1, "requests": 1}
    query = first_query(now)
    start: datetime | None = None
    try:
        for coarser, tier in zip((None, *COARSEST_FIRST), COARSEST_FIRST, strict=False):
            if coarser is not None and start is not None:
                query = within(tier, start, coarser)
            cursor = rollups.find(query, projection).limit(_buckets(tier, coarser))
            docs = await cursor.to_list(None)
            found = newest_bucket(docs)
            if found is None:
                if coarser is None or start is None:
                    return None
                # A finer tier missing for a counted coarser bucket (rollups being
                # repaired): that bucket's end is the edge.
                return start + timedelta(seconds=coarser.seconds)
            start = found
    except PyMongoError:
        return None
    return None if start is None else start + timedelta(seconds=TIERS[0].seconds)


def _buckets(tier: Tier, coarser: Tier | None) -> int:
    if coarser is None:
        return EDGE_DAYS * 86_400 // tier.seconds + 1
    return coarser.seconds // tier.seconds


def _requests(doc: dict[str, Any]) -> int:
    value = doc.get("requests")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
