"""How the request list reads the log (pure): which index a filter's rows come
from (`plan`), the time windows it is read in, and the pipelines of one window.

The development database reads a whole index range before it sorts and limits,
so every read is an index range narrowed to a time window near the rows a page
needs; MongoDB stops each window at its limit anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.queries import (
    LIST_PROJECTION,
    STATUS_CODE,
    Cursor,
    RequestFilter,
    prefix_range,
    status_filter,
    time_filter,
)


@dataclass(frozen=True, slots=True)
class Plan:
    """How one filter is read: `leading` is the equality (or prefix) on the first
    field of `index`, so the first `$match` walks that index's (field, timestamp)
    range; `residual` is checked in a second `$match` on what the first found.
    `windowed`: the leading condition is an equality, so a time window narrows
    the index range. A prefix is a range itself: the development database serves
    one range per index read, so the prefix's range is read once (a session id
    prefix names one session or a few) and the time bounds join the residual."""

    index: str
    leading: dict[str, Any]
    residual: list[dict[str, Any]]
    windowed: bool = True
    # More equalities on the same index whose rows together are the filter's:
    # each is read in every window and the rows merged (see `status_leads`).
    more_leads: tuple[dict[str, Any], ...] = ()

    @property
    def leads(self) -> tuple[dict[str, Any], ...]:
        return (self.leading, *self.more_leads)


# The list is read in time windows walking away from its cursor: the development
# database reads a whole index range before it sorts and limits, so a window keeps
# that range small; MongoDB stops each window at its limit anyway. The first
# window is FIRST_WINDOW wide; each next one grows by what the last one yielded
# (at most MAX_GROWTH times). A page gives up after MAX_PROBES windows or
# LIST_BUDGET_SECONDS and says how far back it looked.
FIRST_WINDOW = timedelta(minutes=2)
MAX_GROWTH = 4.0
MAX_PROBES = 24
LIST_BUDGET_SECONDS = 3.0
# Nothing the log holds is older than this: where a window walking back stops.
OLDEST = datetime(2000, 1, 1, tzinfo=UTC)
# Rows read at one timestamp when a page is cut inside a run of equal timestamps.
MAX_TIES = 1_000


# The first window is sized from the log's recent pace: the quarter-hour rollups
# of the last PACE_HOURS (of the filter's model or organization when it names one;
# the failed requests for an error filter), so a sparse log is not walked back two
# minutes at a time, a busy one not read an hour at a time, and a read from now
# steps over the quiet stretch since the newest counted quarter.
PACE_HOURS = 24
PACE_TIER = "q"
PACE_BUCKET = timedelta(minutes=15)
PACE_DOCS = PACE_HOURS * 4 + 1
MIN_FIRST_WINDOW = timedelta(seconds=5)
MAX_FIRST_WINDOW = timedelta(days=7)
# The rows a first window is sized for: a read of thousands (the API's 10,000-row
# pages) goes on in growing windows, each within the time budget, never one
# window the budget cannot finish.
PACED_ROWS = 500


def pace_query(f: RequestFilter, now: datetime) -> tuple[dict[str, Any], str]:
    """The quarter-hour rollups counting what `f` lists (on `(tier, cuboid[,
    model|org], t)`) over the last PACE_HOURS, and the counter to sum (a dotted
    path for a status class: the rollups count requests per class)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    where: dict[str, Any] = {"tier": PACE_TIER, "cuboid": ""}
    if f.model:
        where.update(cuboid="m", model=f.model)
    elif f.organization:
        where.update(cuboid="o", org=f.organization)
    where["t"] = {"$gte": hour - timedelta(hours=PACE_HOURS)}
    return where, pace_counter(f.status)


def pace_counter(status: str | None) -> str:
    """What the rollups count of a status filter's rows: its class when it names
    one (a 5xx list is paced by the 5xx count, not by every failure), the failed
    requests for `error`, every request otherwise."""
    if not status_leads(status):
        return "requests"
    if status in ("4xx", "5xx"):
        return f"status.{status}"
    if status is not None and STATUS_CODE.match(status) is not None:
        return f"status.{status[0]}xx"
    return "errors"


def counted(document: dict[str, Any], counter: str) -> int:
    """A rollup document's `counter` (a dotted path), 0 when it has none."""
    value: Any = document
    for part in counter.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return int(value or 0)


def minutes_query(where: dict[str, Any], quarter: datetime) -> dict[str, Any]:
    """`pace_query`'s rollups at the minute tier, within the quarter-hour that
    starts at `quarter`: where in it the log's newest counted minute is."""
    return {**where, "tier": "m", "t": {"$gte": quarter, "$lt": quarter + PACE_BUCKET}}


def paced_window(counted: int, wanted: int) -> timedelta:
    """A window expected to hold `wanted` rows (half again as margin; at most
    PACED_ROWS, later windows grow from there) at the pace of `counted` rows in
    PACE_HOURS; FIRST_WINDOW when nothing was counted."""
    if counted <= 0:
        return FIRST_WINDOW
    window = timedelta(hours=PACE_HOURS) * (1.5 * min(wanted, PACED_ROWS) / counted)
    return min(MAX_FIRST_WINDOW, max(MIN_FIRST_WINDOW, window))


def quiet_stretch(
    starts: list[datetime], now: datetime, bucket: timedelta = PACE_BUCKET
) -> timedelta:
    """How long the log has been quiet: from the end of the newest bucket the
    rollups counted (`starts`: their starts, each `bucket` long) to now. A first
    window read from now reaches that much further back: the stretch holds nothing
    to read (a row stored after its bucket was counted still falls inside the
    window). The minute tier of the newest quarter tells it to the minute."""
    if not starts:
        return timedelta(0)
    return max(timedelta(0), now - (max(starts) + bucket))


def next_span(span: timedelta, found: int, wanted: int) -> timedelta:
    """The next window's width: four times wider after an empty one, else wide
    enough for the rows still wanted at the density just seen (half again as margin),
    never narrower than the last and never more than MAX_GROWTH times wider."""
    if found <= 0:
        return span * MAX_GROWTH
    return span * min(MAX_GROWTH, max(1.0, 1.5 * wanted / found))


# Every outcome but "completed" (None: a record without one). The proxy records a
# status of 400 or more as an upstream error (forwarding: the first verdict on an
# exchange wins, and no path completes one answered with an error status), so the
# rows any error status filter keeps all have one of these outcomes.
ERROR_OUTCOMES: tuple[str | None, ...] = ("upstream_error", "client_closed", "proxy_error", None)


def status_leads(status: str | None, organization: str | None = None) -> tuple[dict[str, Any], ...]:
    """Index reads on `outcome_time` (`org_outcome_time` with an organization)
    that together hold every row an error status filter (`error`, `4xx`, `5xx`, a
    code of 400 or more) keeps; nothing for the others. A few percent of the log
    fails: reading only the failed rows (of the organization) keeps a page of
    errors to its own rows, where a scan of the time windows read some twenty rows
    per row shown. The status filter itself stays residual."""
    if status is None:
        return ()
    failing = status in ("error", "4xx", "5xx") or (
        STATUS_CODE.match(status) is not None and int(status) >= 400
    )
    if not failing:
        return ()
    if organization:
        return tuple({"organizationId": organization, "outcome": o} for o in ERROR_OUTCOMES)
    return tuple({"outcome": o} for o in ERROR_OUTCOMES)


# A multi-word search is anchored on its rarest word, counted in the newest minute
# of its first window (a `$count` of at most a minute of log per word).
SAMPLE_SPAN = timedelta(minutes=1)


def anchor(words: tuple[str, ...], counts: dict[str, int] | None = None) -> str:
    """The word the index lookup starts from: the one counted least in a sample of
    the log (`counts`), else the longest (long words are rarer)."""
    if counts:
        return min(words, key=lambda w: (counts.get(w, 0), -len(w)))
    return max(words, key=len)


def sample_window(
    f: RequestFilter,
    edge: datetime | None,
    quiet: timedelta,
    now: datetime,
    newest_first: bool,
) -> tuple[datetime, datetime] | None:
    """Where a multi-word search counts its words: the SAMPLE_SPAN of log next to
    where its first window starts (below the cursor, or below the quiet stretch
    before now; above the cursor or the range's start when reading newer rows),
    cut to the filter's range; None when nothing of it is left."""
    if newest_first:
        top = edge or now - quiet
        lower, upper = clamp_window(f, top - SAMPLE_SPAN, top)
    else:
        bottom = edge or f.start or now - SAMPLE_SPAN
        lower, upper = clamp_window(f, bottom, bottom + SAMPLE_SPAN)
    if lower is None or upper is None or lower >= upper:
        return None
    return lower, upper


def sample_pipeline(word: str, lower: datetime, upper: datetime) -> list[dict[str, Any]]:
    """How many rows hold `word` in [lower, upper) (an index range of the
    `conversation_words_time` index; at most SAMPLE_SPAN of log)."""
    return [
        {"$match": {"conversation.words": word, "timestamp": {"$gte": lower, "$lt": upper}}},
        {"$count": "n"},
    ]


def plan(
    f: RequestFilter,
    counts: dict[str, int] | None = None,
    indexes: frozenset[str] | None = None,
) -> Plan:
    """The most selective index the filter allows leads; the rest is residual.
    `counts`: the search words' counts in a sample of the log (see `anchor`).
    `indexes`: the names of the indexes the collection has (None: all of them);
    an index still being built after an upgrade is not planned on (the read
    would be a collection scan), its older alternative is.

    The development database plans a `$match` that names a field outside the
    index it could use as a collection scan, so the leading `$match` holds only
    the index's fields and everything else follows in a second one (a stage
    MongoDB merges back, and SecantusDB applies to the index's few results)."""
    leading: tuple[str, dict[str, Any]] | None = None
    residual: list[dict[str, Any]] = []
    by_org = f.organization and (indexes is None or "org_outcome_time" in indexes)
    failing = status_leads(f.status, f.organization if by_org else None)
    failed_index = "org_outcome_time" if by_org else "outcome_time"
    rare_outcome = f.outcome if f.outcome not in (None, "completed") else None
    word = anchor(f.words, counts) if f.words else None
    candidates: list[tuple[str, dict[str, Any] | None]] = [
        ("session_time", {"sessionId": f.session} if f.session else None),
        (
            "session_time",
            {"sessionId": prefix_range(f.session_prefix)} if f.session_prefix else None,
        ),
        ("conversation_words_time", {"conversation.words": word} if word else None),
        ("outcome_time", {"outcome": rare_outcome} if rare_outcome else None),
        ("model_time", {"model": f.model} if f.model else None),
        ("org_time", {"organizationId": f.organization} if f.organization else None),
    ]
    more_leads: tuple[dict[str, Any], ...] = ()
    for index, condition in candidates:
        if condition is None:
            continue
        if leading is None and failing and index in ("model_time", "org_time"):
            # Failed requests are rarer than a model's or an organization's.
            leading, more_leads = (failed_index, failing[0]), failing[1:]
        if leading is None:
            leading = (index, condition)
        elif not (leading[0] == "org_outcome_time" and index == "org_time"):
            residual.append(condition)  # (the organization leads with the failures)
    if leading is None and failing:
        leading, more_leads = (failed_index, failing[0]), failing[1:]
    if len(f.words) > 1:
        residual.append({"conversation.words": {"$all": list(f.words)}})
    if f.status:
        residual.append(status_filter(f.status))
    if f.outcome and f.outcome != rare_outcome:
        residual.append({"outcome": f.outcome})
    if f.streaming is not None:
        residual.append({"isStreaming": f.streaming})
    if f.project is not None:
        residual.append({"conversation.projectPath": f.project})
    index, condition = leading or ("timestamp_desc", {})
    windowed = not any(isinstance(v, dict) for v in condition.values())
    return Plan(index, condition, residual, windowed, more_leads if condition else ())


def clamp_window(
    f: RequestFilter, lower: datetime | None, upper: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """A window cut to the filter's time range."""
    if f.start is not None and (lower is None or lower < f.start):
        lower = f.start
    if f.end is not None and (upper is None or upper > f.end):
        upper = f.end
    return lower, upper


def window_pipeline(
    p: Plan,
    lower: datetime | None,
    upper: datetime | None,
    *,
    newest_first: bool,
    cursor: Cursor | None,
    limit: int,
    projection: dict[str, int] = LIST_PROJECTION,
    lead: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One window's rows: [lower, upper) on the leading index (`lead`: one of the
    plan's leads, its first by default), then the residual filters. In the window
    that starts at the cursor, the cursor's own timestamp is included and only the
    ids beyond the cursor's are kept there, so rows sharing a timestamp with the
    last one shown are neither skipped nor repeated."""
    at_cursor = cursor is not None and (upper if newest_first else lower) == cursor.timestamp
    keyed = at_cursor and cursor is not None and cursor.request_id is not None
    bounds: dict[str, Any] = {}
    if lower is not None:
        bounds["$gt" if at_cursor and not newest_first and not keyed else "$gte"] = lower
    if upper is not None:
        bounds["$lte" if keyed and newest_first else "$lt"] = upper
    first: dict[str, Any] = dict(p.leading if lead is None else lead)
    rest = list(p.residual)
    if bounds and p.windowed:
        first["timestamp"] = bounds
    elif bounds:
        rest.append({"timestamp": bounds})
    if keyed and cursor is not None:
        seen = {"$gte": cursor.request_id} if newest_first else {"$lte": cursor.request_id}
        rest.append({"$nor": [{"timestamp": cursor.timestamp, "requestId": seen}]})
    return [
        *_matches(first, rest),
        {"$sort": {"timestamp": -1 if newest_first else 1}},
        {"$limit": limit},
        {"$project": projection},
    ]


def ties_pipeline(
    p: Plan,
    at: datetime,
    *,
    newest_first: bool,
    cursor: Cursor | None,
    limit: int,
    projection: dict[str, int] = LIST_PROJECTION,
    lead: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every row at exactly `at` (of `lead`, as for `window_pipeline`): a page cut
    inside a run of equal timestamps must know them all to order them by id (the
    index orders them by storage place)."""
    rest = list(p.residual)
    if cursor is not None and cursor.request_id is not None and cursor.timestamp == at:
        beyond = "$lt" if newest_first else "$gt"
        rest.append({"requestId": {beyond: cursor.request_id}})
    leading = p.leading if lead is None else lead
    first = {**leading, "timestamp": at} if p.windowed else dict(leading)
    if not p.windowed:
        rest.append({"timestamp": at})
    return [*_matches(first, rest), {"$limit": limit}, {"$project": projection}]


def _matches(first: dict[str, Any], rest: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stages: list[dict[str, Any]] = [{"$match": first}]
    if rest:
        stages.append({"$match": rest[0] if len(rest) == 1 else {"$and": rest}})
    return stages


def id_prefix_pipeline(prefix: str, f: RequestFilter, limit: int) -> list[dict[str, Any]]:
    """Requests whose id starts with `prefix` (the requestId index), newest first."""
    rest = plan(f).residual
    for field, value in (
        ("sessionId", f.session),
        ("model", f.model),
        ("organizationId", f.organization),
        ("outcome", f.outcome),
    ):
        if value and {field: value} not in rest:  # one of them may have led the plan
            rest.append({field: value})
    window = time_filter(f.start, f.end)
    if window:
        rest.append(window)
    return [
        *_matches({"requestId": prefix_range(prefix)}, rest),
        {"$sort": {"timestamp": -1, "requestId": -1}},
        {"$limit": limit},
        {"$project": LIST_PROJECTION},
    ]


def row_key(row: dict[str, Any]) -> tuple[datetime, str]:
    """A row's place in the list's order."""
    return row["timestamp"], row.get("requestId") or ""
