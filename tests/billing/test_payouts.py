"""Payout batches: build, review, second-user approval, execution that survives being
killed anywhere, netting of receivables, the bank file."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import random
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from billing import earnings, payouts, subsidies
from billing.ledger.models import LedgerEntry
from billing.models import BrokerBankAccount, PayoutBatch, PayoutLine, Subsidy
from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.errors import Conflict, Forbidden, Invalid
from tests.billing.conftest import (
    YUZHONG,
    approved_payload,
    billing_registry,
    emit_events,
    make_broker,
    reversed_payload,
)
from tests.billing.helpers import check_ledger_invariants, finance, fund

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("employment_subsidy", "migrant_worker_services")


async def _finance_users(
    factory: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> tuple[int, int]:
    ids = []
    async with unit_of_work(factory) as session:
        for n in (1, 2):
            user, _ = await accounts.create_user(
                session=session,
                actor=SYSTEM,
                cipher=cipher,
                data=UserCreate(
                    username=f"fin_payout_{n}",
                    display_name="财务",
                    role="finance",
                    region_code=YUZHONG,
                    password="correct-horse-battery-9",
                ),
            )
            assert user.id is not None
            ids.append(user.id)
    return ids[0], ids[1]


async def _scene(
    factory: async_sessionmaker[AsyncSession], cipher: DataCipher, brokers: int
) -> tuple[list[int], list[dict[str, object]]]:
    maker = finance(None)
    for source in SOURCES:
        await fund(factory, YUZHONG, source, 10_000_000, key=f"fund-{source}", actor=maker)
    made = [await make_broker(factory, name=f"经纪人{n}") for n in range(brokers)]
    approved_at = datetime(2026, 1, 10, tzinfo=UTC)
    payloads = [
        approved_payload(
            b, amount_fen=1_000 * (i + 1) + 50 * k, source=SOURCES[k % 2], approved_at=approved_at
        )
        for i, b in enumerate(made)
        for k in range(3)
    ]
    await emit_events(factory, *(("task.approved", p) for p in payloads))
    await drain(factory, billing_registry())
    async with unit_of_work(factory) as session:
        await subsidies.promote_payable(session, now=approved_at + timedelta(days=40))
        for b in made:
            session.add(
                BrokerBankAccount(
                    broker_id=b,
                    account_name=f"经纪人{b}",
                    bank_name="重庆农村商业银行",
                    account_no_enc=cipher.encrypt(f"62210000{b:010d}", context=f"bank:{b}"),
                    account_no_last4=f"{b:010d}"[-4:],
                )
            )
    return made, payloads


async def test_build_review_approve_and_execute_with_netting(
    factory: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    maker, checker = await _finance_users(factory, cipher)
    brokers, payloads = await _scene(factory, cipher, 2)
    async with unit_of_work(factory) as session:
        with pytest.raises(Invalid, match="Idempotency-Key"):
            await payouts.build(
                session,
                actor=finance(maker),
                data=payouts.BatchIn(district_code=YUZHONG, period="2026-01"),
                key=None,
            )
        batch = await payouts.build(
            session,
            actor=finance(maker),
            data=payouts.BatchIn(district_code=YUZHONG, period="2026-01"),
            key="b1",
        )
        again = await payouts.build(
            session,
            actor=finance(maker),
            data=payouts.BatchIn(district_code=YUZHONG, period="2026-01"),
            key="b1",
        )
        assert again.id == batch.id
        assert batch.id is not None
        with pytest.raises(Forbidden, match="另一位"):
            await payouts.approve(session, actor=finance(maker), batch_id=batch.id)
        with pytest.raises(Conflict, match="审核"):
            await payouts.execute(
                session,
                actor=finance(checker),
                batch_id=batch.id,
                data=payouts.ExecuteIn(mode="online"),
            )
        await payouts.approve(session, actor=finance(checker), batch_id=batch.id)
        review = await payouts.review(session, actor=finance(checker), batch_id=batch.id)
    # Broker 0: 1000+1050+1100 over two sources; broker 1: 2000+2050+2100.
    assert review.totals_by_source == {
        "employment_subsidy": 1_000 + 1_100 + 2_000 + 2_100,
        "migrant_worker_services": 1_050 + 2_050,
    }
    assert [ln.gross_fen for ln in review.lines or []] == [3_150, 6_150]
    async with unit_of_work(factory) as session:
        await payouts.execute(
            session,
            actor=finance(checker),
            batch_id=batch.id,
            data=payouts.ExecuteIn(mode="online"),
        )
        text = await payouts.bank_file(
            session, actor=finance(checker), batch_id=batch.id, cipher=cipher
        )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["户名", "账号", "金额", "摘要"]
    assert [r[2] for r in rows[1:]] == ["31.50", "61.50"]
    assert rows[1][1] == f"62210000{brokers[0]:010d}"
    # A paid subsidy reversed: the broker owes it, and the next payout nets it.
    await emit_events(factory, ("task.reversed", reversed_payload(payloads[0])))
    newer = approved_payload(
        brokers[0], amount_fen=4_000, approved_at=datetime(2026, 2, 3, tzinfo=UTC)
    )
    await emit_events(factory, ("task.approved", newer))
    await drain(factory, billing_registry())
    async with unit_of_work(factory) as session:
        await subsidies.promote_payable(session, now=datetime(2026, 4, 1, tzinfo=UTC))
        second = await payouts.build(
            session,
            actor=finance(maker),
            data=payouts.BatchIn(district_code=YUZHONG, period="2026-02"),
            key="b2",
        )
        assert second.id is not None
        assert (second.gross_fen, second.netted_fen, second.net_fen) == (4_000, 1_000, 3_000)
        await payouts.approve(session, actor=finance(checker), batch_id=second.id)
        await payouts.execute(
            session,
            actor=finance(checker),
            batch_id=second.id,
            data=payouts.ExecuteIn(mode="offline", references={}),
        )
        line = (
            await session.execute(select(PayoutLine).where(col(PayoutLine.batch_id) == second.id))
        ).scalar_one()
        assert line.status == "pending"  # offline: paid only when its reference is recorded
        assert line.id is not None
        done = await payouts.execute(
            session,
            actor=finance(checker),
            batch_id=second.id,
            data=payouts.ExecuteIn(mode="offline", references={line.id: "HD20260305001"}),
        )
        assert done.status == "executed"
        receivable = await payouts._receivable_balance(
            session, brokers[0], YUZHONG, "employment_subsidy"
        )
        assert receivable == 0
        await check_ledger_invariants(session)


async def test_execution_killed_anywhere_and_rerun_pays_everyone_once(
    factory: async_sessionmaker[AsyncSession], cipher: DataCipher, db_url: str
) -> None:
    maker, checker = await _finance_users(factory, cipher)
    await _scene(factory, cipher, 5)
    async with unit_of_work(factory) as session:
        batch = await payouts.build(
            session,
            actor=finance(maker),
            data=payouts.BatchIn(district_code=YUZHONG, period="2026-01"),
            key="k",
        )
        assert batch.id is not None
        await payouts.approve(session, actor=finance(checker), batch_id=batch.id)
        expected_gross = batch.gross_fen
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills = 0
    for attempt in range(30):
        # Random statement numbers: early ones die in the status change, later ones
        # inside a line's entries or right after a commit. The last run never dies.
        kill_at = rng.randint(1, 30) if attempt < 8 else 0
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.billing.payout_child",
            db_url,
            str(batch.id),
            str(kill_at),
            str(checker),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
        if proc.returncode == -signal.SIGKILL:
            kills += 1
            continue
        assert proc.returncode == 0, stderr.decode()[-2000:]
        if kill_at == 0:
            break
    assert kills >= 4
    async with factory() as session:
        lines = list(
            (
                await session.execute(
                    select(PayoutLine).where(col(PayoutLine.batch_id) == batch.id)
                )
            ).scalars()
        )
        assert {ln.status for ln in lines} == {"paid"}
        paid = list(
            (
                await session.execute(select(Subsidy).where(col(Subsidy.batch_id) == batch.id))
            ).scalars()
        )
        assert {s.status for s in paid} == {"paid"}
        entries = (
            await session.execute(
                select(func.count())
                .select_from(LedgerEntry)
                .where(col(LedgerEntry.kind) == "payout")
            )
        ).scalar_one()
        assert entries == len(lines) * len(SOURCES)  # one per line and source, never two
        paid_total = 0
        for source in SOURCES:
            from billing.ledger import service as ledger
            from billing.pools import find_pool

            pool = await find_pool(session, YUZHONG, source)
            assert pool is not None
            paid_total += await ledger.current_balance(session, pool.paid_account_id)
        assert paid_total == expected_gross
        await check_ledger_invariants(session)


async def _pay(
    factory: async_sessionmaker[AsyncSession], maker: int, checker: int, period: str
) -> PayoutBatch:
    async with unit_of_work(factory) as session:
        batch = await payouts.build(
            session,
            actor=finance(maker),
            data=payouts.BatchIn(district_code=YUZHONG, period=period),
            key=f"pay-{period}",
        )
        assert batch.id is not None
        await payouts.approve(session, actor=finance(checker), batch_id=batch.id)
        return await payouts.execute(
            session,
            actor=finance(checker),
            batch_id=batch.id,
            data=payouts.ExecuteIn(mode="online"),
        )


async def test_the_statement_stops_showing_money_owed_back_once_a_payout_netted_it(
    factory: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    """A paid subsidy reversed is owed back until the next payout nets it; the
    broker's statement said "owed back" for ever, since the subsidy stays reversed."""
    maker, checker = await _finance_users(factory, cipher)
    (broker,), payloads = await _scene(factory, cipher, 1)
    await _pay(factory, maker, checker, "2026-01")
    await emit_events(factory, ("task.reversed", reversed_payload(payloads[0])))
    await drain(factory, billing_registry())

    async def statement() -> earnings.Earnings:
        async with factory() as session:
            return await earnings.statement(session, actor=finance(checker), broker_id=broker)

    owed = int(str(payloads[0]["amount_fen"]))
    assert (await statement()).subsidy_owed_back_fen == owed
    # A newer subsidy smaller than the debt: the payout nets what it can.
    small = approved_payload(broker, amount_fen=400, approved_at=datetime(2026, 2, 3, tzinfo=UTC))
    await emit_events(factory, ("task.approved", small))
    await drain(factory, billing_registry())
    async with unit_of_work(factory) as session:
        await subsidies.promote_payable(session, now=datetime(2026, 4, 1, tzinfo=UTC))
    second = await _pay(factory, maker, checker, "2026-02")
    assert (second.netted_fen, second.net_fen) == (400, 0)
    assert (await statement()).subsidy_owed_back_fen == owed - 400
    bigger = approved_payload(
        broker, amount_fen=5_000, approved_at=datetime(2026, 3, 3, tzinfo=UTC)
    )
    await emit_events(factory, ("task.approved", bigger))
    await drain(factory, billing_registry())
    async with unit_of_work(factory) as session:
        await subsidies.promote_payable(session, now=datetime(2026, 5, 1, tzinfo=UTC))
    third = await _pay(factory, maker, checker, "2026-03")
    assert third.netted_fen == owed - 400
    assert (await statement()).subsidy_owed_back_fen == 0
