"""The floor the load test is measured against: a bare Litestar app with no middleware,
one JSON endpoint and one keyed SQLite read, served by the same uvicorn (uvloop,
httptools) as ``laowu serve``. bench/bench_baseline.py starts it; nothing else uses it.

    LAOWU_BARE_DB=/tmp/bare.sqlite uvicorn bench.load.bare_app:app
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from litestar import Litestar, get
from litestar.exceptions import NotFoundException

# One connection per process; a keyed read is microseconds, so it runs on the loop.
_db = sqlite3.connect(os.environ["LAOWU_BARE_DB"], check_same_thread=False)


@get("/json")
async def hello() -> dict[str, str]:
    return {"status": "ok"}


@get("/row/{row_id:int}")
async def row(row_id: int) -> dict[str, Any]:
    found = _db.execute("SELECT id, name, code FROM item WHERE id = ?", (row_id,)).fetchone()
    if found is None:
        raise NotFoundException(f"no row {row_id}")
    return {"id": found[0], "name": found[1], "code": found[2]}


app = Litestar(route_handlers=[hello, row], debug=False, logging_config=None)
