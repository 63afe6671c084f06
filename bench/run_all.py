"""`make bench`: run every benchmark in turn; each appends to bench/RESULTS.md.

Set LAOWU_BENCH_DATABASE_URL (postgresql+asyncpg://…) to also measure on PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "bench_foundation.py",
    "bench_workers_import.py",
    "bench_ledger.py",
    "bench_payouts.py",
    "bench_reconciliation.py",
]


def main() -> int:
    urls: list[str | None] = [None]
    if os.environ.get("LAOWU_BENCH_DATABASE_URL"):
        urls.append(os.environ["LAOWU_BENCH_DATABASE_URL"])
    for script in BENCHMARKS:
        for url in urls:
            command = [sys.executable, str(HERE / script)]
            if url:
                command += ["--database-url", url]
            print("$", " ".join(command), flush=True)
            if subprocess.run(command, check=False).returncode != 0:
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
