"""Metric definitions, correct with several Sanic workers.

Each worker process writes its samples to files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode), set by the main process before the
workers start; the scrape, answered by any worker, merges all of them.
Labels are bounded: no keys, sessions or request ids; models and endpoints are
folded to a bounded set (see `labels`).
"""

from __future__ import annotations

import atexit
import os
import platform
import shutil
import tempfile

from prometheus_client import Counter, Gauge, Histogram

from metrics.labels import (
    ENDPOINTS,
    NO_MODEL,
    STATUS_CLASSES,
    STREAM_VALUES,
    TOKEN_TYPES,
    UPSTREAM_ERROR_REASONS,
)

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
# One value per pod: measured on disk at scrape time by the worker that answers
# (handlers.metrics), the most recent measurement wins. Not "max": a recorder
# killed with a large journal would leave its last reading above every later one.
JOURNAL_BYTES = Gauge(
    f"{PREFIX}_log_journal_bytes",
    "Bytes of the hand-off journal's files on disk (the whole pod)",
    multiprocess_mode="livemostrecent",
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


def initialise_known_series() -> None:
    """Create every series of a fixed label vocabulary at 0 in this process.

    A labelled metric has no sample until its first `.labels()` call, so dashboards
    showed "No data" (and `rate()` missed the first increment) until the first
    error. Models are unbounded, so model-labelled series start with `none` only.
    """
    for endpoint in ENDPOINTS:
        for status in STATUS_CLASSES:
            for stream in STREAM_VALUES:
                REQUESTS.labels(endpoint, NO_MODEL, status, stream)
        DURATION.labels(endpoint, NO_MODEL)
        TTFB.labels(endpoint, NO_MODEL)
    for kind in TOKEN_TYPES:
        TOKENS.labels(kind, NO_MODEL)
    for counter in (COST, UNPRICED, COST_INCOMPLETE):
        counter.labels(NO_MODEL)
    for reason in UPSTREAM_ERROR_REASONS:
        UPSTREAM_ERRORS.labels(reason)


# At import: every process that records (workers, the recorder) writes the zeros
# into its own sample file, and the scrape's sum of zeros is still zero.
initialise_known_series()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def prepare_multiprocess_dir() -> str:
    """Called in the main process before workers start: they inherit the variable
    and write their samples there. Stale files of a previous run are removed.

    A directory made here (the variable unset) is removed when this process exits,
    SIGTERM included (Sanic's main process returns normally after the drain); one
    the operator named is theirs and stays."""
    directory = multiprocess_dir()
    if directory is None:
        directory = tempfile.mkdtemp(prefix="claude-proxy-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        atexit.register(remove_own_dir, directory, os.getpid())
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))
    return directory


def remove_own_dir(directory: str, owner_pid: int) -> None:
    # A forked child inherits atexit handlers; only the creator may remove the
    # directory, after its workers and the recorder have stopped.
    if os.getpid() == owner_pid:
        shutil.rmtree(directory, ignore_errors=True)
