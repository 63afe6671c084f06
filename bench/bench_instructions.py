"""The load test's reads, counted in CPU instructions: what a request of the mix costs
the server, measured the same on a busy or a quiet machine.

    python bench/bench_instructions.py [--requests 400] [--data-dir DIR] [--no-record]

The load test's throughput and `bench_load.py --cost` are timings, and on a shared
virtual machine the same run varies by 15-20 % from one minute to the next, so a change
that saves a tenth of a request's CPU cannot be seen in them. valgrind's callgrind
counts the instructions a process executes, which do not depend on what else the
machine is doing. This script runs the server's application in a child process under
callgrind (valgrind, Debian package ``valgrind``), twice: once with ``--requests``
reads drawn from the load test's mix with its weights (bench/bench_load.py: the same
database, accounts and request kinds; the writes are left out), and once with none.
Both start the application and send every kind once to warm it up, so the difference
divided by the number of requests is what one request of the mix costs: the ASGI
application with its middleware, database and search work, and logging, without
uvicorn's HTTP parsing or any client, and without the session touches (written at most
once a minute a session, so their number would follow the run's length).

It uses the load test's SQLite database (built the first time, under ``--data-dir``),
appends its figures to bench/RESULTS.md, and needs valgrind (``make bench`` installs
it). The application under callgrind runs about 50 times slower than usual: the two
runs take about five minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_load as load
from bench.common import record

WRITES = {"employer.post", *load.POOLED}  # the mix's writes and their pooled fallbacks
COLLECTED = re.compile(r"Collected : (\d+)")


def reads() -> list[load.Kind]:
    return [kind for kind in load.MIX if kind.name not in WRITES]


def plan(fx: load.Fixtures, requests: int, seed: int = 7) -> tuple[list[Any], list[Any]]:
    """(warm-up, measured): each read kind once, then ``requests`` reads in the mix's
    proportions, shuffled, each a (kind, path, headers)."""
    rng = random.Random(seed)
    kinds = [k for k in reads() if load._available(k, fx)]
    warm = [(k.name, *load._read(k.name, rng, fx)[1:3]) for k in kinds]
    weights = sum(k.weight for k in kinds)
    names = [k.name for k in kinds for _ in range(round(k.weight * requests / weights))]
    rng.shuffle(names)
    return warm, [(name, *load._read(name, rng, fx)[1:3]) for name in names]


# --- the child: the application alone, requests sent straight through ASGI ----------------


async def _call(app: Any, path: str, headers: dict[str, str]) -> int:
    bare, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(bare),
        "raw_path": bare.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000")]
        + [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _serve(warm: list[Any], measured: list[Any]) -> None:
    from marketplace.accounts import rules
    from web.app import create_app
    from web.ops.observability import configure_logging
    from web.settings import get_settings

    # A session's last-seen time is written at most once a minute (``rules.TOUCH_INTERVAL``):
    # in a 20 s load test once per session at most. Under callgrind a run lasts minutes, so
    # how many touches it made would depend on how long it ran: none are counted.
    rules.TOUCH_INTERVAL = timedelta(days=1)
    configure_logging(force=False)  # as each server process does (web/asgi.py)
    app: Any = create_app(get_settings())
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            incoming.get,
            outgoing.put,
        )
    )
    await incoming.put({"type": "lifespan.startup"})
    if (await outgoing.get())["type"] != "lifespan.startup.complete":
        raise SystemExit("the application did not start")
    for kind, path, headers in [*warm, *measured]:
        status = await _call(app, path, headers)
        if status >= 400:
            raise SystemExit(f"{kind}: GET {path} answered {status}")
    await incoming.put({"type": "lifespan.shutdown"})
    await outgoing.get()
    await lifespan


# --- the parent ------------------------------------------------------------------------------


def _callgrind(env: dict[str, str], plan_path: Path, tmp: Path, label: str) -> int:
    log = tmp / f"callgrind-{label}.log"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={tmp / f'callgrind-{label}.out'}",
        f"--log-file={log}",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(plan_path),
    ]
    started = time.perf_counter()
    output = tmp / f"child-{label}.log"  # the application's own log (an access line a request)
    with output.open("wb") as sink:
        done = subprocess.run(command, env=env, check=False, stdout=sink, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(
            f"the {label} run failed; its output ends:\n{output.read_text()[-3000:]}"
        )
    found = COLLECTED.search(log.read_text())
    if found is None:
        raise RuntimeError(f"no instruction count in {log}")
    print(
        f"  {label}: {int(found.group(1)):,} instructions ({time.perf_counter() - started:.0f} s)"
    )
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="measured reads")
    parser.add_argument("--data-dir", type=Path, default=load.DEFAULT_DIR)
    parser.add_argument("--workers", type=int, default=100_000, help="generated workers")
    parser.add_argument("--jobs", type=int, default=5_000, help="generated jobs")
    parser.add_argument("--no-record", action="store_true", help="print, do not append")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_serve(*json.loads(args.child.read_text())))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install valgrind (make bench does it)")
        return 2
    url, data_key = load._default_db(args.data_dir)
    var_dir = args.data_dir / "var-sqlite"
    load.build_default(url, data_key, var_dir, args.workers, args.jobs)
    fx = asyncio.run(load.discover(url, 50))
    districts = sorted({o.region_code for o in fx.officers})
    if asyncio.run(load.top_up_review_queue(url, districts, load.PENDING_PER_DISTRICT)):
        fx = asyncio.run(load.discover(url, 50))
    accounts = [*fx.brokers, *fx.officers, *fx.employers]
    env = {
        **load._env(url, data_key, var_dir),
        "LAOWU_OUTBOX_IN_PROCESS": "0",  # as in the scaled layout: no duties in the count
        "PYTHONHASHSEED": "0",  # the same dict and set orders in both runs
    }
    asyncio.run(load.open_sessions(url, accounts))  # gives each account its tokens
    warm, measured = plan(fx, args.requests)
    try:
        with tempfile.TemporaryDirectory(prefix="laowu-instructions-") as tmp_name:
            tmp = Path(tmp_name)
            with_requests, without = tmp / "plan.json", tmp / "empty.json"
            with_requests.write_text(json.dumps([warm, measured]))
            without.write_text(json.dumps([warm, []]))
            counted = _callgrind(env, with_requests, tmp, "reads")
            baseline = _callgrind(env, without, tmp, "start only")
    finally:
        asyncio.run(load.close_sessions(url, accounts))
    per_request = (counted - baseline) / len(measured)
    kinds: dict[str, int] = {}
    for kind, _, _ in measured:
        kinds[kind] = kinds.get(kind, 0) + 1
    lines = [
        f"database: SQLite, the load test's data set under {args.data_dir}",
        f"reads: {len(measured)} drawn from the load test's mix by weight ("
        + ", ".join(f"{k} {n}" for k, n in kinds.items())
        + "); each read kind once before, in both runs",
        f"instructions: {counted:,} with the reads, {baseline:,} without",
        f"**{per_request / 1e6:.2f} million instructions a read request** "
        "(the ASGI application with its database and search work and logging; "
        "no HTTP parsing, no client)",
    ]
    if args.no_record:
        print("\n".join(lines))
    else:
        record("Instructions per request of the mix's reads (callgrind)", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
