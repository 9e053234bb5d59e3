"""A worker stand-in for the crash tests: journals big records until it is killed.

    python -m tests.recording.journal_child DIRECTORY OWNER RUN

Each record's meta carries its run, its sequence number and the SHA-256 of its
bodies, so the reader can tell every record apart and check it byte for byte.
Prints "ready" once the writer holds its lock.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time

from recording.journal import JournalWriter

MIB = 1024 * 1024


def main() -> None:
    directory, owner, run = sys.argv[1], sys.argv[2], sys.argv[3]
    rng = random.Random(run)
    pool = rng.randbytes(8 * MIB)
    journal = JournalWriter(
        directory, owner=owner, segment_bytes=8 * MIB, max_bytes=1 << 40, queue_bytes=1 << 30
    )
    journal.start()
    print("ready", flush=True)
    seq = 0
    while True:
        if journal.stats()["queue_records"] > 4:
            time.sleep(0.0005)
            continue
        start = rng.randrange(0, 4 * MIB)
        request = pool[start : start + rng.choice([0, 10, 5000, 300_000, MIB, 3 * MIB])]
        response = pool[start : start + rng.choice([0, 100, 200_000, 2 * MIB])]
        step = max(1, len(response) // rng.randint(1, 300))
        chunks = [response[i : i + step] for i in range(0, len(response), step)]
        digest = hashlib.sha256(request + b"|" + response).hexdigest()
        journal.submit({"run": run, "seq": seq, "sha": digest}, request, chunks)
        seq += 1


if __name__ == "__main__":
    main()
