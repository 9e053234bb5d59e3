"""The recorder's sustained rate into a fresh development database, in-process.

N realistic records (a Claude Code request of ~6.6 KB, a streamed tool-use reply
in its SSE events) are handed to a journal through `JournalWriter` exactly as a
worker does (credentials fingerprinted on its thread); then a `Recorder` built as
`python -m recording` builds it drains them into a fresh SecantusDB (its own
process, sized as under `make run`): SSE folding, documents, rollups and
conversation summaries included. Both halves are timed, and their CPU taken from
/proc: this process for the hand-off and the recorder, the server for the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.database import start_database
from bench.servers import ROOT, cpu_seconds, free_port
from metrics.recorder import MetricsRecorder
from recording.checkpoint import Checkpoint
from recording.documents import build_record_document, metrics_sink
from recording.handoff import encode_exchange
from recording.journal import JournalReader, JournalWriter, Record
from recording.quarantine import Quarantine
from recording.recorder import BATCH_MAX_RECORDS, Recorder
from recording.store import RecordStore
from runtime.settings import Settings
from storage.mongo import REQUESTS, IndexKeeper, connect
from storage.pricing import PriceTable
from streaming.exchange import Exchange, Outcome
from tests.fixtures import events_of

MIB = 1024 * 1024
SESSIONS = 20
_FIXTURE = ROOT / "tests" / "fixtures" / "conversations" / "main_session.json"


def realistic_exchanges(count: int) -> list[Exchange]:
    """Claude Code turns answered by a streamed tool call, over SESSIONS sessions."""
    template = json.loads(_FIXTURE.read_text())["exchanges"][13]
    chunks = [raw for _, raw in events_of("tool_use")]
    out = []
    for n in range(count):
        body = json.loads(json.dumps(template["body"]))
        body["messages"].append({"role": "user", "content": f"next step {n}, please"})
        session = f"5d0c2f1a-7b9e-4c3d-8a61-{n % SESSIONS:012x}"
        headers = [
            (name, session if name.lower() == "x-claude-code-session-id" else value)
            for name, value in template["headers"]
        ] + [("x-api-key", "sk-ant-bench-0000")]
        raw = json.dumps(body).encode()
        exchange = Exchange(
            method="POST",
            path="/v1/messages",
            query="beta=true",
            request_headers=headers,
            request_body=raw,
            request_json=body,
            model=body["model"],
            stream_requested=True,
            request_id=f"{n:032x}",
        )
        exchange.status, exchange.is_sse = 200, True
        exchange.response_headers = [("content-type", "text/event-stream")]
        exchange.response_chunks = chunks
        exchange.response_bytes = sum(map(len, chunks))
        exchange.finish(Outcome.COMPLETED)
        out.append(exchange)
    return out


def hand_off(journal: Path, exchanges: list[Exchange]) -> dict[str, float]:
    """Submit every exchange and close the journal (fsync): seconds and CPU µs/record."""
    writer = JournalWriter(
        journal,
        segment_bytes=8 * MIB,
        max_bytes=1 << 40,
        queue_bytes=1 << 40,
        encode=encode_exchange,
    )
    cpu, started = time.process_time(), time.perf_counter()
    writer.start()
    for exchange in exchanges:
        writer.submit(exchange, exchange.request_body, exchange.response_chunks)
    writer.close(120)
    seconds = time.perf_counter() - started
    stats = writer.stats()
    assert stats["records"] == len(exchanges) and stats["lost"] == 0, stats
    return {
        "seconds": seconds,
        "cpu_us_per_record": (time.process_time() - cpu) / len(exchanges) * 1e6,
        "journal_bytes": stats["bytes_written"],
    }


async def _wait_port(port: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def recorder_rate(
    count: int, *, batch_max: int = BATCH_MAX_RECORDS, within: float = 600
) -> dict[str, Any]:
    """Records/s stored by a recorder configured as in production (MONGODB_TIMEOUT,
    batches of up to `batch_max`); gives up after `within` seconds and says so."""
    work = Path(tempfile.mkdtemp(prefix="bench-recorder-"))
    port = free_port()
    db_proc = start_database(str(work / "db"), port)
    try:
        await _wait_port(port)
        handed = hand_off(work / "journal", realistic_exchanges(count))
        client = connect(f"mongodb://127.0.0.1:{port}", timeout=Settings().mongodb_timeout)
        db = client["bench"]
        prices = PriceTable.load()
        on_folded = metrics_sink(MetricsRecorder())

        def build(record: Record) -> dict[str, Any]:
            return build_record_document(record, prices, on_folded)

        recorder = Recorder(
            JournalReader(work / "journal"),
            Checkpoint.load(work / "recorder" / "checkpoint.json"),
            RecordStore(db, Quarantine(work / "quarantine", 64 * MIB)),
            IndexKeeper(db, None),
            build,
            batch_max=batch_max,
        )
        assert await recorder.indexes.ensure()  # the indexes exist before the clock starts
        db_cpu, cpu = cpu_seconds(db_proc.pid), time.process_time()
        started = time.perf_counter()
        outages: list[str] = []
        deadline = started + within
        while recorder.stored + recorder.quarantined + recorder.duplicates < count:
            if time.perf_counter() > deadline:
                break
            if not await recorder.step():
                if not recorder.database_up and recorder.last_error is not None:
                    # As in production: the batch stays pending and is redone after
                    # the back-off; counted, since it costs the rate.
                    outages.append(f"{time.perf_counter() - started:.1f}s: {recorder.last_error}")
                    recorder.last_error = None
                await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
        recorder_cpu = time.process_time() - cpu
        db_cpu = cpu_seconds(db_proc.pid) - db_cpu
        finished = recorder.stored + recorder.duplicates == count
        if finished:
            stored = await db[REQUESTS].count_documents({})
            assert stored == count and recorder.quarantined == 0, (stored, recorder.status())
        await client.close()
        done = recorder.stored + recorder.duplicates
        return {
            "records": count,
            "batch_max": batch_max,
            "finished": finished,
            "stored": done,
            "handoff": handed,
            "seconds": seconds,
            "docs_per_s": done / seconds,
            "recorder_cpu_us_per_doc": recorder_cpu / max(done, 1) * 1e6,
            "database_cpu_us_per_doc": db_cpu / max(done, 1) * 1e6,
            "batches": recorder.batches,
            "outages": outages,
        }
    finally:
        db_proc.terminate()
        db_proc.wait(60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    figures = recorder_rate(
        int(os.environ.get("RECORDS", "2000")),
        batch_max=int(os.environ.get("BATCH", BATCH_MAX_RECORDS)),
        within=float(os.environ.get("WITHIN", "600")),
    )
    print(json.dumps(asyncio.run(figures), indent=2))
