"""Schema-driven testing: Schemathesis generates requests (valid and invalid) for every
dashboard and health operation of the live proxy's own /openapi.json, and checks each
answer: no server error, a documented status and content type, a body that matches
the documented schema, invalid input rejected and valid input accepted, and every
4xx in the documented error shape (the seed's `{error, details}` on /api/*).

`SCHEMATHESIS_EXAMPLES` raises the examples per operation (`make fuzz`); the default
keeps this under a few seconds per operation in `make test`.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import available_timezones

import requests
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth

from conversations.queries import MAX_QUERY_WORDS, query_words
from stats.timebuckets import MAX_BUCKETS
from tests.openapi.conftest import AUTH, LiveApp

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))


# Status classes answered during the run, so a run that sent nothing cannot pass.
SEEN: Counter[str] = Counter()


def error_shape(ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx is the dashboard API's, in the seed's `{"error": message,
    "details"?}`, with a message (the schema alone admits an empty one)."""
    SEEN[f"{response.status_code // 100}xx"] += 1
    if 400 <= response.status_code < 500:
        body = response.json()
        assert case.path.startswith("/api/"), (case.path, body)  # only /api/* answers 4xx
        assert isinstance(body.get("error"), str) and body["error"], body
        assert isinstance(body.get("details", ""), str), body


def _instant(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        if raw.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(raw) / 1000, UTC)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None  # unparseable: the request goes out and the checks judge the answer
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _satisfies_cross_parameter_rules(case: Any) -> bool:
    """Rules OpenAPI cannot state: a range ends after it starts, stays within years
    2 to 9998 and spans at most MAX_BUCKETS buckets; `tz` names a real zone; `q`
    holds 1 to MAX_QUERY_WORDS words. Examples breaking them are discarded, not
    sent: a 400 is right for them, and a valid-looking one would fail the checks."""
    query = case.query or {}
    start = _instant(query.get("start_date", query.get("start")))
    end = _instant(query.get("end_date", query.get("end")))
    if any(t and not 1 < t.year < 9999 for t in (start, end)):
        return False  # buckets past the calendar's edge: a 400 names the range
    if start and not end:
        end = datetime.now(UTC)  # the default end
    if start and end:
        if end <= start:
            return False
        bucket = query.get("bucket")
        minutes = 1440 if case.path.endswith("/dashboard") else 60
        if isinstance(bucket, int) and not isinstance(bucket, bool) and bucket > 0:
            minutes = bucket
        if (end - start).total_seconds() / 60 / minutes > MAX_BUCKETS:
            return False
    tz = query.get("tz")
    if isinstance(tz, str) and tz and tz not in available_timezones():
        return False
    q = query.get("q")
    if isinstance(q, str):
        return 0 < len(query_words(q)) <= MAX_QUERY_WORDS
    return True


def _check_operation(operation: Any, mode: GenerationMode, url: str) -> None:
    # Schemathesis's pytest integration (`from_fixture`) does not run on pytest 9, so
    # each operation's strategy is driven by Hypothesis directly.
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        assume(_satisfies_cross_parameter_rules(case))
        # In the case itself, so the auth checks can take it away and expect a 401.
        case.headers = {**(case.headers or {}), "Authorization": AUTH["authorization"]}
        case.call_and_validate(
            base_url=url,
            additional_checks=[error_shape],
            # Negated cases may carry a generated Authorization the check then
            # takes for the client's; positive cases probe auth with the real one.
            excluded_checks=[ignored_auth] if mode is GenerationMode.NEGATIVE else [],
            timeout=10,
        )

    try:
        run()
    except Unsatisfiable:
        # An operation without parameters has no invalid input to send.
        if mode is not GenerationMode.NEGATIVE:
            raise


def _full(exc: BaseException) -> str:
    # Hypothesis groups distinct failures; Schemathesis's own groups say it all.
    if isinstance(exc, BaseExceptionGroup) and not str(exc).startswith("Schemathesis"):
        return "\n".join(_full(e) for e in exc.exceptions)
    return str(exc)


def _describe(exc: BaseException) -> str:
    # Schemathesis's failure groups carry the failures and a curl line to reproduce.
    return f"{type(exc).__name__}: {_full(exc)[:6000]}"


def test_dashboard_and_health_conform(live: LiveApp) -> None:
    # from_dict, not from_url: from_url leaves out the operation it loaded the schema from.
    raw = requests.get(f"{live.url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(raw)
    # The model API is forwarded to the upstream; its contract is Anthropic's.
    operations = [r.ok() for r in schema.exclude(path_regex="^/v1/").get_all_operations()]
    documented = {
        f"{method.upper()} {path}"
        for path, methods in schema.raw_schema["paths"].items()
        for method in methods
        if not path.startswith("/v1/")
    }
    # Every dashboard and health operation, not a subset.
    assert {o.label for o in operations} == documented
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _check_operation(operation, mode, live.url)
            except (Exception, BaseExceptionGroup) as exc:  # collect all, report once
                failures.append(f"{operation.label} [{mode.value}]: {_describe(exc)}")
    assert not failures, "\n\n".join(failures)
    assert SEEN["2xx"] >= 5 * len(operations) and SEEN["4xx"] >= len(operations), SEEN
    assert set(SEEN) <= {"2xx", "4xx"}, SEEN
