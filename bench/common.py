"""Helpers shared by the benchmarks: machine facts and recording results."""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import platform
import resource
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def git_rev() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": q[49], "p95": q[94], "p99": q[98], "max": ordered[-1]}


def record(title: str, lines: list[str]) -> None:
    """Append one dated section to bench/RESULTS.md and echo it."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join([Path(sys.executable).name, *sys.argv])
    section = [
        f"## {title} — {stamp}",
        "",
        f"- machine: {machine()}",
        f"- commit: {git_rev()}",
        f"- command: `{command}`",
        *[f"- {line}" for line in lines],
        "",
    ]
    text = "\n".join(section)
    print(text)
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    RESULTS.write_text(existing.rstrip("\n") + "\n\n" + text)


def laowu_env(url: str, data_key: str, var_dir: str) -> dict[str, str]:
    """Environment for a `laowu` subprocess against the benchmark's database."""
    return {
        **os.environ,
        "LAOWU_DATABASE_URL": url,
        "LAOWU_DATA_KEY": data_key,
        "LAOWU_SECRET_KEY": "bench" * 8,
        "LAOWU_VAR_DIR": var_dir,
    }


def laowu_command() -> str:
    return str(Path(sys.executable).with_name("laowu"))


# The data key of the Chongqing-scale databases the benchmarks generate and share
# (bench/bench_scale_data.py): fixed, so any benchmark (or `laowu serve` with
# LAOWU_DATA_KEY set to it) can read their encrypted columns. Never a production key.
SCALE_DATA_KEY = (
    base64.urlsafe_b64encode(hashlib.sha256(b"laowu-scale").digest()).decode().rstrip("=")
)
SCALE_SQLITE = "/work/scale/chongqing.sqlite"
SCALE_PG_NAME = "laowu_chongqing"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def cpu_seconds() -> float:
    """CPU time of this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def add_scale_db_option(parser: argparse.ArgumentParser) -> None:
    """``--scale-db URL``: measure against an already generated Chongqing-scale
    database (bench/bench_scale_data.py) instead of generating a smaller data set.
    ``sqlite`` and ``postgresql`` are short for the shared ones."""
    parser.add_argument(
        "--scale-db",
        default=None,
        metavar="URL",
        help="an already generated Chongqing-scale database (bench/bench_scale_data.py); "
        f"'sqlite' = {SCALE_SQLITE}, 'postgresql' = database {SCALE_PG_NAME}",
    )


def scale_db_url(value: str | None) -> str | None:
    if value is None:
        return None
    if value == "sqlite":
        return f"sqlite+aiosqlite:///{SCALE_SQLITE}"
    if value in ("postgresql", "pg"):
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{SCALE_PG_NAME}"
    return value


def db_name(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"


def db_label(url: str) -> str:
    """The database of ``url`` without credentials: a path or host/name."""
    return url.split("@")[-1] if url.startswith("postgresql") else url.split("///")[-1]


@contextlib.asynccontextmanager
async def in_loop_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that runs ``app`` (started and stopped with its lifespan) in the
    caller's event loop. Litestar's test client runs the app in a thread of its own,
    where connections that an asyncpg pool made in this loop cannot be used."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        yield client
