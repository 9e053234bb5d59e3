"""What a simulated rollout must prove, checked and told: the outcome of
`bench.rollout.simulate`, its broken promises (`problems`), other contract breaks
(`findings`) and the printed report with the timeline."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient

from bench.kube import Termination
from bench.timeline import Timeline
from bench.traffic import Result, markers_in
from storage.mongo import REQUESTS

# The watcher polls /livez every 0.1 s; the drain's own log line comes just before the
# listener closes. Beyond this, the pod went dark while a worker was still serving.
DARK_TOLERANCE = 0.5


@dataclass
class Outcome:
    grace_period: float  # the pods' terminationGracePeriodSeconds, scaled
    timeline: Timeline
    results: list[Result]
    terminations: list[Termination]
    log: RequestLog
    unflushed: dict[str, list[str]]  # pod → markers it received, not in MongoDB at its exit
    stranded_at_end: dict[str, int]  # pod still running at the end → journal records left
    connections: dict[str, int]  # pod → connections the load balancer gave it
    refused: int  # client connections the load balancer could not place
    seconds: float

    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    def problems(self) -> list[str]:
        """Every broken promise, each naming the evidence; empty when the roll was clean."""
        out = [
            f"{r.kind} {r.marker} via {r.backend} at t={r.started:.2f}s: {r.problem}"
            for r in self.failed()
        ]
        for r in self.results:
            ids = self.log.ids.get(r.marker, [])
            if not ids:
                out.append(f"{r.kind} {r.marker} via {r.backend}: not in the request log")
            elif len(ids) > 1:
                out.append(f"{r.marker}: logged {len(ids)} times ({ids})")
            elif r.request_id is not None and ids[0] != r.request_id:
                out.append(f"{r.marker}: logged as {ids[0]}, answered as {r.request_id}")
        issued = {r.marker for r in self.results}
        out += [f"{m}: logged but never sent" for m in self.log.ids if m not in issued]
        out += [f"{m}: recorded as incomplete ({why})" for m, why in self.log.incomplete.items()]
        if self.log.unmarked:
            out.append(f"{self.log.unmarked} documents without a marker")
        for t in self.terminations:
            if t.exit_code != 0 or t.killed:
                out.append(f"pod {t.pod}: exit code {t.exit_code}, killed={t.killed}")
            if t.stranded:
                lost = markers_in(t.stranded)
                out.append(f"pod {t.pod}: {len(t.stranded)} records left in its journal: {lost}")
            if t.errors:
                out.append(f"pod {t.pod} logged errors: {t.errors[:5]}")
            if self.unflushed.get(t.pod):
                out.append(f"pod {t.pod}: not in MongoDB at exit: {self.unflushed[t.pod]}")
        out += [
            f"pod {p}: {n} records left in its journal"
            for p, n in self.stranded_at_end.items()
            if n
        ]
        if self.refused:
            out.append(f"the load balancer could not place {self.refused} connections")
        return out

    def findings(self) -> list[str]:
        """Contract breaks that cut and lose nothing, so not `problems`, yet are wrong:
        /livez is documented to answer 200 until the process exits."""
        out = []
        for t in self.terminations:
            closed, drained = t.listener_closed_at, t.drained_at
            if closed is not None and drained is not None and closed < drained - DARK_TOLERANCE:
                out.append(
                    f"pod {t.pod}: /livez stopped answering {drained - closed:.1f}s before its "
                    f"last worker finished draining (t={closed:.2f}s vs t={drained:.2f}s)"
                )
        return out

    def render(self) -> str:
        kinds = Counter(r.kind for r in self.results)
        per_pod = Counter(r.backend for r in self.results)
        lines = [
            f"rolling update: {len(self.results)} requests "
            f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}) in {self.seconds:.1f}s, "
            f"{len(self.failed())} failed; {sum(map(len, self.log.ids.values()))} documents "
            f"in the request log",
            "requests per pod: "
            + ", ".join(f"{p}: {n}" for p, n in sorted(per_pod.items(), key=str))
            + "; connections per pod: "
            + ", ".join(f"{p}: {n}" for p, n in sorted(self.connections.items())),
            "timeline:",
            self.timeline.render(),
        ]
        for t in self.terminations:
            served_after = [
                r for r in self.results if r.backend == t.pod and r.ended > (t.sigterm_at or 0)
            ]
            lines += [
                f"pod {t.pod}: preStop {t.prestop_seconds:.2f}s, in_flight at SIGTERM "
                f"{t.in_flight_at_sigterm}, drained {_after(t.drained_at, t.sigterm_at)} and "
                f"exited {_after(t.exited_at, t.sigterm_at)} after SIGTERM (code {t.exit_code}, "
                f"SIGKILL {'yes' if t.killed else 'no'}, grace period "
                f"{self.grace_period:g}s); {len(served_after)} requests finished "
                f"on it after SIGTERM ({sum(r.kind == 'long' for r in served_after)} long)",
                f"  writer at last /livez: {t.writer}; journal left at exit: "
                f"{len(t.stranded)} records; not in MongoDB at exit: "
                f"{len(self.unflushed.get(t.pod, []))}",
                *(f"  log: {line}" for line in t.errors),
            ]
        lines += [f"FINDING: {finding}" for finding in self.findings()]
        return "\n".join(lines)


def _after(at: float | None, since: float | None) -> str:
    return "never" if at is None or since is None else f"{at - since:.2f}s"


@dataclass
class RequestLog:
    """The request log as MongoDB holds it, read by marker."""

    ids: dict[str, list[str]] = field(default_factory=dict)  # marker → document ids
    incomplete: dict[str, str] = field(default_factory=dict)  # marker → what was recorded
    unmarked: int = 0  # documents without a marker (there should be none)


async def read_request_log(mongo_uri: str, database: str) -> RequestLog:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        cursor = client[database][REQUESTS].find(
            {},
            {
                "request.headers": 1,
                "outcome": 1,
                "response.isStreaming": 1,
                "response.streamComplete": 1,
            },
        )
        documents = await cursor.to_list(None)
    finally:
        await client.close()
    log = RequestLog(ids=defaultdict(list))
    for doc in documents:
        markers = markers_in([doc])
        log.unmarked += not markers
        # The proxy's own account must agree with the client's: a completed exchange,
        # and for a stream, one the observer saw end with message_stop.
        response = doc.get("response", {})
        complete = doc.get("outcome") == "completed" and (
            not response.get("isStreaming") or response.get("streamComplete") is True
        )
        for marker in markers:
            log.ids[marker].append(doc["_id"])
            if not complete:
                log.incomplete[marker] = (
                    f"outcome={doc.get('outcome')} streamComplete={response.get('streamComplete')}"
                )
    log.ids = dict(log.ids)
    return log
