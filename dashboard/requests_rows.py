"""One request as a row of the Requests list (pure): the same view feeds the
server-rendered table and the live tail's JSON, so a pushed row reads exactly
like a rendered one. Every value is plain text; templates and the tail's script
put it into the page as text, never as markup."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from dashboard import formatting as fmt

LIST_PATH = "/dashboard/requests"
SHORT = 8  # characters of an id or a session shown in a cell


@dataclass(frozen=True, slots=True)
class RowView:
    id: str
    short_id: str
    href: str
    time_iso: str
    time_text: str
    endpoint: str
    model: str
    status: str
    status_class: str  # ok | client | server | failed: the badge's colour
    outcome: str
    outcome_text: str
    streaming: bool
    tokens: str
    cost: str
    duration: str
    ttfb: str
    session: str
    session_short: str
    session_href: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def status_class(status: Any, outcome: Any) -> str:
    if isinstance(status, int) and status >= 500:
        return "server"
    if isinstance(status, int) and status >= 400:
        return "client"
    if outcome not in (None, "completed"):
        return "failed"
    return "ok"


OUTCOME_TEXT = {
    "completed": "",
    "upstream_error": "upstream error",
    "client_closed": "client closed",
    "proxy_error": "proxy error",
}


def detail_href(request_id: str) -> str:
    return f"{LIST_PATH}/{quote(request_id, safe='')}"


def session_href(session: str) -> str:
    return f"{LIST_PATH}?{urlencode({'session': session})}"


def precise_time(value: datetime) -> str:
    """The `datetime` attribute with milliseconds: rows seconds apart stay apart."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def row_view(row: dict[str, Any]) -> RowView:
    request_id = str(row.get("requestId") or "")
    when = _instant(row.get("timestamp"))
    status = row.get("statusCode")
    outcome = row.get("outcome")
    cost = row.get("cost") if isinstance(row.get("cost"), dict) else None
    if row.get("unpriced"):
        cost_text = "unpriced"
    elif cost is not None and isinstance(cost.get("usd"), int | float):
        cost_text = fmt.usd(float(cost["usd"]))
    else:
        cost_text = fmt.MISSING
    session = str(row.get("sessionId") or "")
    tokens = row.get("tokens")
    return RowView(
        id=request_id,
        short_id=request_id[:SHORT],
        href=detail_href(request_id),
        time_iso=precise_time(when) if when else "",
        time_text=fmt.utc_text(when) if when else fmt.MISSING,
        endpoint=str(row.get("endpoint") or ""),
        model=str(row.get("model") or fmt.MISSING),
        status=str(status) if status is not None else fmt.MISSING,
        status_class=status_class(status, outcome),
        outcome=str(outcome or ""),
        outcome_text=OUTCOME_TEXT.get(str(outcome), str(outcome or "")),
        streaming=bool(row.get("isStreaming")),
        tokens=fmt.number(tokens) if isinstance(tokens, int) and tokens else fmt.MISSING,
        cost=cost_text,
        duration=fmt.milliseconds(_number(row.get("responseTime"))),
        ttfb=fmt.milliseconds(_number(row.get("timeToFirstByte"))),
        session=session,
        session_short=session[:SHORT],
        session_href=session_href(session) if session else "",
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
