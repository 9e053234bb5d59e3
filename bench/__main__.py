"""`python -m bench` (or `make bench`): every benchmark in turn.

`python -m bench --quick` runs each with its `--quick` counts: a smoke check of
the whole set (a couple of minutes), not figures to quote.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    "bench.proxy_bench",
    "bench.log_bench",
    "bench.stats_bench",
    "bench.dashboard_bench",
    "bench.rolling_update",
]

if __name__ == "__main__":
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        subprocess.run([sys.executable, "-m", module, *sys.argv[1:]], check=True)
