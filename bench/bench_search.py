"""Search at scale: 1,000,000 workers and 100,000 jobs on the embedded backend.

    python bench/bench_search.py [--database-url postgresql+asyncpg://…] [--workers N] [--jobs N]

Data (bench/scale_data.py, deterministic) lives in $LAOWU_BENCH_DATA (default
/work/benchdata-w5), never in git; it is made once and reused. Measures: full index
rebuild; the search endpoints over HTTP (in-process ASGI: parse, auth, engine,
database re-check, masking, JSON) and the engine alone; incremental lag from a
commit to the change being found; recall against a brute-force scan on 200 sampled
queries; and, given a PostgreSQL URL, the same text queries with pg_trgm (GIN
trigram index on the same text) side by side. Appends to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import pyotp
from sqlalchemy import select, update
from sqlmodel import col

from bench.common import (
    SCALE_DATA_KEY,
    add_scale_db_option,
    cpu_seconds,
    db_label,
    db_name,
    in_loop_client,
    load_average,
    percentiles,
    record,
    scale_db_url,
)
from bench.scale_data import counts as scale_counts
from bench.scale_data import generate, prepare
from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate
from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.events import emit
from marketplace.workers.models import Worker
from matching.search import WORKERS, SearchQuery
from matching.search.documents import WORKER_COLUMNS, Names, worker_document
from matching.search.embedded import EmbeddedBackend
from matching.search.sync import rebuild_jobs, rebuild_workers
from matching.search.tokens import segments
from matching.taxonomy import load_taxonomy
from web.app import create_app
from web.settings import DatabaseSettings, SecuritySettings, Settings

DATA = Path(os.environ.get("LAOWU_BENCH_DATA", "/work/benchdata-w5"))
DISTRICT = "500101"  # 万州区
PASSWORD = "bench-password-1234"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def query_words(rng: random.Random, n: int) -> list[str]:
    """What people type: occupation names and variants (1–4+ characters), place names."""
    terms = [
        t for occ in load_taxonomy() for t in occ.terms if all(k == "cjk" for k, _ in segments(t))
    ]
    places = ["万州", "龙驹", "巫溪", "渝中", "东莞", "宁波", "沙坪坝", "高笋塘"]
    short = ["工", "焊", "普工", "焊工", "钢筋工", "木工", "电工", "厨师", "保洁", "司机"]
    pool = terms + places * 5 + short * 10
    return [rng.choice(pool) for _ in range(n)]


async def rebuild(backend: EmbeddedBackend, settings: Settings, app: Any) -> dict[str, float]:
    started, cpu0 = time.perf_counter(), time.process_time()
    async with app.state.sessions() as session:
        workers = await rebuild_workers(session, backend)
    mid, cpu1 = time.perf_counter(), time.process_time()
    async with app.state.sessions() as session:
        jobs = await rebuild_jobs(session, backend)
    end, cpu2 = time.perf_counter(), time.process_time()
    return {
        "workers": workers,
        "jobs": jobs,
        "workers_s": mid - started,
        "jobs_s": end - mid,
        "workers_cpu": cpu1 - cpu0,
        "jobs_cpu": cpu2 - cpu1,
    }


async def login(client: httpx.AsyncClient, app: Any, role: str, region: str) -> dict[str, str]:
    name = f"bench_{role}_{int(time.time() * 1000) % 10**9}"
    async with unit_of_work(app.state.sessions) as session:
        _, uri = await accounts.create_user(
            session=session,
            actor=SYSTEM,
            cipher=app.state.cipher,
            data=UserCreate(
                username=name, display_name=name, role=role, region_code=region, password=PASSWORD
            ),
        )
    body: dict[str, Any] = {"username": name, "password": PASSWORD}
    if uri:
        body["otp"] = pyotp.TOTP(pyotp.parse_uri(uri).secret).now()
    response = await client.post("/api/v1/auth/login", json=body)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


class TimedBackend:
    """Wraps the app's backend to time the engine alone inside each request."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.samples: list[float] = []
        self.name = inner.name

    async def search(self, spec: Any, query: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self.inner.search(spec, query)
        finally:
            self.samples.append((time.perf_counter() - started) * 1000)

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)


async def measure_http(client: httpx.AsyncClient, app: Any, n: int) -> dict[str, Any]:
    rng = random.Random(11)
    officer = await login(client, app, "district_admin", DISTRICT)
    words = query_words(rng, n)
    timed = TimedBackend(app.state.search)
    app.state.search = timed
    results: dict[str, Any] = {}
    for path, headers in (("/api/v1/workers/search", officer), ("/api/v1/jobs/search", officer)):
        timed.samples.clear()
        samples: list[float] = []
        for i, word in enumerate(words):
            params: dict[str, Any] = {"q": word, "limit": 20}
            if i % 4 == 1 and path.startswith("/api/v1/workers"):
                params["employment_status"] = "seeking"
            if i % 4 == 2:
                params["sort"] = "updated"
            if i % 4 == 3 and path.startswith("/api/v1/jobs"):
                params["lodging"] = "true"
            started = time.perf_counter()
            response = await client.get(path, headers=headers, params=params)
            samples.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
        results[path] = (percentiles(samples), percentiles(timed.samples))
    app.state.search = timed.inner
    return results


async def measure_lag(app: Any, rounds: int = 20) -> dict[str, float]:
    """Commit a change and its event, then (as the in-process outbox does right after
    a commit) drain and search until the change is found."""
    backend = app.state.search
    samples: list[float] = []
    async with app.state.sessions() as session:
        ids = list(
            (
                await session.execute(
                    select(col(Worker.id))
                    .where(col(Worker.hukou_village_code).startswith(DISTRICT))
                    .limit(rounds)
                )
            ).scalars()
        )
    for n, worker_id in enumerate(ids):
        marker = "测绘放线" + "甲乙丙丁戊己庚辛壬癸"[n % 10] + "子丑寅卯辰巳午未申酉"[n // 10 % 10]
        async with unit_of_work(app.state.sessions) as session:
            await session.execute(
                update(Worker).where(col(Worker.id) == worker_id).values(skills=[marker])
            )
            await emit(session, "worker.changed", {"worker_id": worker_id, "action": "update"})
        started = time.perf_counter()
        while True:
            await drain(app.state.sessions, app.state.registry)
            hits = await backend.search(WORKERS, SearchQuery(text=marker, limit=5))
            if worker_id in hits.ids:
                break
        samples.append((time.perf_counter() - started) * 1000)
    ordered = sorted(samples)
    return {"p50": ordered[len(ordered) // 2], "max": ordered[-1]}


async def load_texts(app: Any) -> list[tuple[int, str, str]]:
    """(id, region, folded text) of every live worker, as indexed."""
    out: list[tuple[int, str, str]] = []
    names = Names()
    async with app.state.sessions() as session:
        await names.load_all_regions(session)
        last = 0
        while True:
            rows = (
                (
                    await session.execute(
                        select(*WORKER_COLUMNS)
                        .where(col(Worker.id) > last)
                        .order_by(col(Worker.id))
                        .limit(20000)
                    )
                )
                .mappings()
                .all()
            )
            if not rows:
                return out
            last = int(rows[-1]["id"])
            for row in rows:
                doc = worker_document(row, names)
                if doc is not None:
                    out.append((doc.id, row["hukou_village_code"], doc.text.lower()))


async def measure_recall(
    backend: Any, texts: list[tuple[int, str, str]], n: int = 200
) -> dict[str, Any]:
    rng = random.Random(23)
    exact_sets = 0
    compared = 0
    recall_sum = 0.0
    total_ok = 0
    lengths: dict[int, int] = {}
    for _ in range(n):
        _, _, text = texts[rng.randrange(len(texts))]
        runs = [v for k, v in segments(text) if k == "cjk"]
        run = rng.choice(runs)
        size = min(len(run), rng.choice((1, 2, 2, 3, 3, 4)))
        start = rng.randrange(len(run) - size + 1)
        q = run[start : start + size]
        lengths[size] = lengths.get(size, 0) + 1
        expected = {i for i, _, t in texts if q in t}
        hits = await backend.search(WORKERS, SearchQuery(text=q, limit=1))
        total_ok += hits.total == len(expected)
        if len(expected) <= 20000:
            got = await backend.search(WORKERS, SearchQuery(text=q, limit=len(expected) + 10))
            found = set(got.ids)
            compared += 1
            recall_sum += len(found & expected) / len(expected)
            exact_sets += found == expected
        else:
            recall_sum += min(hits.total, len(expected)) / len(expected)
    return {
        "queries": n,
        "lengths": dict(sorted(lengths.items())),
        "recall": recall_sum / n,
        "total_equal": total_ok,
        "sets_compared": compared,
        "sets_equal": exact_sets,
    }


async def measure_pg_trgm(
    pg_url: str, texts: list[tuple[int, str, str]], backend: Any, n: int
) -> dict[str, Any]:
    import asyncpg

    dsn = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        have = await conn.fetchval("SELECT to_regclass('bench_search_text') IS NOT NULL")
        count = await conn.fetchval("SELECT count(*) FROM bench_search_text") if have else 0
        load_s = 0.0
        if count != len(texts):
            started = time.perf_counter()
            await conn.execute("DROP TABLE IF EXISTS bench_search_text")
            await conn.execute(
                "CREATE TABLE bench_search_text (id int PRIMARY KEY, region text NOT NULL, body text NOT NULL)"
            )
            await conn.copy_records_to_table(
                "bench_search_text", records=texts, columns=["id", "region", "body"]
            )
            await conn.execute(
                "CREATE INDEX bench_search_text_trgm ON bench_search_text USING gin (body gin_trgm_ops)"
            )
            await conn.execute(
                "CREATE INDEX bench_search_text_region ON bench_search_text (region text_pattern_ops)"
            )
            await conn.execute("ANALYZE bench_search_text")
            load_s = time.perf_counter() - started
        rng = random.Random(11)
        words = query_words(rng, n)
        pg: list[float] = []
        engine: list[float] = []
        for word in words:
            started = time.perf_counter()
            await conn.fetch(
                "SELECT id FROM bench_search_text WHERE region LIKE $1 AND body LIKE $2 ORDER BY id DESC LIMIT 20",
                DISTRICT + "%",
                f"%{word}%",
            )
            await conn.fetchval(
                "SELECT count(*) FROM bench_search_text WHERE region LIKE $1 AND body LIKE $2",
                DISTRICT + "%",
                f"%{word}%",
            )
            pg.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await backend.search(
                WORKERS,
                SearchQuery(text=word, clauses=[{"region": [DISTRICT]}], sort="-updated", limit=20),
            )
            engine.append((time.perf_counter() - started) * 1000)
        return {"pg": percentiles(pg), "engine": percentiles(engine), "load_s": load_s}
    finally:
        await conn.close()


def measure_fts5(texts: list[tuple[int, str, str]], backend: Any, n: int) -> dict[str, Any]:
    """The alternative embedded engine: SQLite FTS5 over the same pre-tokenised terms
    (characters and pairs), ranked (bm25) top 20, against tantivy on the same queries."""
    import sqlite3

    from matching.search.tokens import analyze, query_terms

    path = DATA / "fts5.db"
    db = sqlite3.connect(path)
    try:
        built_s = 0.0
        have = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'doc'").fetchone()[0]
        if not have or db.execute("SELECT count(*) FROM doc").fetchone()[0] != len(texts):
            started = time.perf_counter()
            db.execute("DROP TABLE IF EXISTS doc")
            db.execute("CREATE VIRTUAL TABLE doc USING fts5(uni, bi, tokenize='unicode61')")
            for start in range(0, len(texts), 20000):
                rows = []
                for i, _, text in texts[start : start + 20000]:
                    terms = analyze(text)
                    rows.append((i, " ".join(terms.unigrams), " ".join(terms.bigrams)))
                db.executemany("INSERT INTO doc(rowid, uni, bi) VALUES (?, ?, ?)", rows)
            db.commit()
            built_s = time.perf_counter() - started
        rng = random.Random(31)
        by_length: dict[str, tuple[list[float], list[float]]] = {}
        pool = {
            "1 char": ["工", "焊", "厨", "万", "司", "保", "电", "木"],
            "2 chars": ["焊工", "普工", "木工", "万州", "保洁", "司机", "电工", "厨师"],
            "3+ chars": ["钢筋工", "电焊工", "叉车司机", "沙坪坝", "服务员", "搬运工"],
        }
        for label, words in pool.items():
            fts: list[float] = []
            tv: list[float] = []
            for _ in range(n):
                word = rng.choice(words)
                term = query_terms(word)[0]
                match = (
                    f'uni : "{term.values[0]}"'
                    if term.kind == "char"
                    else 'bi : "' + " ".join(term.values) + '"'
                )
                started = time.perf_counter()
                db.execute(
                    "SELECT rowid FROM doc WHERE doc MATCH ? ORDER BY rank LIMIT 20", (match,)
                ).fetchall()
                fts.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                backend._search(WORKERS, SearchQuery(text=word, limit=20))
                tv.append((time.perf_counter() - started) * 1000)
            by_length[label] = (fts, tv)
        return {
            "built_s": built_s,
            "by_length": {k: (percentiles(a), percentiles(b)) for k, (a, b) in by_length.items()},
        }
    finally:
        db.close()


def fmt(p: dict[str, float]) -> str:
    return f"p50 {p['p50']:.1f} / p95 {p['p95']:.1f} / p99 {p['p99']:.1f} ms"


async def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    scale_url = scale_db_url(args.scale_db)
    if scale_url is not None:
        url = scale_url
        counts = await scale_counts(url)
        source = f"Chongqing-scale database {db_label(url)} (bench/bench_scale_data.py)"
        var = DATA / f"var-scale-{db_name(url)}"
    else:
        url = f"sqlite+aiosqlite:///{DATA / 'search.db'}"
        await prepare(url)
        counts = await generate(url, workers=args.workers, jobs=args.jobs)
        source = "bench/scale_data.py, seed 5; SQLite"
        var = DATA / "var"
    gen_s = time.perf_counter() - started
    shutil.rmtree(var / "search", ignore_errors=True)
    settings = Settings(
        env="test",
        db=DatabaseSettings(url=url),
        security=SecuritySettings(secret_key="bench" * 8, data_key=SCALE_DATA_KEY),
        var_dir=var,
        outbox_in_process=False,
    )
    app = create_app(settings)
    backend: EmbeddedBackend = app.state.search
    rss_before = rss_mb()
    built = await rebuild(backend, settings, app)
    rss_after = rss_mb()
    async with in_loop_client(app) as client:
        http = await measure_http(client, app, args.queries)
    lag = await measure_lag(app)
    texts = await load_texts(app)
    recall = await measure_recall(backend, texts)
    lines = [
        f"data: {counts.workers:,} workers, {counts.jobs:,} jobs, {counts.brokers:,} brokers ({source}; {gen_s:.0f} s incl. any generation); embedded tantivy backend",
        f"full rebuild: workers {built['workers']:,} docs in {built['workers_s']:.0f} s wall / {built['workers_cpu']:.0f} s CPU of this process (all threads), published jobs {built['jobs']:,} in {built['jobs_s']:.0f} s wall / {built['jobs_cpu']:.0f} s CPU (target < 300 s in all); peak RSS {rss_before:.0f} → {rss_after:.0f} MB; 1-min load average after: {os.getloadavg()[0]:.1f} on 2 cores",
    ]
    for path, (http_p, engine_p) in http.items():
        lines.append(
            f"`GET {path}` ({args.queries} queries, district officer of 万州区, limit 20): HTTP {fmt(http_p)} (target p95 < 50); engine alone {fmt(engine_p)} (target < 10)"
        )
    lines.append(
        f"incremental lag, commit → drained → found (20 updates): p50 {lag['p50']:.0f} ms, max {lag['max']:.0f} ms (target < 2 s)"
    )
    lines.append(
        f"recall vs brute-force substring scan, {recall['queries']} queries sampled from indexed text (lengths {recall['lengths']}): {recall['recall']:.4f}; engine total = scan count in {recall['total_equal']}/{recall['queries']}; identical id sets in {recall['sets_equal']}/{recall['sets_compared']} compared (≤ 20,000 hits)"
    )
    if not args.skip_fts5:
        fts = measure_fts5(texts, backend, 50)
        for label, (fts_p, tv_p) in fts["by_length"].items():
            lines.append(
                f"engine choice, ranked top-20 query of {label} (50 each, no filter): SQLite FTS5 on the same character+pair terms {fmt(fts_p)}; tantivy {fmt(tv_p)}"
                + (
                    f" (FTS5 table built in {fts['built_s']:.0f} s)"
                    if label == "1 char" and fts["built_s"]
                    else ""
                )
            )
    if args.database_url and args.database_url.startswith("postgresql"):
        pg = await measure_pg_trgm(
            args.database_url, [(i, r, t) for i, r, t in texts], backend, args.queries
        )
        ratio = pg["pg"]["p95"] / max(pg["engine"]["p95"], 1e-6)
        lines.append(
            f"same worker text in PostgreSQL, pg_trgm GIN index, `region LIKE '500101%' AND body LIKE '%q%'` top 20 + count ({args.queries} queries; load {pg['load_s']:.0f} s): PostgreSQL {fmt(pg['pg'])}; embedded engine same filter {fmt(pg['engine'])}; p95 ratio {ratio:.0f}×"
        )
    lines.append(
        f"load average at the end {load_average()}; CPU time of this process {cpu_seconds():.0f} s; HTTP is in-process ASGI (no socket)"
    )
    title = "Search (embedded backend, 1M workers)"
    if scale_url is not None:
        title = f"Search (embedded backend) at Chongqing scale, {db_name(url)}"
    record(title, lines)
    await app.state.engine.dispose()


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("LAOWU_BENCH_DATABASE_URL"))
    parser.add_argument("--workers", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    add_scale_db_option(parser)
    parser.add_argument("--skip-fts5", action="store_true", help="skip the FTS5 comparison")
    DATA.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
