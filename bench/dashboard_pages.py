"""The pages the dashboard benchmark fetches, how it times them, and its table.

Each page is fetched over HTTP with Basic auth, one call at a time: two warm-up
calls, then `runs` timed ones. "First byte" is the time until the response's
status line and headers arrived (aiohttp returns them as soon as they are
read; a page is rendered whole before it is sent, so for most pages the two
figures are close), "total" until its last byte.
"""

from __future__ import annotations

import html
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from bench.servers import cpu_seconds

if TYPE_CHECKING:
    from bench.dashboard_bench import Loaded

PASSWORD = "bench-dashboard-password"
WARMUP = 2
FIRST_BYTE_MS = 100.0  # every page
LIST_MS = 50.0  # the request list and a request detail, whole
THREAD_MS = 500.0  # a conversation of 2,000 requests, whole
_OLDER = re.compile(r'href="([^"]*[?&](?:amp;)?before=[^"]*)"')
_MORE = re.compile(r'"(/dashboard/conversations/[^"/]+/turns[^"]*)"')


@dataclass(slots=True)
class Timing:
    path: str
    total_target: float | None  # ms for the whole response; None: first byte only
    first_byte: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    size: int = 0
    status: int = 0
    # Server CPU per call (the proxy's worker and the database together), ms:
    # what a page costs, less blurred than wall time when the machine is busy.
    cpu: float | None = None

    def median(self, which: str) -> float:
        return statistics.median(getattr(self, which))

    def p95(self, which: str) -> float:
        values = sorted(getattr(self, which))
        return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]

    def met(self) -> bool:
        """Judged on the medians: first byte, and the whole page where it has a target."""
        if self.median("first_byte") > FIRST_BYTE_MS:
            return False
        return self.total_target is None or self.median("total") <= self.total_target

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "total_target": self.total_target,
            "first_byte": self.first_byte,
            "total": self.total,
            "size": self.size,
            "status": self.status,
            "cpu": self.cpu,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Timing:
        return cls(
            raw["path"],
            raw["total_target"],
            list(raw["first_byte"]),
            list(raw["total"]),
            raw["size"],
            raw["status"],
            raw.get("cpu"),
        )


def pages(loaded: Loaded) -> list[tuple[str, str, float | None]]:
    """(name, path, whole-response target in ms) of every page measured up front;
    pages found through another page's links are added by `measure`."""
    common, middling, rare = loaded.words
    end_ms = int(loaded.end.timestamp() * 1000)
    mid_ms = int((loaded.start + (loaded.end - loaded.start) / 2).timestamp() * 1000)
    long_id = quote(loaded.long_id, safe="")
    return [
        ("overview (default: 24h)", "/dashboard", None),
        ("overview 30 days", "/dashboard?range=30d&tz=UTC", None),
        ("overview 30 days, Asia/Kolkata", "/dashboard?range=30d&tz=Asia/Kolkata", None),
        # A zone not in STATS_ZONES whose days are Kolkata's: it reads Kolkata's
        # local days.
        (
            "overview 30 days, Asia/Colombo (Kolkata's days)",
            "/dashboard?range=30d&tz=Asia/Colombo",
            None,
        ),
        # A 45-minute zone the proxy was not told of: its local days are read
        # from the UTC tiers.
        (
            "overview 30 days, Asia/Kathmandu (not in STATS_ZONES)",
            "/dashboard?range=30d&tz=Asia/Kathmandu",
            None,
        ),
        (
            "overview 7 days hourly, New York",
            "/dashboard?range=7d&bucket=hour&tz=America/New_York",
            None,
        ),
        # Hours in a half-hour zone: each hour a UTC hour and two quarters.
        (
            "overview 7 days hourly, Asia/Kolkata",
            "/dashboard?range=7d&bucket=hour&tz=Asia/Kolkata",
            None,
        ),
        # The widest preset (the log holds 30 days).
        ("overview 90 days", "/dashboard?range=90d&tz=UTC", None),
        ("requests: first page", "/dashboard/requests", LIST_MS),
        ("requests: model filter", "/dashboard/requests?model=claude-opus-4-1-20250805", LIST_MS),
        ("requests: status=error", "/dashboard/requests?status=error", LIST_MS),
        (
            "requests: org + 5xx + 7 days",
            "/dashboard/requests?org=org-beta&status=5xx&range=7d",
            LIST_MS,
        ),
        ("requests: 15 days back (cursor)", f"/dashboard/requests?before={mid_ms}", LIST_MS),
        # The list's targets are for the list as served (50 rows); its largest
        # page is held to the target of every page.
        ("requests: 200 rows", "/dashboard/requests?limit=200", None),
        ("requests: search, common word", f"/dashboard/requests?q={common}", LIST_MS),
        ("requests: search, middling word", f"/dashboard/requests?q={middling}", LIST_MS),
        ("requests: search, rare word", f"/dashboard/requests?q={rare}", LIST_MS),
        ("requests: search, two words", f"/dashboard/requests?q={common}+{middling}", LIST_MS),
        ("requests: search, id prefix", f"/dashboard/requests?q={loaded.sample_id[:8]}", LIST_MS),
        ("request detail", f"/dashboard/requests/{loaded.sample_id}", LIST_MS),
        ("request detail, 1 MB body", f"/dashboard/requests/{loaded.large_ids[0]}", LIST_MS),
        (
            "request detail, 5 MB body (GridFS)",
            f"/dashboard/requests/{loaded.large_ids[1]}",
            LIST_MS,
        ),
        ("conversations", "/dashboard/conversations", None),
        (
            "conversations: project",
            f"/dashboard/conversations?project={quote(loaded.project, safe='')}",
            None,
        ),
        ("conversations: search", f"/dashboard/conversations?q={middling}", None),
        ("thread of 2,000 requests", f"/dashboard/conversations/{long_id}", THREAD_MS),
        ("settings", "/dashboard/settings", None),
        ("api: /api/requests", "/api/requests?limit=50", None),
        ("api: /api/requests/summary?limit=0", "/api/requests/summary?limit=0", None),
        ("api: /api/conversations", "/api/conversations", None),
        ("api: thread of 2,000 (JSON)", f"/api/conversations/{long_id}", None),
        ("api: /api/requests/latest-date", "/api/requests/latest-date", None),
        ("(data ends at ms)", f"#{end_ms}", None),
    ]


async def _fetch(http: aiohttp.ClientSession, url: str) -> tuple[float, float, int, bytes]:
    started = time.perf_counter()
    async with http.get(url, allow_redirects=False) as resp:
        head = time.perf_counter()
        body = await resp.read()
        done = time.perf_counter()
    return (head - started) * 1000, (done - started) * 1000, resp.status, body


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


async def _time(
    http: aiohttp.ClientSession,
    base: str,
    path: str,
    target: float | None,
    runs: int,
    pids: list[int],
) -> tuple[Timing, bytes]:
    timing = Timing(path, target)
    body = b""
    for _ in range(WARMUP):
        await _fetch(http, base + path)
    spent = _cpu(pids)
    for _ in range(runs):
        first, total, status, body = await _fetch(http, base + path)
        timing.status, timing.size = status, len(body)
        timing.first_byte.append(first)
        timing.total.append(total)
    if pids:
        timing.cpu = (_cpu(pids) - spent) * 1000 / runs
    return timing, body


def more_link(page: bytes) -> str | None:
    """The thread page's "load more" fragment, as its script fetches it."""
    found = _MORE.search(page.decode("utf-8", "replace"))
    return html.unescape(found.group(1)) if found else None


def older_link(page: bytes) -> str | None:
    """The list page's link to the next (older) page, as the browser follows it."""
    found = _OLDER.search(page.decode("utf-8", "replace"))
    return html.unescape(found.group(1)) if found else None


async def measure(
    base: str, loaded: Loaded, runs: int, pids: list[int] | None = None, only: str = ""
) -> dict[str, Timing]:
    """Every page of `pages` (those whose name holds `only`), plus the list's
    next page and its incremental thread load when the pages link to them. A
    page answering 404 (not built yet) is left out."""
    results: dict[str, Timing] = {}
    auth = aiohttp.BasicAuth("bench", PASSWORD)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(auth=auth, timeout=timeout) as http:
        for name, path, target in pages(loaded):
            if path.startswith("#") or only not in name:
                continue
            timing, body = await _time(http, base, path, target, runs, pids or [])
            if timing.status == 404 and not path.startswith("/dashboard/requests/"):
                print(f"  {name}: 404, not measured", flush=True)
                continue
            if timing.status != 200:
                print(f"  {name}: HTTP {timing.status} {body[:200]!r}", flush=True)
            results[name] = timing
            print(
                f"  {name}: first byte {timing.median('first_byte'):.1f} ms, "
                f"total {timing.median('total'):.1f} ms, {timing.size:,} bytes",
                flush=True,
            )
            if name == "requests: first page" and (link := older_link(body)):
                later, _ = await _time(http, base, link, LIST_MS, runs, pids or [])
                results["requests: next page (cursor)"] = later
            if name == "thread of 2,000 requests" and (link := more_link(body)):
                more, _ = await _time(http, base, link, THREAD_MS, runs, pids or [])
                results["thread: load more (fragment)"] = more
    return results


def _cell(t: Timing | None) -> str:
    if t is None:
        return "-"
    return f"{t.median('first_byte'):.0f} / {t.median('total'):.0f} (p95 {t.p95('total'):.0f})"


def is_reference(name: str) -> bool:
    """JSON routes are measured for reference: the targets are the dashboard's
    pages' (an export of 10,000 summaries or a whole 2,000-request thread is not
    a page the dashboard serves)."""
    return name.startswith("api: ")


def _verdict(name: str, t: Timing) -> str:
    if is_reference(name):
        return "(reference)"
    return "✔" if t.met() else "✘"


def _target(name: str, t: Timing) -> str:
    if is_reference(name):
        return "—"
    whole = f"; whole ≤ {t.total_target:.0f}" if t.total_target is not None else ""
    return f"first byte ≤ {FIRST_BYTE_MS:.0f}{whole}"


def report(measured: list[tuple[int, dict[str, Timing]]]) -> str:
    """A markdown table: per page and size, median first byte / median total
    (p95 total), in ms; the target, whether the largest size met it (medians),
    and the largest/smallest ratio of the total."""
    names: list[str] = []
    for _, timings in measured:
        names += [n for n in timings if n not in names]
    sizes = " | ".join(f"{count:,} req" for count, _ in measured)
    lines = [
        f"| page (ms: first byte / total (p95 total)) | {sizes} | target | met | "
        f"{measured[-1][0] // 1000}k / {measured[0][0] // 1000}k |",
        "| --- |" + " ---: |" * len(measured) + " --- | --- | ---: |",
    ]
    for name in names:
        cells = [timings.get(name) for _, timings in measured]
        last = next((t for t in reversed(cells) if t is not None), None)
        first = next((t for t in cells if t is not None), None)
        if last is None or first is None:
            continue
        ratio = last.median("total") / max(first.median("total"), 1e-9)
        lines.append(
            f"| {name} | "
            + " | ".join(_cell(t) for t in cells)
            + f" | {_target(name, last)} | {_verdict(name, last)} | {ratio:.2f}x |"
        )
    sizes_cpu = " | ".join(f"{count:,} req" for count, _ in measured)
    lines += [
        "",
        f"| server CPU per call (worker + database, ms) | {sizes_cpu} |",
        "| --- |" + " ---: |" * len(measured),
    ]
    for name in names:
        cells = [timings.get(name) for _, timings in measured]
        shown = [f"{t.cpu:.0f}" if t is not None and t.cpu is not None else "-" for t in cells]
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    return "\n".join(lines)
