"""A year's reconciliation for Chongqing: every district's fund pools (38 districts ×
3 funding sources), 12,000 brokers, ~1,000,000 approved task subsidies over 2026 with
their ledger entries — reserve at approval, release (void) before payment, payment in
twice-monthly payout batches 30 days after approval (one entry per broker and source,
netting what a broker owes back), reversal after payment — plus quarterly
appropriations and top-ups: ≥ 3,000,000 postings. Then the year's city-wide report
(every district and source, both identities checked per pool), one district's year
and the city's June. Target < 10 s.

The year is generated deterministically (seeded) and loaded in bulk through the
database driver (COPY on PostgreSQL, executemany on SQLite) the way ``post_many``
does it: entries inserted open, their postings, then closed by one UPDATE, so the
ledger's triggers check every entry (balance, one ledger, no overdraft) as it closes.
A subsidy row is written for each approval (its status and entry ids at year end).

    python bench/bench_reconciliation.py [--database-url URL] [--subsidies 1000000]
        [--brokers 12000] [--reuse]

``--reuse`` times the reports again on a database an earlier run loaded (give its
URL; for SQLite ``sqlite+aiosqlite:////tmp/laowu-bench-…/bench.db``).

``--suspend-triggers`` (SQLite; a shared 2-core machine loads the year through
SQLite's triggers in about an hour): the ledger triggers are dropped for the load,
entries go in posted, then every entry is checked to balance with at least two
postings, the balances are computed from the postings (the no-overdraft CHECK
applies) and the triggers are reinstalled before the reports. The same seeded year
goes through the triggers entry by entry on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
import sys
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bench.billing_common import Meter, db_name, fresh_database, parse
from bench.common import record
from billing import pools, reconciliation
from billing.ledger import ddl
from billing.ledger import service as ledger
from billing.ledger.models import LedgerAccount, LedgerEntry, LedgerPosting
from billing.models import FundPool, Subsidy
from marketplace.access import SYSTEM
from marketplace.brokers.models import Broker
from marketplace.clock import SHANGHAI
from marketplace.db import UTCDateTime, begin_write, create_engine, session_factory
from marketplace.regions.models import Region

SOURCES = ("employment_subsidy", "migrant_worker_services", "purchase_civil_affairs")
SOURCE_WEIGHTS = (0.5, 0.3, 0.2)
# Task types: rate per unit (fen) and the largest approved quantity.
TASKS = (
    ("job_fair", 5_000, 2),
    ("policy_promotion", 2_000, 5),
    ("worker_registration", 1_000, 10),
    ("labour_transfer", 10_000, 3),
    ("follow_up_visit", 3_000, 4),
)
# More tasks around the Spring Festival return-to-work season, fewer in midsummer.
MONTH_WEIGHTS = (1.3, 1.5, 1.3, 1.0, 0.9, 0.8, 0.7, 0.8, 1.0, 1.0, 0.9, 0.8)
VOID_RATE = 0.04
REVERSE_RATE = 0.01
PAYABLE_AFTER = timedelta(days=30)
SUB_BATCH = 10_000  # entries a transaction while loading
ENTRY_COLUMNS = [
    "id", "idempotency_key", "content_hash", "ledger", "kind", "memo", "reversal_of_id",
    "status", "effective_at", "created_at", "created_by",
]  # fmt: skip
POSTING_COLUMNS = ["entry_id", "account_id", "side", "amount_fen", "effective_at"]
SQLITE_ENTRY = (
    "INSERT INTO ledger_entry (id, idempotency_key, content_hash, ledger, kind, memo, "
    "reversal_of_id, status, effective_at, created_at, created_by) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SQLITE_POSTING = (
    "INSERT INTO ledger_posting (entry_id, account_id, side, amount_fen, effective_at) "
    "VALUES (?, ?, ?, ?, ?)"
)


def chunk_starts() -> list[datetime]:
    """The 1st and the 16th of every month of 2026, 00:00 Beijing, as UTC; and 2027."""
    starts = [
        datetime(2026, m, d, tzinfo=SHANGHAI).astimezone(UTC) for m in range(1, 13) for d in (1, 16)
    ]
    return [*starts, datetime(2027, 1, 1, tzinfo=SHANGHAI).astimezone(UTC)]


@dataclass
class Event:
    when: datetime
    key: str
    kind: str
    lines: list[tuple[int, str, int]]
    reversal_of: int | None = None
    subsidy: int | None = None  # whose entry id to note, and which one
    role: str = ""
    entry_id: int = 0


@dataclass
class Year:
    """The generated year: subsidies as parallel lists, and what happened to them."""

    broker: list[int] = field(default_factory=list)
    pool: list[int] = field(default_factory=list)
    task: list[int] = field(default_factory=list)
    quantity: list[int] = field(default_factory=list)
    amount: list[int] = field(default_factory=list)
    approved: list[datetime] = field(default_factory=list)
    fate: list[str] = field(default_factory=list)  # keep | void | reverse
    entries: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    paid_at: dict[int, datetime] = field(default_factory=dict)
    voided_at: dict[int, datetime] = field(default_factory=dict)
    entry_of: dict[tuple[int, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class PoolAccounts:
    district: str
    source: str
    available: int
    reserved: int
    appropriated: int
    paid: int
    reversed: int
    id: int


async def setup(
    factory: async_sessionmaker[AsyncSession], rng: random.Random, brokers: int
) -> tuple[list[PoolAccounts], list[tuple[int, str]]]:
    async with factory() as session:
        await begin_write(session)
        districts = list(
            (
                await session.execute(
                    select(col(Region.code))
                    .where(col(Region.level) == "district")
                    .order_by(col(Region.code))
                )
            ).scalars()
        )
        villages: dict[str, list[str]] = defaultdict(list)
        for code in (
            await session.execute(select(col(Region.code)).where(col(Region.level) == "village"))
        ).scalars():
            villages[code[:6]].append(code)
        found: list[FundPool] = [
            await pools.ensure_pool(session, d, s) for d in districts for s in SOURCES
        ]
        rows = []
        homes: list[tuple[int, str]] = []
        for n in range(1, brokers + 1):
            district = rng.choice([d for d in districts if villages[d]])
            rows.append(
                {
                    "id": n,
                    "name": f"经纪人{n:05d}",
                    "village_code": rng.choice(villages[district]),
                    "status": "active",
                    "welfare_post_task_types": [],
                }
            )
            homes.append((n, district))
        await session.execute(insert(Broker), rows)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            await session.execute(text("SELECT setval('broker_id_seq', :n)"), {"n": brokers})
        await session.commit()
    made = [
        PoolAccounts(
            p.district_code,
            p.source,
            p.available_account_id,
            p.reserved_account_id,
            p.appropriated_account_id,
            p.paid_account_id,
            p.reversed_account_id,
            p.id or 0,
        )
        for p in found
    ]
    return made, homes


def generate(
    rng: random.Random, count: int, homes: list[tuple[int, str]], by_district: dict[str, list[int]]
) -> Year:
    """Every approval of the year, in time order, and each one's fate."""
    year = Year()
    starts = chunk_starts()
    weights = [MONTH_WEIGHTS[c // 2] for c in range(24)]
    per_chunk = [round(count * w / sum(weights)) for w in weights]
    per_chunk[-1] += count - sum(per_chunk)
    for c, n in enumerate(per_chunk):
        span = (starts[c + 1] - starts[c]).total_seconds()
        times = sorted(starts[c] + timedelta(seconds=rng.random() * span) for _ in range(n))
        for when in times:
            broker, district = homes[rng.randrange(len(homes))]
            source = rng.choices(range(len(SOURCES)), SOURCE_WEIGHTS)[0]
            task = rng.randrange(len(TASKS))
            quantity = rng.randint(1, TASKS[task][2])
            year.broker.append(broker)
            year.pool.append(by_district[district][source])
            year.task.append(task)
            year.quantity.append(quantity)
            year.amount.append(quantity * TASKS[task][1])
            year.approved.append(when)
            r = rng.random()
            year.fate.append(
                "void" if r < VOID_RATE else "reverse" if r < VOID_RATE + REVERSE_RATE else "keep"
            )
    return year


class Loader:
    """Writes entries the way ``post_many`` does, through the driver, in sub-batches."""

    def __init__(
        self, factory: async_sessionmaker[AsyncSession], dialect: Any, *, suspended: bool = False
    ) -> None:
        self.factory = factory
        self.is_pg = dialect.name == "postgresql"
        self.suspended = suspended  # SQLite with the ledger triggers dropped
        self.next_id = 1
        self.entries = 0
        self.postings = 0
        self._time: Any = UTCDateTime().bind_processor(dialect)

    def stamp(self, when: datetime) -> Any:
        return when if self.is_pg else self._time(when)

    async def write(self, events: list[Event]) -> None:
        for start in range(0, len(events), SUB_BATCH):
            await self._write(events[start : start + SUB_BATCH])

    async def _write(self, events: list[Event]) -> None:
        now = datetime.now(UTC)
        status = "posted" if self.suspended else "open"
        entries, postings = [], []
        for e in events:
            e.entry_id = self.next_id
            self.next_id += 1
            lines = [ledger.Line(a, s, m) for a, s, m in e.lines]
            when = self.stamp(e.when)
            entries.append(
                (
                    e.entry_id,
                    e.key,
                    ledger.content_hash("subsidy", e.kind, lines, e.reversal_of),
                    "subsidy",
                    e.kind,
                    "",
                    e.reversal_of,
                    status,
                    when,
                    self.stamp(now),
                    None,
                )
            )
            postings.extend((e.entry_id, a, s, m, when) for a, s, m in e.lines)
        if not events:
            return
        lo, hi = events[0].entry_id, events[-1].entry_id
        async with self.factory() as session:
            await begin_write(session)
            conn = await session.connection()
            await conn.exec_driver_sql("SELECT 1")  # asyncpg: BEGIN goes with the first
            driver: Any = (await conn.get_raw_connection()).driver_connection
            if self.is_pg:
                await driver.copy_records_to_table(
                    "ledger_entry", records=entries, columns=ENTRY_COLUMNS
                )
                await driver.copy_records_to_table(
                    "ledger_posting", records=postings, columns=POSTING_COLUMNS
                )
                await driver.execute(
                    "UPDATE ledger_entry SET status = 'posted' WHERE id BETWEEN $1 AND $2", lo, hi
                )
            else:
                await driver.executemany(SQLITE_ENTRY, entries)
                await driver.executemany(SQLITE_POSTING, postings)
                if not self.suspended:
                    await driver.execute(
                        "UPDATE ledger_entry SET status = 'posted' WHERE id BETWEEN ? AND ?",
                        (lo, hi),
                    )
            await session.commit()
        self.entries += len(entries)
        self.postings += len(postings)


async def receivable_accounts(
    factory: async_sessionmaker[AsyncSession], year: Year, pools_by_id: dict[int, PoolAccounts]
) -> dict[tuple[int, int], int]:
    """The broker-owes-the-pool accounts, one per broker and pool with a reversal."""
    pairs = sorted(
        {(year.broker[i], year.pool[i]) for i, f in enumerate(year.fate) if f == "reverse"}
    )
    async with factory() as session:
        await begin_write(session)
        await session.execute(
            insert(LedgerAccount),
            [
                {
                    "code": f"broker:{b}:receivable:{pools_by_id[p].district}:{pools_by_id[p].source}",
                    "ledger": "subsidy",
                    "kind": "broker_receivable",
                    "name": f"经纪人 {b} 应追回",
                    "normal_side": "debit",
                    "no_overdraft": False,
                    "currency": "cny",
                    "district_code": pools_by_id[p].district,
                    "source": pools_by_id[p].source,
                    "broker_id": b,
                    "balance_fen": 0,
                    "created_at": datetime.now(UTC),
                }
                for b, p in pairs
            ],
        )
        ids = {
            code: int(i or 0)
            for code, i in (
                await session.execute(
                    select(col(LedgerAccount.code), col(LedgerAccount.id)).where(
                        col(LedgerAccount.kind) == "broker_receivable"
                    )
                )
            ).all()
        }
        await session.commit()
    return {
        (b, p): ids[f"broker:{b}:receivable:{pools_by_id[p].district}:{pools_by_id[p].source}"]
        for b, p in pairs
    }


async def load(
    factory: async_sessionmaker[AsyncSession],
    loader: Loader,
    rng: random.Random,
    year: Year,
    pools_by_id: dict[int, PoolAccounts],
) -> None:
    starts = chunk_starts()
    receivable = await receivable_accounts(factory, year, pools_by_id)
    owed: dict[tuple[int, int], int] = defaultdict(int)
    available: dict[int, int] = defaultdict(int)
    annual: dict[int, int] = defaultdict(int)
    for i, amount in enumerate(year.amount):
        annual[year.pool[i]] += amount
    unpaid: list[int] = []  # approved, reserved, neither voided nor paid yet (time order)
    to_void: list[int] = []
    to_reverse: list[int] = []
    first = 0
    appropriations = 0
    for c in range(24):
        begin, end = starts[c], starts[c + 1]
        last = bisect_right(year.approved, end, lo=first) if c < 23 else len(year.approved)
        approved = range(first, last)
        first = last
        # Appropriations first, in their own step: the quarter's (45 % of the pool's
        # year in January, 35 % in April and July) and a top-up (追加) where the pool
        # would not cover this half-month's reservations.
        need: dict[int, int] = defaultdict(int)
        for i in approved:
            need[year.pool[i]] += year.amount[i]
        share = {0: 45, 6: 35, 12: 35}.get(c, 0)
        grants = []
        for p in pools_by_id:
            amount = annual[p] * share // 100
            if available[p] + amount < need[p]:
                amount = need[p] - available[p] + annual[p] // 20
            if amount > 0:
                appropriations += 1
                available[p] += amount
                acc = pools_by_id[p]
                grants.append(
                    Event(
                        begin + timedelta(hours=1),
                        f"appropriation:{appropriations}",
                        "appropriation",
                        [(acc.available, "debit", amount), (acc.appropriated, "credit", amount)],
                    )
                )
        await loader.write(grants)
        events: list[Event] = []
        for i in approved:
            acc = pools_by_id[year.pool[i]]
            available[year.pool[i]] -= year.amount[i]
            events.append(
                Event(
                    year.approved[i],
                    f"subsidy:{i + 1}:reserve",
                    "subsidy_reserve",
                    [
                        (acc.reserved, "debit", year.amount[i]),
                        (acc.available, "credit", year.amount[i]),
                    ],
                    subsidy=i,
                    role="reserve",
                )
            )
        # Voids of last half-month's approvals (before any could be paid).
        for i in to_void:
            acc = pools_by_id[year.pool[i]]
            available[year.pool[i]] += year.amount[i]
            when = begin + timedelta(seconds=rng.random() * (end - begin).total_seconds())
            year.voided_at[i] = when
            events.append(
                Event(
                    when,
                    f"subsidy:{i + 1}:release",
                    "subsidy_release",
                    [
                        (acc.available, "debit", year.amount[i]),
                        (acc.reserved, "credit", year.amount[i]),
                    ],
                    reversal_of=year.entry_of[(i, "reserve")],
                    subsidy=i,
                    role="release",
                )
            )
        # The payout batch of this half-month, 10:00 Beijing on the 1st or the 16th.
        batch_at = begin + timedelta(hours=2)
        due: dict[tuple[int, int], list[int]] = defaultdict(list)
        still = []
        for i in unpaid:
            if year.fate[i] == "void" and i not in year.voided_at:
                still.append(i)  # voided in the next step; never paid
            elif year.fate[i] == "void":
                continue
            elif year.approved[i] + PAYABLE_AFTER <= batch_at:
                due[(year.broker[i], year.pool[i])].append(i)
            else:
                still.append(i)
        paid_now = []
        for (broker, p), items in sorted(due.items()):
            acc = pools_by_id[p]
            gross = sum(year.amount[i] for i in items)
            lines = [(acc.paid, "debit", gross), (acc.reserved, "credit", gross)]
            netted = min(owed[(broker, p)], gross)
            if netted > 0:
                owed[(broker, p)] -= netted
                available[p] += netted
                lines += [
                    (acc.available, "debit", netted),
                    (receivable[(broker, p)], "credit", netted),
                ]
            events.append(
                Event(
                    batch_at,
                    f"payout:{c}:{broker}:{acc.source}",
                    "payout",
                    lines,
                    subsidy=items[0],
                    role="pay",
                )
            )
            for i in items:
                year.paid_at[i] = batch_at
                paid_now.append(i)
        # Reversals after payment of last half-month's payouts (after this batch, so it
        # nets only what was owed before): the broker owes it back.
        for i in to_reverse:
            acc = pools_by_id[year.pool[i]]
            key = (year.broker[i], year.pool[i])
            owed[key] += year.amount[i]
            when = batch_at + timedelta(seconds=rng.random() * (end - batch_at).total_seconds())
            year.voided_at[i] = when
            events.append(
                Event(
                    when,
                    f"subsidy:{i + 1}:receivable",
                    "subsidy_receivable",
                    [
                        (receivable[key], "debit", year.amount[i]),
                        (acc.reversed, "credit", year.amount[i]),
                    ],
                    subsidy=i,
                    role="receivable",
                )
            )
        events.sort(key=lambda e: e.when)
        await loader.write(events)
        print(f"  {begin:%Y-%m-%d}: {loader.entries:,} entries", file=sys.stderr, flush=True)
        for e in events:
            if e.role and e.subsidy is not None:
                year.entry_of[(e.subsidy, e.role)] = e.entry_id
        for (_, _), items in due.items():
            pay_entry = year.entry_of[(items[0], "pay")]
            for i in items:
                year.entry_of[(i, "pay")] = pay_entry
        to_void = [i for i in approved if year.fate[i] == "void"]
        to_reverse = [i for i in paid_now if year.fate[i] == "reverse"]
        unpaid = [*still, *approved]


async def write_subsidies(
    factory: async_sessionmaker[AsyncSession], year: Year, pools_by_id: dict[int, PoolAccounts]
) -> None:
    year_end = chunk_starts()[-1]
    rows = []
    for i in range(len(year.amount)):
        paid = year.paid_at.get(i)
        voided = year.voided_at.get(i)
        payable = year.approved[i] + PAYABLE_AFTER
        if year.fate[i] == "void" and voided is not None:
            status = "voided"
        elif year.fate[i] == "reverse" and voided is not None:
            status = "reversed"
        elif paid is not None:
            status = "paid"
        else:
            status = "payable" if payable <= year_end else "pending"
        acc = pools_by_id[year.pool[i]]
        task, rate, _ = TASKS[year.task[i]]
        rows.append(
            {
                "origin_key": f"task:{i + 1}",
                "kind": "task",
                "task_id": i + 1,
                "submission_id": i + 1,
                "task_type_code": task,
                "broker_id": year.broker[i],
                "pool_id": acc.id,
                "district_code": acc.district,
                "source": acc.source,
                "quantity": year.quantity[i],
                "rate_fen": rate,
                "amount_fen": year.amount[i],
                "status": status,
                "approved_at": year.approved[i],
                "reserved_at": year.approved[i],
                "payable_at": payable if payable <= year_end else None,
                "paid_at": paid,
                "voided_at": voided,
                "reserve_entry_id": year.entry_of.get((i, "reserve")),
                "release_entry_id": year.entry_of.get((i, "release")),
                "pay_entry_id": year.entry_of.get((i, "pay")),
                "receivable_entry_id": year.entry_of.get((i, "receivable")),
                "created_at": year.approved[i],
            }
        )
    for start in range(0, len(rows), 50_000):
        async with factory() as session:
            await begin_write(session)
            await session.execute(insert(Subsidy), rows[start : start + 50_000])
            await session.commit()


async def timed_report(
    factory: async_sessionmaker[AsyncSession], period: str, district: str | None = None
) -> tuple[Meter, reconciliation.Report]:
    async with factory() as session:
        with Meter() as meter:
            rep = await reconciliation.report(
                session, actor=SYSTEM, period=period, district_code=district
            )
    assert rep.balanced, f"{period} {district}: an identity does not hold"
    return meter, rep


async def load_year(url: str, args: Any) -> tuple[str, Meter, str]:
    """Generate and load the year; returns what was made, the load's meter and the
    busiest district."""
    engine = create_engine(url)
    factory = session_factory(engine)
    is_pg = url.startswith("postgresql")
    rng = random.Random(2026)
    with Meter() as loading:
        made, homes = await setup(factory, rng, args.brokers)
        pools_by_id = {p.id: p for p in made}
        by_district: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for p in made:
            by_district[p.district][SOURCES.index(p.source)] = p.id
        year = generate(rng, args.subsidies, homes, by_district)
        suspended = bool(args.suspend_triggers) and not is_pg
        if suspended:
            await run_sql(factory, ddl.statements("sqlite", drop=True))
        loader = Loader(factory, engine.dialect, suspended=suspended)
        await load(factory, loader, rng, year, pools_by_id)
        if suspended:
            await reinstate_triggers(factory)
        await write_subsidies(factory, year, pools_by_id)
        async with engine.connect() as conn:
            # Statistics as a running system would have them (autovacuum on
            # PostgreSQL; on SQLite, ANALYZE or PRAGMA optimize from time to time).
            if is_pg:
                await conn.exec_driver_sql(
                    f"SELECT setval('ledger_entry_id_seq', {loader.next_id - 1})"
                )
                await conn.commit()
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await auto.exec_driver_sql("VACUUM ANALYZE")
            else:
                await conn.exec_driver_sql("ANALYZE")
                await conn.commit()
    await engine.dispose()
    per_pool = Counter(year.pool)
    district = max(by_district, key=lambda d: sum(per_pool[p] for p in by_district[d]))
    made_text = (
        f"{len(made)} pools ({len(by_district)} districts × {len(SOURCES)} sources), "
        f"{args.brokers:,} brokers, {len(year.amount):,} approved subsidies "
        f"({year.fate.count('void'):,} voided, {year.fate.count('reverse'):,} reversed after "
        f"payment), {loader.entries:,} entries"
    )
    return made_text, loading, district


async def run_sql(factory: async_sessionmaker[AsyncSession], statements: list[str]) -> None:
    async with factory() as session:
        await begin_write(session)
        for statement in statements:
            await session.execute(text(statement))
        await session.commit()


async def reinstate_triggers(factory: async_sessionmaker[AsyncSession]) -> None:
    """After a load without the SQLite triggers: what they would have refused, then
    the balances from the postings (CHECK: no overdraft), then the triggers again."""
    async with factory() as session:
        bad = (
            await session.execute(
                text(
                    "SELECT entry_id FROM ledger_posting GROUP BY entry_id HAVING COUNT(*) < 2 "
                    "OR SUM(CASE side WHEN 'debit' THEN amount_fen ELSE -amount_fen END) != 0 "
                    "LIMIT 1"
                )
            )
        ).first()
        assert bad is None, f"entry {bad} does not balance"
        mixed = (
            await session.execute(
                text(
                    "SELECT p.id FROM ledger_posting p JOIN ledger_entry e ON e.id = p.entry_id "
                    "JOIN ledger_account a ON a.id = p.account_id "
                    "WHERE a.ledger != e.ledger OR p.effective_at != e.effective_at LIMIT 1"
                )
            )
        ).first()
        assert mixed is None, f"posting {mixed} leaves its entry's ledger or time"
    await run_sql(
        factory,
        [
            "UPDATE ledger_account SET balance_fen = COALESCE((SELECT SUM(CASE WHEN p.side = "
            "ledger_account.normal_side THEN p.amount_fen ELSE -p.amount_fen END) "
            "FROM ledger_posting p WHERE p.account_id = ledger_account.id), 0)",
            *ddl.statements("sqlite"),
            *ddl.APPLY_SQLITE_0012A,
        ],
    )


async def busiest_district(factory: async_sessionmaker[AsyncSession]) -> str:
    """The district whose pools reserved most often (read from the ledger, so a
    partly loaded year works too)."""
    async with factory() as session:
        row = (
            await session.execute(
                select(col(LedgerAccount.district_code), func.count())
                .select_from(LedgerPosting)
                .join(LedgerAccount, col(LedgerAccount.id) == col(LedgerPosting.account_id))
                .where(col(LedgerAccount.kind) == "pool_reserved")
                .group_by(col(LedgerAccount.district_code))
                .order_by(func.count().desc())
                .limit(1)
            )
        ).first()
    assert row is not None, "no postings: load the year first"
    return str(row[0])


async def main() -> None:
    args = parse(
        __doc__ or "", flags=("reuse", "suspend_triggers"), subsidies=1_000_000, brokers=12_000
    )
    if args.reuse:
        assert args.database_url, "--reuse needs --database-url"
        url = args.database_url
        reused = session_factory(create_engine(url))
        district = await busiest_district(reused)
        async with reused() as session:
            count, last = (
                await session.execute(select(func.count(), func.max(col(LedgerEntry.effective_at))))
            ).one()
        made_text = f"reused from an earlier load: {count:,} entries up to {last:%Y-%m-%d}"
        loading_text = ""
    else:
        url = await fresh_database(args.database_url, with_regions=True)
        made_text, loading, district = await load_year(url, args)
        how = (
            "with the ledger triggers suspended, then checked and reinstalled (see the "
            "script's docstring)"
            if args.suspend_triggers and not url.startswith("postgresql")
            else "through the ledger's triggers"
        )
        loading_text = (
            f"; loaded {how} in {loading.wall:.0f} s ({loading.cpu:.0f} s CPU, "
            f"load average {loading.load:.2f})"
        )
    engine = create_engine(url)
    factory = session_factory(engine)
    async with factory() as session:
        total = (
            await session.execute(select(func.count()).select_from(LedgerPosting))
        ).scalar_one()
    city, city_rep = await timed_report(factory, "2026")
    again, _ = await timed_report(factory, "2026")
    one, one_rep = await timed_report(factory, "2026", district)
    june, _ = await timed_report(factory, "2026-06")
    await engine.dispose()
    paid = sum(ln.paid_fen for ln in city_rep.lines)
    record(
        "Billing: reconciliation, a year for Chongqing",
        [
            f"database: {db_name(url)}",
            f"generated: {made_text}, {total:,} postings{loading_text}",
            f"year 2026, city-wide ({len(city_rep.lines)} pools, every identity holds, "
            f"¥{paid / 100:,.0f} paid): {city} (target < 10 s); again (warm): {again}",
            f"year 2026, one district ({district}, {len(one_rep.lines)} pools): {one}",
            f"June 2026, city-wide: {june}",
            "CPU is this process's time (the PostgreSQL server's is not in it); load average "
            "is the 1-minute figure when each run ended, on a machine shared with other work",
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
