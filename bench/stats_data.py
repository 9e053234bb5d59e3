"""Synthetic request-log documents for the stats and dashboard benchmarks and
tests: the fields the rollups read, with realistic spreads (models,
organizations, errors, cache use, rate-limit headers), in time order as a writer
would see them; `dashboard_documents` makes them Claude Code traffic (sessions,
bodies, headers, conversation fields)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from bench.session_traffic import ConversationTraffic

MODELS = (
    ("claude-sonnet-4-5-20250929", 0.6),
    ("claude-haiku-4-5-20251001", 0.3),
    ("claude-opus-4-1-20250805", 0.1),
)
ORGS = ("org-alpha", "org-beta")


def document(rng: random.Random, timestamp: datetime) -> dict[str, Any]:
    model = rng.choices([m for m, _ in MODELS], [w for _, w in MODELS])[0]
    org = rng.choice(ORGS)
    roll = rng.random()
    status = 200 if roll < 0.95 else (429 if roll < 0.98 else 529)
    ok = status == 200
    usage = None
    cost = None
    if ok:
        cache_5m = rng.choice((0, 0, rng.randrange(0, 4000)))
        cache_1h = rng.choice((0, 0, 0, rng.randrange(0, 2000)))
        usage = {
            "input_tokens": rng.randrange(1, 3000),
            "output_tokens": rng.randrange(1, 4000),
            "cache_creation_input_tokens": cache_5m + cache_1h,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache_5m,
                "ephemeral_1h_input_tokens": cache_1h,
            },
            "cache_read_input_tokens": rng.choice((0, rng.randrange(0, 60000))),
        }
        cost = {"usd": round(rng.random() * 0.2, 6)}
    tokens = (
        usage["input_tokens"]
        + usage["output_tokens"]
        + usage["cache_creation_input_tokens"]
        + usage["cache_read_input_tokens"]
        if usage
        else 0
    )
    ttfb = round(rng.lognormvariate(6.5, 0.6))
    request_id = uuid.UUID(int=rng.getrandbits(128)).hex
    return {
        "_id": request_id,
        "requestId": request_id,
        "schemaVersion": 1,
        "timestamp": timestamp,
        "endpoint": "/v1/messages",
        "model": model,
        "organizationId": org,
        "statusCode": status,
        "outcome": "completed" if ok else "upstream_error",
        "usage": usage,
        "tokens": tokens,
        "cost": cost,
        "unpriced": False,
        "responseTime": ttfb + round(rng.lognormvariate(8.5, 1.0)),
        "timeToFirstByte": ttfb,
        "response": {
            "statusCode": status,
            "rateLimit": {
                "organizationId": org,
                "requestsLimit": 4000,
                "requestsRemaining": rng.randrange(3000, 4000),
                "tokensLimit": 2_000_000,
                "tokensRemaining": rng.randrange(1_000_000, 2_000_000),
                "inputTokensRemaining": rng.randrange(500_000, 1_000_000),
                "outputTokensRemaining": rng.randrange(100_000, 400_000),
                "unifiedStatus": "allowed",
                "unifiedUtilization5h": round(rng.random(), 3),
                "unifiedUtilization7d": round(rng.random(), 3),
            },
        },
    }


def documents(
    count: int, start: datetime, span: timedelta, seed: int = 1
) -> Iterator[dict[str, Any]]:
    """`count` documents spread evenly (with jitter) over [start, start + span)."""
    rng = random.Random(seed)
    step = span / count
    for n in range(count):
        yield document(rng, start + step * n + step * rng.random())


def dashboard_documents(
    count: int,
    start: datetime,
    span: timedelta,
    seed: int = 1,
    traffic: ConversationTraffic | None = None,
) -> Iterator[dict[str, Any]]:
    """`documents(count, start, span, seed)`, each extended into a request of a
    Claude Code session (pass a ConversationTraffic to learn the ids of the long
    conversation and of the large bodies afterwards)."""
    traffic = traffic or ConversationTraffic(seed, count)
    for n, doc in enumerate(documents(count, start, span, seed)):
        yield traffic.extend(n, doc)
