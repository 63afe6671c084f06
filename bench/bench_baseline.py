"""Calibration for the HTTP load test: what this machine serves with nothing of ours in
the way, beside the floor of our own stack.

    python bench/bench_baseline.py [--processes 1,2] [--duration 10]

The issue's target (≥ 1,000 requests/s for the mix on 2 cores) was set against "a bare
Litestar JSON endpoint serves about 15,000 requests/s per process here, a keyed SQLite
read about 10,000". This measures those two on the machine at hand
(bench/load/bare_app.py: no middleware, the same uvicorn with uvloop and httptools),
and two requests of ``laowu serve`` that touch no data: ``/healthz`` (our middleware:
request ids and the access log, security headers, authentication, CSRF, metrics) and
the login page (a template besides). wrk runs on the same cores with 16 connections, as
in bench_load.py. Reported per endpoint and process count: requests/s, p50/p99, the
server's CPU per request and wrk's CPU. Appends the figures to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_load import (
    Server,
    _cpu_seconds,
    _get,
    free_port,
    start_server,
    stop_server,
)
from bench.common import record
from marketplace.crypto import new_data_key

ROOT = Path(__file__).resolve().parent.parent
ROWS = 100_000
CONNECTIONS = 16
RANDOM_ROW_LUA = f"""
request = function()
  return wrk.format("GET", "/row/" .. math.random(1, {ROWS}))
end
"""
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def make_rows(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, code TEXT)")
        db.executemany(
            "INSERT INTO item VALUES (?, ?, ?)",
            ((i, f"劳动者{i}", f"{500000000000 + i}") for i in range(1, ROWS + 1)),
        )


def start_bare(db: Path, processes: int, log: Path) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.load.bare_app:app",
            "--port",
            str(port),
            "--workers",
            str(processes),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, "LAOWU_BARE_DB": str(db)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(process, port, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _get(port, "/json") == 200 and (
                processes == 1 or len(server.workers()) >= processes
            ):
                return server
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the bare app did not start: {log.read_text()[-2000:]}")


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if found is None:
        raise ValueError(f"wrk latency {text!r}")
    return float(found.group(1)) * UNITS[found.group(2)]


def load(server: Server, path: str, duration: int, script: Path | None) -> str:
    """wrk against one path; the figures as one line."""
    pids = server.workers()
    cpu_before = sum(_cpu_seconds(p) for p in pids)
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = ["wrk", f"-t{min(CONNECTIONS, 4)}", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{server.port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(_cpu_seconds(p) for p in pids) - cpu_before
    wrk_cpu = (wrk_after.ru_utime + wrk_after.ru_stime) - (
        wrk_before.ru_utime + wrk_before.ru_stime
    )
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = f", {bad.group(1)} non-2xx" if bad else ""
    return (
        f"{rate:,.0f} requests/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
        f"server {cpu * 1000 / max(total, 1):.3f} ms CPU a request, wrk {wrk_cpu:.1f} s CPU "
        f"of {duration * (os.cpu_count() or 1)} core-seconds{errors}"
    )


def run_all(
    server: Server, processes: int, duration: int, targets: tuple[tuple[str, str, Path | None], ...]
) -> list[str]:
    """Each (label, path, wrk script) in turn against ``server``, then stop it."""
    lines = []
    try:
        for label, path, script in targets:
            line = f"{processes} process(es), {label}: " + load(server, path, duration, script)
            print(line, flush=True)
            lines.append(line)
    finally:
        stop_server(server)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    lines = [
        f"wrk: {min(CONNECTIONS, 4)} threads, {CONNECTIONS} connections, "
        f"{args.duration} s a run, on the same cores as the server",
        f"load average (1 min) before: {os.getloadavg()[0]:.2f}",
    ]
    with tempfile.TemporaryDirectory(prefix="laowu-baseline-") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "bare.sqlite"
        make_rows(db)
        script = tmp / "row.lua"
        script.write_text(RANDOM_ROW_LUA)
        env = {
            **os.environ,
            "LAOWU_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'laowu.sqlite'}",
            "LAOWU_DATA_KEY": new_data_key(),
            "LAOWU_SECRET_KEY": "bench" * 8,
            "LAOWU_VAR_DIR": str(tmp / "var"),
            "LAOWU_MEDIA_DIR": str(tmp / "var" / "media"),
            "LAOWU_RATE_LIMITS": "0",
        }
        for processes in [int(p) for p in args.processes.split(",")]:
            bare = start_bare(db, processes, tmp / f"bare-{processes}.log")
            lines += run_all(
                bare,
                processes,
                args.duration,
                (
                    ("bare Litestar, JSON", "/json", None),
                    ("bare Litestar, keyed SQLite read", "/row/1", script),
                ),
            )
            ours = start_server(env, processes, tmp)
            lines += run_all(
                ours,
                processes,
                args.duration,
                (
                    ("laowu serve, /healthz", "/healthz", None),
                    ("laowu serve, login page", "/login", None),
                ),
            )
    lines.append(f"load average (1 min) after: {os.getloadavg()[0]:.2f}")
    if args.no_record:
        print("\n".join(lines))
    else:
        record("HTTP baseline: a bare Litestar app beside laowu serve", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
