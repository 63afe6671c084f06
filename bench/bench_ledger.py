"""Ledger throughput: balanced two-line entries, with the idempotency check, the
ledger check, the database's closing trigger and the no-overdraft CHECK included.
Target ≥ 2,000 entries/s.

Three ways in:

- bulk, ``ledger.post_many``: 500 entries a call, one commit each (payout execution);
- single, ``ledger.post`` one entry a call, 100 calls a transaction (the call's own
  cost: one round trip to the database);
- single, one entry a transaction (what the outbox dispatcher does per event): this
  one also pays a commit per entry, which on PostgreSQL waits for the WAL flush
  (synchronous_commit), on SQLite (WAL, synchronous=NORMAL) does not.

    python bench/bench_ledger.py [--database-url URL] [--entries 20000] [--single 2000]
        [--committed 500]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.billing_common import Meter, db_name, fresh_database, parse
from bench.common import record
from billing.ledger import service as ledger
from billing.ledger.models import Ledger, Side
from marketplace.db import begin_write, create_engine, session_factory, unit_of_work


def lines(pool: int, reserved: int, n: int) -> list[ledger.Line]:
    return [
        ledger.Line(reserved, Side.debit, 100 + n % 900),
        ledger.Line(pool, Side.credit, 100 + n % 900),
    ]


async def accounts(factory: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with unit_of_work(factory) as session:
        ids = []
        for code, side, guard in (
            ("pool", Side.debit, True),
            ("source", Side.credit, False),
            ("reserved", Side.debit, True),
        ):
            account = await ledger.ensure_account(
                session, code=f"b:{code}", ledger=Ledger.subsidy, kind=code, name=code,
                normal_side=side, no_overdraft=guard,
            )  # fmt: skip
            ids.append(account.id or 0)
        pool, source, reserved = ids
        await ledger.post(
            session, key="fund", ledger=Ledger.subsidy, kind="appropriation",
            lines=[ledger.Line(pool, Side.debit, 10**12), ledger.Line(source, Side.credit, 10**12)],
        )  # fmt: skip
    return pool, reserved


async def single(
    factory: async_sessionmaker[AsyncSession], pool: int, reserved: int, *, count: int, per_tx: int
) -> Meter:
    with Meter() as meter:
        async with factory() as session:
            for start in range(0, count, per_tx):
                await begin_write(session)
                for n in range(start, min(start + per_tx, count)):
                    await ledger.post(
                        session, key=f"s{per_tx}:{n}", ledger=Ledger.subsidy,
                        kind="subsidy_reserve", lines=lines(pool, reserved, n),
                    )  # fmt: skip
                await session.commit()
    return meter


async def bulk(
    factory: async_sessionmaker[AsyncSession], pool: int, reserved: int, *, count: int
) -> Meter:
    with Meter() as meter:
        async with factory() as session:
            for start in range(0, count, 500):
                await begin_write(session)
                await ledger.post_many(
                    session,
                    [
                        ledger.NewEntry(
                            key=f"e{n}",
                            ledger=Ledger.subsidy,
                            kind="subsidy_reserve",
                            lines=lines(pool, reserved, n),
                        )
                        for n in range(start, min(start + 500, count))
                    ],
                )
                await session.commit()
    return meter


async def main() -> None:
    args = parse(__doc__ or "", entries=20_000, single=2_000, committed=500)
    url = await fresh_database(args.database_url)
    engine = create_engine(url)
    factory = session_factory(engine)
    pool, reserved = await accounts(factory)
    one = await single(factory, pool, reserved, count=args.single, per_tx=100)
    each = await single(factory, pool, reserved, count=args.committed, per_tx=1)
    many = await bulk(factory, pool, reserved, count=args.entries)
    await engine.dispose()
    record(
        "Billing: ledger entries",
        [
            f"database: {db_name(url)}",
            f"bulk, ledger.post_many: {args.entries:,} entries (500 a call, one commit each): "
            f"{args.entries / many.wall:,.0f} entries/s (target ≥ 2,000); {many}",
            f"single, ledger.post, 100 a transaction: {args.single:,} entries: "
            f"{args.single / one.wall:,.0f} entries/s (target ≥ 2,000); {one}",
            f"single, ledger.post, one transaction (and commit) per entry, as the outbox "
            f"dispatcher does: {args.committed:,} entries: "
            f"{args.committed / each.wall:,.0f} entries/s; {each}",
            "CPU is this process's (client) time; load average is the 1-minute figure "
            "when each run ended, on a machine shared with other work",
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
