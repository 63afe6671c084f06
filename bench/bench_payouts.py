"""A payout batch for many brokers: build (claim payable subsidies, net receivables),
approve, execute online (a commit per 200 lines) and write the bank file.
Target: 10,000 brokers < 30 s.

    python bench/bench_payouts.py [--database-url URL] [--brokers 10000]
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select
from sqlmodel import col

from bench.billing_common import db_name, fresh_database, parse
from bench.common import cpu_seconds, load_average, record
from billing import payouts, pools
from billing.config import BillingConfig
from billing.ledger import service as ledger
from billing.ledger.models import Ledger, Side
from billing.models import BrokerBankAccount, Subsidy
from marketplace.access import Actor
from marketplace.accounts.models import User
from marketplace.brokers.models import Broker
from marketplace.crypto import DataCipher, decode_key, new_data_key
from marketplace.db import begin_write, create_engine, session_factory, unit_of_work
from marketplace.regions.models import Region

DISTRICT = "500238"


async def prepare(factory, cipher: DataCipher, brokers: int) -> tuple[Actor, Actor]:  # type: ignore[no-untyped-def]
    async with unit_of_work(factory) as session:
        villages = list(
            (
                await session.execute(
                    select(col(Region.code)).where(
                        col(Region.level) == "village", col(Region.code).startswith(DISTRICT)
                    )
                )
            ).scalars()
        )
        now = datetime.now(UTC)
        ids = []
        for n in (1, 2):
            user = User(
                username=f"bench_fin_{n}", display_name="财务", role="finance",
                region_code=DISTRICT, password_hash="x",  # noqa: S106  (never logs in)
            )  # fmt: skip
            session.add(user)
            await session.flush()
            ids.append(user.id)
        await session.execute(
            insert(Broker),
            [
                {"name": f"经纪人{n}", "village_code": villages[n % len(villages)], "status": "active",
                 "created_at": now, "key_broker": False, "welfare_post": False,
                 "welfare_post_task_types": []}
                for n in range(brokers)
            ],
        )  # fmt: skip
        broker_ids = list((await session.execute(select(col(Broker.id)))).scalars())
        await session.execute(
            insert(BrokerBankAccount),
            [
                {"broker_id": b, "account_name": f"经纪人{b}", "bank_name": "重庆农商行",
                 "account_no_enc": cipher.encrypt(f"62210000{b:010d}", context=f"bank:{b}"),
                 "account_no_last4": f"{b:04d}"[-4:], "updated_at": now}
                for b in broker_ids
            ],
        )  # fmt: skip
        pool = await pools.ensure_pool(session, DISTRICT, "employment_subsidy")
        await ledger.post(
            session, key="fund", ledger=Ledger.subsidy, kind="appropriation",
            lines=[ledger.Line(pool.available_account_id, Side.debit, 10**12),
                   ledger.Line(pool.appropriated_account_id, Side.credit, 10**12)],
        )  # fmt: skip
        approved = datetime(2026, 3, 5, tzinfo=UTC)
        for start in range(0, len(broker_ids), 1000):
            chunk = broker_ids[start : start + 1000]
            entry_ids = await ledger.post_many(
                session,
                [
                    ledger.NewEntry(
                        key=f"subsidy:{b}:reserve", ledger=Ledger.subsidy, kind="subsidy_reserve",
                        lines=[ledger.Line(pool.reserved_account_id, Side.debit, 5_000),
                               ledger.Line(pool.available_account_id, Side.credit, 5_000)],
                    )
                    for b in chunk
                ],
            )  # fmt: skip
            await session.execute(
                insert(Subsidy),
                [
                    {"origin_key": f"task:{b}", "kind": "task", "broker_id": b, "pool_id": pool.id,
                     "district_code": DISTRICT, "source": "employment_subsidy", "quantity": 1,
                     "rate_fen": 5_000, "amount_fen": 5_000, "status": "payable",
                     "approved_at": approved, "reserve_entry_id": e, "created_at": now}
                    for b, e in zip(chunk, entry_ids, strict=True)
                ],
            )  # fmt: skip
    maker = Actor(user_id=ids[0], username="m", role="finance", region_code=DISTRICT)
    checker = Actor(user_id=ids[1], username="c", role="finance", region_code=DISTRICT)
    return maker, checker


async def main() -> None:
    args = parse(__doc__ or "", brokers=10_000)
    url = await fresh_database(args.database_url, with_regions=True)
    engine = create_engine(url)
    factory = session_factory(engine)
    cipher = DataCipher(decode_key(new_data_key()))
    maker, checker = await prepare(factory, cipher, args.brokers)
    started = time.perf_counter()
    cpu_started = cpu_seconds()
    async with unit_of_work(factory) as session:
        batch = await payouts.build(
            session,
            actor=maker,
            data=payouts.BatchIn(district_code=DISTRICT, period="2026-03"),
            key="b",
        )
        batch_id = batch.id or 0
        await payouts.approve(session, actor=checker, batch_id=batch_id)
    built = time.perf_counter() - started
    lines = 0
    async with factory() as session:
        await begin_write(session)

        async def commit() -> None:  # after every chunk of 200 lines, as the CLI does
            nonlocal lines
            lines += 1
            await session.commit()
            await begin_write(session)

        done = await payouts.execute(
            session,
            actor=checker,
            batch_id=batch_id,
            data=payouts.ExecuteIn(mode="online"),
            after_line=commit,
        )
        await session.commit()
        await begin_write(session)
        text = await payouts.bank_file(session, actor=checker, batch_id=batch_id, cipher=cipher)
        await session.commit()
    total = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    await engine.dispose()
    assert done.status == "executed"
    record(
        "Billing: payout batch",
        [
            f"database: {db_name(url)}",
            f"{args.brokers:,} brokers, one payable subsidy each: build + approve {built:.1f} s; "
            f"build, approve, execute online (a commit per 200 lines) and bank file "
            f"({len(text.splitlines()) - 1:,} rows) {total:.1f} s (target < 30 s)",
            f"CPU of this process for the whole: {cpu:.1f} s; load average {load_average()}",
        ],
    )
    _ = BillingConfig


if __name__ == "__main__":
    asyncio.run(main())
