"""Settings: read once from the environment into one typed, frozen object.

Every knob the proxy has is here, with its default and its unit, so the README's
table and the Kubernetes manifests can be checked against one place. An invalid
value stops start-up with a message that names the variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MIB = 1024 * 1024

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A setting has a value the proxy cannot run with."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 3001
    workers: int = 1
    log_level: str = "INFO"

    # Upstream
    anthropic_forward_url: str = "https://api.anthropic.com"
    # Seconds until the upstream's response headers arrive. Bounds only the wait
    # for headers, never how long a body or stream may run.
    response_header_timeout: float = 300.0
    upstream_connect_timeout: float = 10.0
    # Longest silence allowed inside a response body (between two chunks).
    upstream_read_idle_timeout: float = 600.0
    # The whole of a `GET /v1/models` forward (connect, headers, body): Claude Code's
    # model discovery gives up after 3 s.
    models_discovery_timeout: float = 2.5

    # Client side
    request_max_bytes: int = 32 * MIB
    # Bounds how long a client may take to send its request head and body.
    request_read_timeout: float = 60.0
    keep_alive_timeout: float = 75.0

    # Shutdown: how long in-flight requests may keep running after SIGTERM.
    drain_timeout: float = 1920.0
    # After the drain, how long idle keep-alive connections get to close.
    graceful_shutdown_timeout: float = 15.0
    # After the server stopped, how long the log writer may take to flush its queue
    # (to MongoDB, or else to the local journal) before the process exits.
    writer_flush_timeout: float = 30.0
    # Least seconds between the starts of two request-log batches: records arriving
    # meanwhile share one insert and one rollup update, far cheaper per record for
    # the database and the worker. 0 writes each record as soon as the writer is free.
    writer_linger: float = 0.05

    # Recording (the hand-off journal and the recorder process; see recording/).
    # Cap on the on-disk journal (all workers of the pod together). Near it,
    # records keep their metadata and lose their bodies; at it, records are
    # dropped and counted. Forwarding never waits on it.
    journal_max_bytes: int = 512 * MIB
    # Size at which a worker starts a new journal segment.
    journal_segment_bytes: int = 8 * MIB
    # Per worker: bytes of finished exchanges waiting for the journal thread.
    # Beyond it, records are journaled without bodies.
    journal_queue_bytes: int = 64 * MIB
    # Per response: bytes of its body captured for the log; the rest is relayed
    # but not recorded (the record says it was clipped).
    log_body_max_bytes: int = 16 * MIB
    # Per worker: bytes of all in-flight response captures together; beyond it,
    # further chunks are relayed but not captured.
    log_capture_budget_bytes: int = 256 * MIB
    # Cap on records MongoDB refused, kept on disk for inspection.
    quarantine_max_bytes: int = 64 * MIB
    # Every MongoDB operation's deadline (the driver's timeoutMS): a stalled
    # database counts as down and records wait in the journal.
    mongodb_timeout: float = 10.0

    # Control (routing, demotion, dashboard)
    # Routing YAML; unset: ./config.yaml when it exists, else no routing.
    config_file: str | None = None
    # Send stream:false Messages requests upstream as streams, answer with JSON.
    demote_nonstreaming: bool = False
    # HTTP Basic password for /api/* (username ignored); unset: no auth, which a
    # non-loopback HOST refuses unless dashboard_open says so.
    dashboard_password: str | None = field(default=None, repr=False)
    # The operator's explicit acceptance of an unprotected dashboard on a
    # non-loopback HOST (start-up warns loudly); ignored when a password is set.
    dashboard_open: bool = False
    # Origins allowed to call /api/* from a browser; empty: CORS off.
    cors_origins: tuple[str, ...] = ()
    # The interactive API docs at /docs; false keeps /openapi.json|yaml but drops the UI.
    openapi_docs: bool = True

    # Storage (request log)
    # false: no request log and no database at all (header rules then live in memory).
    request_log: bool = True
    mongodb_uri: str | None = None
    mongodb_database: str = "claude_proxy"
    data_dir: str = "./data"
    log_retention_days: int | None = None
    # IANA zones whose local days and hours get rollups of their own (stats.zone_days): a
    # 30-day Overview in such a zone reads 30 documents per model, not a UTC day
    # and a fringe of hours and quarters for each local day.
    stats_zones: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = _ENV_NAMES.get(f.name, f.name.upper())
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            parse = _PARSERS[f.name]
            try:
                values[f.name] = parse(raw.strip())
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"{var}={raw!r} is invalid: {exc}") from None
        return cls(**values)

    @property
    def response_timeout_ceiling(self) -> float:
        """What Sanic's own RESPONSE_TIMEOUT must exceed.

        Sanic resets that timer on every write, so it behaves as an idle timer; it
        must never fire before our own header or idle timeouts, which answer with
        a proper error instead of a cut connection.
        """
        return max(self.response_header_timeout, self.upstream_read_idle_timeout) + 30.0


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _linger_seconds(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0 or value > 10:
        raise ValueError("must be between 0 and 10 seconds")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a TCP port (0-65535)")
    return value


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL such as https://api.anthropic.com")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    return raw.rstrip("/")


def _log_level(raw: str) -> str:
    value = raw.upper()
    if value not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return value


def _mongodb_uri(raw: str) -> str:
    if not raw.startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError("must start with mongodb:// or mongodb+srv://")
    return raw


def _text(raw: str) -> str:
    return raw


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


# Each zone adds one rollup document per local day and one per local hour, cuboid,
# model and organization.
MAX_STATS_ZONES = 4


def _zones(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(z.strip() for z in raw.split(",") if z.strip()))
    if len(names) > MAX_STATS_ZONES:
        raise ValueError(f"at most {MAX_STATS_ZONES} zones")
    for name in names:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not an IANA time zone such as Asia/Kolkata") from None
        if name in ("UTC", "Etc/UTC"):
            raise ValueError("UTC days are rolled up already; list other zones only")
    return names


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"{origin!r} is not an origin such as https://grafana.example.com")
    return origins


_ENV_NAMES = {
    "workers": "SANIC_WORKERS",
    "response_header_timeout": "ANTHROPIC_RESPONSE_HEADER_TIMEOUT",
    "demote_nonstreaming": "ANTHROPIC_DEMOTE_NONSTREAMING",
}

_PARSERS: dict[str, Callable[[str], Any]] = {
    "host": _text,
    "port": _port,
    "workers": _positive_int,
    "log_level": _log_level,
    "anthropic_forward_url": _http_url,
    "response_header_timeout": _positive_float,
    "upstream_connect_timeout": _positive_float,
    "upstream_read_idle_timeout": _positive_float,
    "models_discovery_timeout": _positive_float,
    "request_max_bytes": _positive_int,
    "request_read_timeout": _positive_float,
    "keep_alive_timeout": _positive_float,
    "drain_timeout": _positive_float,
    "graceful_shutdown_timeout": _positive_float,
    "writer_flush_timeout": _positive_float,
    "writer_linger": _linger_seconds,
    "journal_max_bytes": _positive_int,
    "journal_segment_bytes": _positive_int,
    "journal_queue_bytes": _positive_int,
    "log_body_max_bytes": _positive_int,
    "log_capture_budget_bytes": _positive_int,
    "quarantine_max_bytes": _positive_int,
    "mongodb_timeout": _positive_float,
    "config_file": _text,
    "demote_nonstreaming": _bool,
    "dashboard_password": _text,
    "dashboard_open": _bool,
    "cors_origins": _origins,
    "openapi_docs": _bool,
    "request_log": _bool,
    "mongodb_uri": _mongodb_uri,
    "mongodb_database": _text,
    "data_dir": _text,
    "log_retention_days": _positive_int,
    "stats_zones": _zones,
}


def env_var_names() -> dict[str, str]:
    """Field name → environment variable, for docs and manifest checks."""
    return {f.name: _ENV_NAMES.get(f.name, f.name.upper()) for f in fields(Settings)}
