"""Demo billing data for ``laowu demo``: funded pools in the demo districts (one left
short, so subsidies wait for funds), half a year of task subsidies in every state,
a public-welfare post, paid batches (offline, with references), bank accounts, and a
few market fees booked as Stripe's webhook would. Idempotent: a re-run adds nothing."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from billing import fee_webhooks, payouts, pools, subsidies
from billing.config import BillingConfig
from billing.models import BrokerBankAccount, MarketFee, PayoutBatch, Subsidy
from marketplace.access import Actor
from marketplace.accounts.models import User
from marketplace.brokers.models import Broker
from marketplace.crypto import DataCipher

SOURCES = ("employment_subsidy", "migrant_worker_services")
# Service items of the catalogue (marketplace/tasks/catalogue.py): code, rate, source,
# so the broker's statement names them as the task pages do.
TASK_TYPES = (
    ("rights_protection", 3_000, "migrant_worker_services"),
    ("social_security_certification", 300, "employment_subsidy"),
    ("social_security_enrolment", 2_000, "employment_subsidy"),
    ("hr_database_update", 500, "migrant_worker_services"),
)
WELFARE_POST_COVERS = ["social_security_certification"]  # covered by the post
MONTHS = ("2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11")
PAID_MONTHS = ("2026-06", "2026-07", "2026-08")
CONFIG = BillingConfig()


async def _actor(session: AsyncSession, username: str) -> Actor | None:
    user = (
        await session.execute(select(User).where(col(User.username) == username))
    ).scalar_one_or_none()
    if user is None:
        return None
    return Actor(
        user_id=user.id, username=user.username, role=user.role, region_code=user.region_code
    )


async def demo_billing(
    session: AsyncSession, cipher: DataCipher, *, seed: int, districts: tuple[str, ...]
) -> None:
    checker = await _actor(session, "city_finance")
    for n, district in enumerate(districts):
        key = {"500103": "yuzhong", "500238": "wuxi", "500101": "wanzhou"}.get(district, district)
        maker = await _actor(session, f"{key}_finance")
        if maker is None or checker is None:
            continue
        rng = random.Random(f"{seed}:billing:{district}")  # noqa: S311  (demo data)
        brokers = list(
            (
                await session.execute(
                    select(Broker)
                    .where(col(Broker.village_code).startswith(district))
                    .order_by(col(Broker.id))
                    .limit(8)
                )
            ).scalars()
        )
        if not brokers:
            continue
        await _fund(session, maker, district, n)
        await _welfare_post(session, brokers[-1])
        await _bank_accounts(session, cipher, brokers[:8])
        await _subsidies(session, brokers, district, rng)
        await _batches(session, maker, checker, district)
        await _fees(session, brokers[:3], n)


async def _fund(session: AsyncSession, maker: Actor, district: str, n: int) -> None:
    for s, source in enumerate(SOURCES):
        pool = await pools.ensure_pool(session, district, source)
        assert pool.id is not None
        # 巫溪's migrant-worker pool is left short: its later subsidies wait for funds.
        amounts = [800_000, 600_000] if (n, s) != (1, 1) else [150_000]
        for i, amount in enumerate(amounts):
            await pools.appropriate(
                session,
                actor=maker,
                pool_id=pool.id,
                data=pools.AppropriationIn(
                    amount_fen=amount,
                    document_no=f"渝人社财〔2026〕{100 + 10 * n + 2 * s + i}号",
                    date=date(2026, 5 + 3 * i, 20),
                    note="演示拨款",
                ),
                key=f"demo-approp-{district}-{source}-{i}",
                config=CONFIG,
            )


async def _welfare_post(session: AsyncSession, broker: Broker) -> None:
    if not broker.welfare_post:
        broker.welfare_post = True
        broker.welfare_post_task_types = WELFARE_POST_COVERS
        broker.welfare_post_monthly_fen = 180_000
        session.add(broker)
        await session.flush()


async def _bank_accounts(session: AsyncSession, cipher: DataCipher, brokers: list[Broker]) -> None:
    for b in brokers:
        assert b.id is not None
        exists = (
            await session.execute(
                select(col(BrokerBankAccount.id)).where(col(BrokerBankAccount.broker_id) == b.id)
            )
        ).first()
        if exists is None:
            number = f"6221{b.id:014d}"
            session.add(
                BrokerBankAccount(
                    broker_id=b.id,
                    account_name=b.name,
                    bank_name="重庆农村商业银行",
                    account_no_enc=cipher.encrypt(number, context=f"bank:{b.id}"),
                    account_no_last4=number[-4:],
                )
            )
    await session.flush()


async def _subsidies(
    session: AsyncSession, brokers: list[Broker], district: str, rng: random.Random
) -> None:
    submission = int(district) * 1000
    approved: list[dict[str, Any]] = []
    for month in MONTHS:
        year, mon = (int(x) for x in month.split("-"))
        for b in brokers:
            for _ in range(rng.randint(1, 2)):
                submission += 1
                code, rate, source = rng.choice(TASK_TYPES)
                quantity = rng.randint(1, 6)
                when = datetime(year, mon, rng.randint(1, 27), 3, tzinfo=UTC)
                payload: dict[str, Any] = {
                    "task_id": submission - int(district) * 1000,
                    "submission_id": submission,
                    "broker_id": b.id,
                    "task_type_code": code,
                    "task_type_version": 1,
                    "district_code": district,
                    "funding_source": source,
                    "approved_quantity": quantity,
                    "rate_fen": rate,
                    "amount_fen": quantity * rate,
                    "approved_at": when.isoformat(),
                }
                await subsidies.accrue(session, payload, event_id=None)
                approved.append(payload)
        await subsidies.book_welfare_posts(session, period=month)
    # Spot checks failed on a few, before payment (voided)…
    for payload in approved[5:40:9]:
        await subsidies.reverse_task(
            session, {**payload, "reason": "抽查发现服务记录不实", "spot_check_id": 1}
        )
    # …then everything older than the payable window is payable.
    await subsidies.promote_payable(session, now=datetime(2026, 10, 15, tzinfo=UTC), config=CONFIG)


async def _batches(session: AsyncSession, maker: Actor, checker: Actor, district: str) -> None:
    for i, month in enumerate(PAID_MONTHS):
        done = (
            await session.execute(
                select(col(PayoutBatch.id)).where(
                    col(PayoutBatch.district_code) == district, col(PayoutBatch.period) == month
                )
            )
        ).first()
        if done is not None:
            continue
        batch = await payouts.build(
            session,
            actor=maker,
            data=payouts.BatchIn(district_code=district, period=month),
            key=f"demo-batch-{district}-{month}",
        )
        assert batch.id is not None
        await payouts.approve(session, actor=checker, batch_id=batch.id)
        lines = await payouts.lines_of(session, batch.id)
        await payouts.execute(
            session,
            actor=maker,
            batch_id=batch.id,
            data=payouts.ExecuteIn(
                mode="offline",
                references={ln.id or 0: f"HD{month.replace('-', '')}{ln.id:05d}" for ln in lines},
            ),
        )
        if i == 0:
            # A paid subsidy found false afterwards: a receivable the next batch nets.
            paid = (
                await session.execute(
                    select(Subsidy)
                    .where(col(Subsidy.batch_id) == batch.id, col(Subsidy.kind) == "task")
                    .order_by(col(Subsidy.id))
                    .limit(1)
                )
            ).scalar_one_or_none()
            if paid is not None:
                await subsidies.void_or_recover(session, paid, reason="事后核查：服务对象重复申报")


async def _fees(session: AsyncSession, brokers: list[Broker], n: int) -> None:
    for i, b in enumerate(brokers):
        placement = 9000 + 10 * n + i
        if (
            await session.execute(
                select(col(MarketFee.id)).where(col(MarketFee.placement_id) == placement)
            )
        ).first():
            continue
        fee = MarketFee(
            placement_id=placement,
            job_id=700 + placement % 100,
            organization_id=1,
            broker_id=b.id,
            amount_fen=[30_000, 45_000, 24_000][i % 3],
            status="processing",
            payment_intent_id=f"pi_demo_{placement}",
        )
        session.add(fee)
        await session.flush()
        # Booked exactly as the webhook would book it.
        await fee_webhooks.handle_event(
            session,
            event={
                "id": f"evt_demo_{placement}",
                "type": "payment_intent.succeeded",
                "created": int((datetime(2026, 9, 1, tzinfo=UTC) + timedelta(days=i)).timestamp()),
                "data": {
                    "object": {
                        "id": f"pi_demo_{placement}",
                        "amount": fee.amount_fen,
                        "amount_received": fee.amount_fen,
                        "latest_charge": f"ch_demo_{placement}",
                        "metadata": {"placement_id": str(placement)},
                    }
                },
            },
            config=CONFIG,
        )
