"""Metric definitions, correct with several Sanic workers.

Each worker process writes its samples to files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode), set by the main process before the
workers start; the scrape, answered by any worker, merges all of them.
Labels are bounded: no keys, sessions or request ids; models and endpoints are
folded to a bounded set (see `labels`).
"""

from __future__ import annotations

import os
import platform
import tempfile

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "claude_proxy"
VERSION = "0.1.0"

# Claude Code streams run for minutes: buckets reach 10 minutes.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
)

REQUESTS = Counter(
    f"{PREFIX}_requests_total",
    "Requests through /v1/*, by endpoint, model, status class and streaming",
    ["endpoint", "model", "status_class", "stream"],
)
DURATION = Histogram(
    f"{PREFIX}_request_duration_seconds",
    "Time from request received to the last byte sent",
    ["endpoint", "model"],
    buckets=LATENCY_BUCKETS,
)
TTFB = Histogram(
    f"{PREFIX}_time_to_first_byte_seconds",
    "Time from request received to the first response body byte",
    ["endpoint", "model"],
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter(
    f"{PREFIX}_tokens_total",
    "Tokens by type (input, output, cache_write_5m, cache_write_1h, cache_read) and model",
    ["type", "model"],
)
COST = Counter(
    f"{PREFIX}_cost_usd_total",
    "Cost in USD of priced requests (Batch API results at the batch rate)",
    ["model"],
)
UNPRICED = Counter(
    f"{PREFIX}_unpriced_requests_total", "Requests whose model has no price", ["model"]
)
COST_INCOMPLETE = Counter(
    f"{PREFIX}_cost_incomplete_total",
    "Priced requests whose cost is a lower bound (a modifier or an attempt's model "
    "without a price, a clipped batch download)",
    ["model"],
)
UPSTREAM_ERRORS = Counter(
    f"{PREFIX}_upstream_errors_total",
    "Failures reaching or reading the upstream, and upstream error answers",
    ["reason"],
)
CLIENT_DISCONNECTS = Counter(
    f"{PREFIX}_client_disconnects_total", "Clients that left before the response ended"
)
# Set at scrape time from the exact cross-worker count (runtime.state), so any
# worker's latest reading is the whole server's.
IN_FLIGHT = Gauge(
    f"{PREFIX}_in_flight_requests",
    "Requests in flight across all workers",
    multiprocess_mode="livemostrecent",
)
WRITER_QUEUE = Gauge(
    f"{PREFIX}_log_writer_queue_depth",
    "Request records waiting to be written",
    multiprocess_mode="livesum",
)
JOURNAL_BYTES = Gauge(
    f"{PREFIX}_log_journal_bytes",
    "Bytes of handed-off request records in the local journal not yet stored",
    multiprocess_mode="livemax",
)
# Set by the recorder process.
RECORDER_DATABASE_UP = Gauge(
    f"{PREFIX}_recorder_database_up",
    "1 while the recorder can store records in MongoDB, 0 while they wait in the journal",
    multiprocess_mode="livemax",
)
RECORDS_STORED = Counter(
    f"{PREFIX}_log_records_stored_total", "Request records the recorder stored in MongoDB"
)
RECORDS_QUARANTINED = Counter(
    f"{PREFIX}_log_records_quarantined_total",
    "Request records MongoDB refused, kept in DATA_DIR/quarantine",
)
# Counted by the workers' hand-off (recording.journal): the journal's cap policy.
RECORDS_LOST = Counter(
    f"{PREFIX}_log_records_lost_total",
    "Request records not recorded at all (hand-off queue or journal past its cap)",
)
BODIES_DROPPED = Counter(
    f"{PREFIX}_log_bodies_dropped_total",
    "Request records journaled without their bodies (hand-off queue or journal near its cap)",
)
BUILD_INFO = Gauge(
    f"{PREFIX}_build_info",
    "Build information (always 1)",
    ["version", "python"],
    multiprocess_mode="max",
)
BUILD_INFO.labels(VERSION, platform.python_version()).set(1)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def prepare_multiprocess_dir() -> str:
    """Called in the main process before workers start: they inherit the variable
    and write their samples there. Stale files of a previous run are removed."""
    directory = multiprocess_dir()
    if directory is None:
        directory = tempfile.mkdtemp(prefix="claude-proxy-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))
    return directory
