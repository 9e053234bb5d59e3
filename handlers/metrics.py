"""`GET /metrics`: Prometheus text format, merged across all workers."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from metrics import registry as m
from recording.paths import RecorderPaths
from recording.status import journal_disk_bytes
from runtime.settings import Settings

bp = Blueprint("metrics")


@bp.get("/metrics")
@openapi.definition(
    summary="Prometheus metrics (text exposition format)",
    operation="getMetrics",
    tag="health",
    response=[
        openapi.definitions.Response(
            {"text/plain": openapi.String()}, status=200, description="Prometheus text format"
        )
    ],
)
async def metrics(request: Request) -> HTTPResponse:
    live = request.app.ctx.live
    # The shared per-worker gauge is exact; set it at scrape time, not per request.
    m.IN_FLIGHT.set(live.total_in_flight)
    m.JOURNAL_BYTES.set(await journal_bytes(request.app.ctx.settings))
    directory = m.multiprocess_dir()
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
    else:
        registry = REGISTRY
    return HTTPResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


async def journal_bytes(settings: Settings) -> int:
    """The pod's journal on disk, measured now (a few stat calls, off the loop
    in case the disk is slow); 0 when nothing is recorded."""
    if not settings.request_log:
        return 0
    return await asyncio.to_thread(journal_disk_bytes, RecorderPaths(settings.data_dir).journal)
