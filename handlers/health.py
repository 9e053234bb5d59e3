"""`/health` (readiness) and `/livez` (liveness and live state). No auth, not counted."""

from __future__ import annotations

from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from openapi.components import DrainingResponse, HealthResponse, LivezResponse
from openapi.responses import ok, ref
from recording.listeners import recording_state
from runtime.drain import close_after_response
from runtime.state import LiveState

bp = Blueprint("health")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _live(request: Request) -> LiveState:
    return request.app.ctx.live


@bp.get("/health")
@openapi.definition(
    summary="Readiness: 200 while serving, 503 once draining",
    operation="healthCheck",
    tag="health",
    response=[
        ok(HealthResponse, "Serving"),
        openapi.definitions.Response(
            {"application/json": ref(DrainingResponse)}, status=503, description="Draining"
        ),
    ],
)
async def health(request: Request) -> HTTPResponse:
    live = _live(request)
    if live.draining:
        close_after_response(request)
        return json(
            {"status": "draining", "timestamp": _now(), "in_flight": live.total_in_flight},
            status=503,
        )
    return json({"status": "healthy", "timestamp": _now()})


@bp.get("/livez")
@openapi.definition(
    summary="Liveness and live state: in-flight requests, draining flag",
    operation="livenessProbe",
    tag="health",
    response=[ok(LivezResponse)],
)
async def livez(request: Request) -> HTTPResponse:
    live = _live(request)
    return json(
        {
            "status": "ok",
            # The whole server's count (all workers); `worker_in_flight` is this one's.
            "in_flight": live.total_in_flight,
            "worker_in_flight": live.in_flight,
            "draining": live.draining,
            "timestamp": _now(),
            "writer": recording_state(request.app, request.app.ctx.settings),
        }
    )
