"""`/api/stats*`: usage analytics from the rollups (the seed's routes and more).

Time parameters take ISO 8601, a date, or epoch milliseconds (Grafana's
`${__from}`/`${__to}`); `tz` is an IANA zone for day and hour boundaries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from handlers.params import BadParameter, datetime_param, int_param, log_unavailable, text_param
from openapi import params
from openapi import stats as schemas
from openapi.responses import error, guarded, ok
from stats.service import StatsService
from stats.timebuckets import BUCKET_MINUTES, TimeError, zone

bp = Blueprint("stats", url_prefix="/api/stats")

_P = openapi.definitions.Parameter
_TIME = "ISO 8601 date-time, a date (midnight in tz), or epoch milliseconds"
_START = _P("start", params.DATE_TIME_OR_DATE, description=f"Range start (inclusive): {_TIME}")
_END = _P("end", params.DATE_TIME_OR_DATE, description=f"Range end (exclusive): {_TIME}")
_START_REQ = _P(
    "start", params.REQUIRED_DATE_TIME_OR_DATE, required=True, description=f"Range start: {_TIME}"
)
_END_REQ = _P(
    "end", params.REQUIRED_DATE_TIME_OR_DATE, required=True, description=f"Range end: {_TIME}"
)
_ORG = _P("org", params.text(), description="Organization id (anthropic-organization-id)")
_MODEL = _P("model", params.text(), description="Exact model id (as routed)")
_TZ = _P("tz", params.text(64, default="UTC"), description="IANA time zone for day/hour buckets")
_BUCKET = _P(
    "bucket",
    params.one_of(list(BUCKET_MINUTES), 60),
    description=f"Bucket size in minutes, one of {', '.join(map(str, BUCKET_MINUTES))}",
)
_BAD = error(400)
_OFF = error(503)


def _time(
    request: Request, name: str, tz_name: str | None, *, required: bool = False
) -> datetime | None:
    """A date alone means local midnight in `tz`, so `start=2026-11-01&tz=Europe/Paris`
    starts the Paris day."""
    raw = request.args.get(name)
    if raw and len(raw) == 10 and raw[4] == "-" and raw[7] == "-":
        try:
            return datetime.fromisoformat(raw).replace(tzinfo=zone(tz_name))
        except ValueError:
            raise BadParameter(f"{name}: not a valid date: {raw!r}") from None
    return datetime_param(request, name, required=required)


async def _answer(
    request: Request, query: Callable[[StatsService], Awaitable[dict[str, Any]]]
) -> HTTPResponse:
    service: StatsService | None = getattr(request.app.ctx, "stats", None)
    if service is None:
        return log_unavailable()
    try:
        return json(await query(service))
    except OverflowError:
        # Buckets or a default start beyond what datetime holds (years 1 to 9999).
        return BadParameter("start/end: too close to year 1 or year 9999").response()


def _range(request: Request, *, required: bool, aliases: bool = False) -> tuple[Any, ...]:
    tz_name = text_param(request, "tz", "UTC", 64)
    tz = zone(tz_name)
    start_name = "start_date" if aliases and "start_date" in request.args else "start"
    end_name = "end_date" if aliases and "end_date" in request.args else "end"
    start = _time(request, start_name, tz_name, required=required)
    end = _time(request, end_name, tz_name, required=required)
    if start is not None and end is not None and end <= start:
        raise BadParameter(f"{end_name}: must be after {start_name}")
    return start, end, tz


def _filters(request: Request) -> tuple[str | None, str | None]:
    # `all` is how Grafana's "All" option and the seed's model filter say "no filter".
    model, org = text_param(request, "model"), text_param(request, "org")
    return (None if model == "all" else model), (None if org == "all" else org)


def _bucket(request: Request) -> int:
    minutes = int_param(request, "bucket", 60, 1, 1440)
    if minutes not in BUCKET_MINUTES:
        raise BadParameter(
            f"bucket: must be one of {', '.join(map(str, BUCKET_MINUTES))} (minutes)"
        )
    return minutes


def _bad(exc: Exception) -> HTTPResponse:
    return BadParameter(str(exc)).response()


@bp.get("")
@openapi.definition(
    summary="Usage totals and per-model usage over a range",
    operation="getStats",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[
        _P(
            "start_date",
            params.DATE_TIME_OR_DATE,
            description=f"Range start: {_TIME} (alias: start)",
        ),
        _P("end_date", params.DATE_TIME_OR_DATE, description=f"Range end: {_TIME} (alias: end)"),
        _MODEL,
        _ORG,
        _TZ,
    ],
    response=guarded(ok(schemas.UsageStats), _BAD, _OFF),
)
async def usage(request: Request) -> HTTPResponse:
    try:
        start, end, _ = _range(request, required=False, aliases=True)
        model, org = _filters(request)
    except (BadParameter, TimeError) as exc:
        return _bad(exc)
    return await _answer(request, lambda s: s.usage(start, end, model, org))


@bp.get("/dashboard")
@openapi.definition(
    summary="Daily usage (local days in tz), zero-filled; default the last 30 days",
    operation="getDashboardStats",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[_START, _END, _ORG, _MODEL, _TZ],
    response=guarded(ok(schemas.DashboardStats), _BAD, _OFF),
)
async def dashboard(request: Request) -> HTTPResponse:
    try:
        start, end, tz = _range(request, required=False)
        model, org = _filters(request)
    except (BadParameter, TimeError) as exc:
        return _bad(exc)
    try:
        return await _answer(request, lambda s: s.daily(start, end, tz, model, org))
    except TimeError as exc:
        return _bad(exc)


@bp.get("/hourly")
@openapi.definition(
    summary="Usage per time bucket (default hourly), zero-filled",
    operation="getHourlyStats",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[_START_REQ, _END_REQ, _BUCKET, _ORG, _MODEL, _TZ],
    response=guarded(ok(schemas.HourlyStatsResponse), _BAD, _OFF),
)
async def hourly(request: Request) -> HTTPResponse:
    try:
        start, end, tz = _range(request, required=True)
        minutes = _bucket(request)
        model, org = _filters(request)
    except (BadParameter, TimeError) as exc:
        return _bad(exc)
    try:
        return await _answer(request, lambda s: s.hourly(start, end, minutes, tz, model, org))
    except TimeError as exc:
        return _bad(exc)


@bp.get("/models")
@openapi.definition(
    summary="Usage per model, by tokens descending",
    operation="getModelStats",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[_START_REQ, _END_REQ, _ORG, _MODEL, _TZ],
    response=guarded(ok(schemas.ModelStatsResponse), _BAD, _OFF),
)
async def models(request: Request) -> HTTPResponse:
    try:
        start, end, _ = _range(request, required=True)
        model, org = _filters(request)
    except (BadParameter, TimeError) as exc:
        return _bad(exc)
    return await _answer(request, lambda s: s.models(start, end, model, org))


@bp.get("/organizations")
@openapi.definition(
    summary="Distinct organization ids seen in responses",
    operation="getOrganizations",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    response=guarded(ok(schemas.OrganizationsResponse), _OFF),
)
async def organizations(request: Request) -> HTTPResponse:
    return await _answer(request, lambda s: s.organizations())


@bp.get("/latency")
@openapi.definition(
    summary="Response time and time to first byte per model: average, p50, p95, p99 (ms)",
    operation="getLatencyStats",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[_START_REQ, _END_REQ, _ORG, _MODEL, _TZ],
    response=guarded(ok(schemas.LatencyStatsResponse), _BAD, _OFF),
)
async def latency(request: Request) -> HTTPResponse:
    try:
        start, end, _ = _range(request, required=True)
        model, org = _filters(request)
    except (BadParameter, TimeError) as exc:
        return _bad(exc)
    return await _answer(request, lambda s: s.latency(start, end, model, org))


@bp.get("/ratelimits")
@openapi.definition(
    summary="Rate-limit headroom per organization: latest, and per bucket (min remaining, "
    "max unified 5h/7d utilization)",
    operation="getRateLimitStats",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[_START_REQ, _END_REQ, _BUCKET, _ORG, _TZ],
    response=guarded(ok(schemas.RateLimitStatsResponse), _BAD, _OFF),
)
async def rate_limits(request: Request) -> HTTPResponse:
    try:
        start, end, tz = _range(request, required=True)
        minutes = _bucket(request)
        org = text_param(request, "org")
        org = None if org == "all" else org
    except (BadParameter, TimeError) as exc:
        return _bad(exc)
    try:
        return await _answer(request, lambda s: s.rate_limits(start, end, minutes, tz, org))
    except TimeError as exc:
        return _bad(exc)
