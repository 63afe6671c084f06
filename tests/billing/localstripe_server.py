"""Start localstripe's aiohttp app on 127.0.0.1 only (its own command listens on every
interface): ``python -m tests.billing.localstripe_server PORT``; tests use ``running()``.

localstripe keeps its objects in memory; it also pickles them to
/tmp/localstripe.pickle after each write, but only its own command reads that back,
so servers started here always begin empty."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(timeout: float = 30) -> Iterator[str]:
    """A localstripe on a free loopback port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.billing.localstripe_server", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError as exc:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("localstripe did not start") from exc
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    from aiohttp import web
    from localstripe.server import app

    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
