"""`make bench`: run every benchmark in turn; each appends to bench/RESULTS.md.

Set LAOWU_BENCH_DATABASE_URL (postgresql+asyncpg://…) to also measure on PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Every bench_*.py script here, in name order (each writes its own section of RESULTS.md).
BENCHMARKS = sorted(path.name for path in HERE.glob("bench_*.py"))
# Measure the machine, not a database: run once, without --database-url.
# bench_instructions.py counts a process's own instructions: the embedded default only.
NO_DATABASE = {"bench_baseline.py", "bench_instructions.py"}


def main() -> int:
    urls: list[str | None] = [None]
    if os.environ.get("LAOWU_BENCH_DATABASE_URL"):
        urls.append(os.environ["LAOWU_BENCH_DATABASE_URL"])
    for script in BENCHMARKS:
        for url in urls if script not in NO_DATABASE else [None]:
            command = [sys.executable, str(HERE / script)]
            if url:
                command += ["--database-url", url]
            print("$", " ".join(command), flush=True)
            if subprocess.run(command, check=False).returncode != 0:
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
