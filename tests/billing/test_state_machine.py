"""A Hypothesis state machine over the ledger and the fund-pool rules.

Steps: appropriate, approve tasks (one at a time or several concurrently), fail a
spot check (reversal before payment), reverse after payment, let time pass (payable),
pay (build, approve, execute a batch), replay events and entries. After every step:
debits equal credits, no pool or reservation below zero, every balance equals the sum
of its postings, no posting changed, the pool identity holds and the awaiting-funds
queue is served in order. SQLite (the rules are the same on PostgreSQL; the database
guards are tested on both in test_ledger.py and test_concurrency.py).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from billing import payouts, pools, subsidies
from billing.ledger import service as ledger
from billing.ledger.models import LedgerAccount, LedgerPosting
from billing.models import BatchStatus, FundPool, PayoutBatch, Subsidy, SubsidyStatus
from marketplace.access import SYSTEM
from marketplace.brokers.models import Broker
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.errors import Invalid
from marketplace.events import OutboxEvent, emit
from tests.billing.conftest import YUZHONG, approved_payload, first_village, reversed_payload
from tests.billing.helpers import CONFIG, check_ledger_invariants

T = TypeVar("T")
SOURCES = ("employment_subsidy", "migrant_worker_services")
START = datetime(2026, 1, 5, tzinfo=UTC)


class PoolMachine(RuleBasedStateMachine):
    template: Path
    workdir: Path

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.n = getattr(PoolMachine, "_runs", 0) + 1
        PoolMachine._runs = self.n  # type: ignore[attr-defined]
        path = self.workdir / f"machine{self.n}.db"
        shutil.copyfile(self.template, path)
        self.engine: AsyncEngine = create_engine(f"sqlite+aiosqlite:///{path}")
        self.factory = session_factory(self.engine)
        self.now = START
        self.events: list[int] = []  # outbox ids of every event handled
        self.approved: list[dict[str, Any]] = []
        self.snapshot: dict[int, tuple[int, int, str, int]] = {}
        self.keys = 0
        self.brokers = self.run(self._setup())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def _setup(self) -> list[int]:
        made = []
        async with unit_of_work(self.factory) as session:
            village = await first_village(session, YUZHONG)
            for name in ("甲", "乙", "丙"):
                broker = Broker(name=name, village_code=village)
                session.add(broker)
                await session.flush()
                assert broker.id is not None
                made.append(broker.id)
            for source in SOURCES:
                await pools.ensure_pool(session, YUZHONG, source)
        return made

    def teardown(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()

    async def _handle(self, name: str, payload: dict[str, Any]) -> None:
        async with unit_of_work(self.factory) as session:
            event = await emit(session, name, payload)
            assert event.id is not None
            self.events.append(event.id)
            handler = subsidies.HANDLERS[name]
            try:
                async with session.begin_nested():
                    await handler(session, event)
            except subsidies.NotYet:
                pass  # the outbox would retry later

    # --- rules ---------------------------------------------------------------------

    @rule(source=st.sampled_from(SOURCES), amount=st.integers(1, 30_000))
    def appropriate(self, source: str, amount: int) -> None:
        self.keys += 1

        async def go() -> None:
            async with unit_of_work(self.factory) as session:
                pool = await pools.find_pool(session, YUZHONG, source)
                assert pool is not None
                assert pool.id is not None
                await pools.appropriate(
                    session,
                    actor=SYSTEM,
                    pool_id=pool.id,
                    data=pools.AppropriationIn(
                        amount_fen=amount, document_no="文号", date=START.date()
                    ),
                    key=f"m{self.keys}",
                    config=CONFIG,
                )

        self.run(go())

    @rule(broker=st.integers(0, 2), source=st.sampled_from(SOURCES), amount=st.integers(0, 12_000))
    def approve(self, broker: int, source: str, amount: int) -> None:
        self.now += timedelta(hours=1)
        payload = approved_payload(
            self.brokers[broker], amount_fen=amount, source=source, approved_at=self.now
        )
        self.approved.append(payload)
        self.run(self._handle("task.approved", payload))

    @rule(amounts=st.lists(st.integers(1, 9_000), min_size=2, max_size=5))
    def concurrent_claims(self, amounts: list[int]) -> None:
        self.now += timedelta(hours=1)
        payloads = [
            approved_payload(self.brokers[i % 3], amount_fen=a, approved_at=self.now)
            for i, a in enumerate(amounts)
        ]
        self.approved.extend(payloads)

        async def go() -> None:
            await asyncio.gather(*(self._handle("task.approved", p) for p in payloads))

        self.run(go())

    def _with_status(self, *states: str) -> list[dict[str, Any]]:
        async def statuses() -> dict[int, str]:
            async with self.factory() as session:
                rows = await session.execute(
                    select(col(Subsidy.submission_id), col(Subsidy.status))
                )
                return {int(r[0] or 0): str(r[1]) for r in rows.all()}

        found = self.run(statuses())
        return [p for p in self.approved if found.get(p["submission_id"]) in states]

    @rule(data=st.data())
    def spot_check_fails(self, data: st.DataObject) -> None:
        candidates = self._with_status("awaiting_funds", "pending", "payable")
        if candidates:
            target = data.draw(st.sampled_from(candidates))
            self.run(self._handle("task.reversed", reversed_payload(target)))

    @rule(data=st.data())
    def reverse_after_payment(self, data: st.DataObject) -> None:
        candidates = self._with_status("paid")
        if candidates:
            target = data.draw(st.sampled_from(candidates))
            self.run(self._handle("task.reversed", reversed_payload(target, "事后核查不实")))

    @rule(days=st.integers(1, 40))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)

        async def go() -> None:
            async with unit_of_work(self.factory) as session:
                await subsidies.promote_payable(session, now=self.now, config=CONFIG)

        self.run(go())

    @rule()
    def pay(self) -> None:
        self.keys += 1

        async def go() -> None:
            async with unit_of_work(self.factory) as session:
                try:
                    batch = await payouts.build(
                        session,
                        actor=SYSTEM,
                        data=payouts.BatchIn(district_code=YUZHONG, period=f"{self.now:%Y-%m}"),
                        key=f"b{self.keys}",
                    )
                except Invalid:
                    return  # nothing payable
                assert batch.id is not None
                await payouts.approve(session, actor=SYSTEM, batch_id=batch.id)
                await payouts.execute(
                    session,
                    actor=SYSTEM,
                    batch_id=batch.id,
                    data=payouts.ExecuteIn(
                        mode="offline",
                        references={
                            ln.id or 0: f"R{ln.id}"
                            for ln in await payouts.lines_of(session, batch.id)
                        },
                    ),
                )

        self.run(go())

    @precondition(lambda self: bool(self.events))
    @rule(data=st.data())
    def replay_event(self, data: st.DataObject) -> None:
        event_id = data.draw(st.sampled_from(self.events))

        async def go() -> None:
            async with unit_of_work(self.factory) as session:
                event = await session.get(OutboxEvent, event_id)
                assert event is not None
                try:
                    async with session.begin_nested():
                        await subsidies.HANDLERS[event.name](session, event)
                except subsidies.NotYet:
                    pass

        before = self._postings()
        self.run(go())
        # A replayed approval or reversal already applied moves no money; one that was
        # waiting (its approval had not arrived) may apply now, never twice.
        after = self._postings()
        assert set(before) <= set(after)

    @precondition(lambda self: bool(self.snapshot))
    @rule(data=st.data())
    def replay_entry(self, data: st.DataObject) -> None:
        async def go() -> None:
            async with unit_of_work(self.factory) as session:
                entry_id = data.draw(
                    st.sampled_from(sorted({v[0] for v in self.snapshot.values()}))
                )
                entry = await session.get(ledger.LedgerEntry, entry_id)
                assert entry is not None
                lines = [
                    ledger.Line(p.account_id, p.side, p.amount_fen)
                    for p in await ledger.postings_of(session, entry_id)
                ]
                again = await ledger.post(
                    session,
                    key=entry.idempotency_key,
                    ledger=entry.ledger,
                    kind=entry.kind,
                    lines=lines,
                    reversal_of=entry.reversal_of_id,
                )
                assert again.id == entry_id

        before = self._postings()
        self.run(go())
        assert self._postings() == before

    # --- invariants ----------------------------------------------------------------

    def _postings(self) -> dict[int, tuple[int, int, str, int]]:
        async def read() -> dict[int, tuple[int, int, str, int]]:
            async with self.factory() as session:
                rows = (await session.execute(select(LedgerPosting))).scalars()
                return {p.id or 0: (p.entry_id, p.account_id, p.side, p.amount_fen) for p in rows}

        return self.run(read())

    @invariant()
    def ledger_holds(self) -> None:
        async def check() -> None:
            async with self.factory() as session:
                await check_ledger_invariants(session)
                for pool in (await session.execute(select(FundPool))).scalars():
                    await self._pool_identity(session, pool)
                batches = (await session.execute(select(PayoutBatch))).scalars()
                assert {b.status for b in batches} <= {BatchStatus.executed}

        self.run(check())
        current = self._postings()
        for posting_id, row in self.snapshot.items():
            assert current.get(posting_id) == row, "a posting changed or vanished"
        self.snapshot = current

    async def _pool_identity(self, session: Any, pool: FundPool) -> None:
        async def bal(account_id: int) -> int:
            return await ledger.current_balance(session, account_id)

        available = await bal(pool.available_account_id)
        reserved = await bal(pool.reserved_account_id)
        receivables = sum(
            a.balance_fen
            for a in (
                await session.execute(
                    select(LedgerAccount).where(
                        col(LedgerAccount.kind) == "broker_receivable",
                        col(LedgerAccount.district_code) == pool.district_code,
                        col(LedgerAccount.source) == pool.source,
                    )
                )
            ).scalars()
        )
        assert available >= 0
        assert reserved >= 0
        assert available + reserved + receivables == (
            await bal(pool.appropriated_account_id)
            + await bal(pool.reversed_account_id)
            - await bal(pool.paid_account_id)
        )
        rows = list(
            (
                await session.execute(
                    select(Subsidy)
                    .where(col(Subsidy.pool_id) == pool.id)
                    .order_by(col(Subsidy.approved_at), col(Subsidy.id))
                )
            ).scalars()
        )
        held = sum(
            s.amount_fen for s in rows if s.status in (SubsidyStatus.pending, SubsidyStatus.payable)
        )
        assert reserved == held, "the reservation is exactly the unpaid, unvoided subsidies"
        waiting = [s for s in rows if s.status == SubsidyStatus.awaiting_funds]
        if waiting:
            assert waiting[0].amount_fen > available, "money idle while the queue waits"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_pool_state_machine(sqlite_template: Path, tmp_path: Path) -> None:
    PoolMachine.template = sqlite_template
    PoolMachine.workdir = tmp_path
    run = PoolMachine.TestCase
    run.settings = settings(
        max_examples=6,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    run().runTest()
