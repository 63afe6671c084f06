"""Fault drills (docs/operations.md, "Fault drills"): run the real processes —
``laowu serve``, ``laowu worker``, ``laowu workers import``, ``laowu index rebuild``,
``laowu billing execute-batch`` — kill them with SIGKILL at random moments, start them
again, and check what the database and the search index hold afterwards.

Shared by the bounded drills in tests/resilience/ and the long one in
bench/drill_faults.py. Every random choice comes from one seeded ``random.Random``.
"""

from __future__ import annotations

import asyncio
import csv
import os
import random
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.crypto import DataCipher
from marketplace.events import OutboxEvent
from marketplace.workers.identity import check_char
from marketplace.workers.importing import COLUMNS
from marketplace.workers.models import Worker
from matching.search import open_backend
from matching.search.base import WORKERS, SearchBackend, SearchQuery

ROOT = Path(__file__).resolve().parents[2]
SECRET = "drill-secret-" + "x" * 32


def laowu() -> list[str]:
    return [str(Path(sys.executable).with_name("laowu"))]


def env_for(url: str, var_dir: Path, data_key: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LAOWU_ENV": "test",
        "LAOWU_DATABASE_URL": url,
        "LAOWU_DATA_KEY": data_key,
        "LAOWU_SECRET_KEY": SECRET,
        "LAOWU_VAR_DIR": str(var_dir),
        "LAOWU_LOG_FORMAT": "text",
        **extra,
    }


@dataclass
class Outcome:
    """One drill's record: where it killed, what it found."""

    name: str
    kills: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        checks = ", ".join(f"{k} {v}" for k, v in self.checks.items())
        return f"{self.name}: {len(self.kills)} kills ({'; '.join(self.kills)}) — {checks}"


async def run_until_done(
    argv: Sequence[str],
    env: dict[str, str],
    rng: random.Random,
    *,
    kills: int,
    window: tuple[float, float],
    outcome: Outcome,
    label: str,
    limit: float = 120.0,
    armed: Callable[[], Awaitable[bool]] | None = None,
) -> str:
    """Run ``argv`` again and again, killing the first ``kills`` runs after a random
    delay in ``window`` seconds; returns the stdout of the run that finished (exit 0).
    With ``armed``, the delay counts from when ``armed()`` first answers True (polled):
    a kill tied to the run's progress lands mid-work on a fast machine and a slow one."""
    attempt = 0
    while True:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        delay = rng.uniform(*window) if attempt < kills else None
        talk = asyncio.ensure_future(proc.communicate())
        try:
            if delay is not None and armed is not None:
                started = asyncio.get_running_loop().time()
                while not talk.done() and not await armed():
                    if asyncio.get_running_loop().time() - started > limit:
                        break
                    await asyncio.sleep(0.02)
            out, err = await asyncio.wait_for(asyncio.shield(talk), timeout=delay or limit)
        except TimeoutError:
            if delay is None:
                proc.kill()
                await talk
                raise
            proc.send_signal(signal.SIGKILL)
            await talk
            outcome.kills.append(f"{label} at {delay:.2f} s")
            print(outcome.kills[-1], flush=True)
            attempt += 1
            continue
        print(f"{label}: finished after {attempt} kills", flush=True)
        if proc.returncode != 0:
            raise AssertionError(f"{label} failed ({proc.returncode}): {err.decode()[-3000:]}")
        if attempt < kills:
            outcome.kills.append(f"{label} finished before its kill at {delay:.2f} s")
        return out.decode()


class Daemon:
    """A long-running process (``laowu worker``, ``laowu serve``) that a drill kills
    with SIGKILL at random moments and starts again."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log = list(argv), env, log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=out
            )

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        self.proc = None

    async def stop(self) -> None:
        """SIGTERM and wait (the end of a drill, not a fault)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None

    async def chaos(
        self, rng: random.Random, outcome: Outcome, label: str, stop: asyncio.Event, every: float
    ) -> None:
        """Kill and restart at random moments (about every ``every`` seconds) until
        ``stop`` is set; then leave it stopped."""
        await self.start()
        started = asyncio.get_running_loop().time()
        while not stop.is_set():
            delay = rng.uniform(every / 3, every)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                await self.kill()
                at = asyncio.get_running_loop().time() - started
                outcome.kills.append(f"{label} at {at:.2f} s")
                await self.start()
        await self.stop()


async def laowu_once(env: dict[str, str], *args: str, limit: float = 300.0) -> str:
    proc = await asyncio.create_subprocess_exec(
        *laowu(),
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=limit)
    if proc.returncode != 0:
        raise AssertionError(f"laowu {' '.join(args)} failed: {err.decode()[-3000:]}")
    return out.decode()


# --- input files -------------------------------------------------------------------------


def id_numbers(rng: random.Random, count: int, prefix: str = "500103") -> list[str]:
    used: dict[str, None] = {}
    while len(used) < count:
        born = date(1960, 1, 1) + timedelta(days=rng.randrange(40 * 365))
        first17 = f"{prefix}{born:%Y%m%d}{rng.randrange(1000):03d}"
        used.setdefault(first17 + check_char(first17))
    return list(used)


POOL = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜谢邹柏窦章云苏潘葛范彭鲁韦马苗凤花方俞任袁柳鲍史唐费岑薛雷贺倪汤"


def name_of(n: int, prefix: str = "演练") -> str:
    """A person's name that no other row's name contains (names hold no digits)."""
    size = len(POOL)
    return prefix + POOL[n // size // size % size] + POOL[n // size % size] + POOL[n % size]


def write_import_csv(
    path: Path,
    numbers: Sequence[str],
    villages: Sequence[str],
    seed: int,
    names: dict[int, str] | None = None,
) -> None:
    """The register file; ``names`` overrides the name of some rows (by position)."""
    rng = random.Random(seed)
    skills = ["电焊", "钢筋工", "木工", "瓦工", "保洁", "厨师", "叉车司机", "电工", "普工"]
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([c.header for c in COLUMNS])
        for n, number in enumerate(numbers):
            values = {
                "name": (names or {}).get(n, name_of(n)),
                "id_number": number,
                "phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                "hukou_village_code": rng.choice(list(villages)),
                "employment_status": rng.choice(["本地就业", "外出务工", "求职中"]),
                "skills": "、".join(rng.sample(skills, rng.randint(1, 3))),
                "wage_min_fen": 20000,
                "wage_max_fen": 30000,
                "wage_unit": "天",
                "mobility": "不限",
                "consent_to_recommend": "是",
            }
            writer.writerow([values.get(c.field, "") for c in COLUMNS])


# --- checks ------------------------------------------------------------------------------


async def workers_match_file(
    session: AsyncSession, cipher: DataCipher, numbers: Sequence[str], broker_id: int
) -> dict[str, int]:
    """Every ID number of the file is one live worker of the broker, and nothing else is
    (compared by the keyed hash the register stores)."""
    expected = {cipher.lookup_hash(n) for n in numbers}
    rows = list(
        (
            await session.execute(
                select(col(Worker.id_number_hash)).where(
                    col(Worker.broker_id) == broker_id, col(Worker.deleted_at).is_(None)
                )
            )
        ).scalars()
    )
    stored = [r for r in rows if r is not None]
    lost = expected - set(stored)
    extra = set(stored) - expected
    duplicated = len(stored) - len(set(stored))
    assert not lost, f"{len(lost)} workers of the file are missing"
    assert not extra, f"{len(extra)} workers not in the file"
    assert duplicated == 0, f"{duplicated} duplicated workers"
    return {"workers": len(stored), "lost": 0, "duplicated": 0}


async def pending_events(session: AsyncSession) -> int:
    return int(
        (
            await session.execute(
                select(func.count())
                .select_from(OutboxEvent)
                .where(col(OutboxEvent.processed_at).is_(None))
            )
        ).scalar_one()
    )


def search_backend(var_dir: Path) -> SearchBackend:
    return open_backend(url=None, api_key=None, var_dir=var_dir)


async def index_ids(backend: SearchBackend, spec: Any = WORKERS) -> list[int]:
    """Every id in the index, duplicates included (one query over all documents)."""
    total = await backend.count(spec)
    hits = await backend.search(spec, SearchQuery(limit=total + 100))
    return hits.ids


async def index_matches_database(
    session: AsyncSession, backend: SearchBackend, *, renamed: dict[int, tuple[str, str]]
) -> dict[str, int]:
    """The worker index holds exactly the live workers (ids), and a changed worker is
    found by its new name and no longer by its old one (content)."""
    in_db = set(
        (
            await session.execute(select(col(Worker.id)).where(col(Worker.deleted_at).is_(None)))
        ).scalars()
    )
    listed = await index_ids(backend)
    in_index = set(listed)
    missing, stale_ids = in_db - in_index, in_index - in_db
    duplicated = len(listed) - len(in_index)
    stale_content = 0
    for worker_id, (old, new) in renamed.items():
        found_new = await backend.search(WORKERS, SearchQuery(text=new, limit=5))
        found_old = await backend.search(WORKERS, SearchQuery(text=old, limit=5))
        if worker_id not in found_new.ids or worker_id in found_old.ids:
            stale_content += 1
    diff = {
        "missing": len(missing),
        "not_in_db": len(stale_ids),
        "duplicated": duplicated,
        "stale_content": stale_content,
    }
    assert diff == dict.fromkeys(diff, 0), f"index differs from the database: {diff}"
    return {"indexed": len(in_index), "diff": 0}
