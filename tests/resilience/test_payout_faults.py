"""Fault drill: a payout batch executed by `laowu billing execute-batch`, killed with
SIGKILL at random moments and run again, while `laowu worker` accrues more approved
tasks into the same fund pools and is itself killed and restarted. Builds on the
statement-level kill test (tests/billing/test_payouts.py, which kills the execution at
a chosen SQL statement in-process): here whole processes die at random times, with a
concurrent writer on the same pools. Afterwards each broker is paid exactly once, every
approved task is accrued exactly once, and the ledger invariants hold."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import func, select
from sqlmodel import col

from billing import payouts
from billing.ledger.models import LedgerEntry
from billing.models import PayoutLine, Subsidy
from marketplace.db import unit_of_work
from tests.billing.conftest import approved_payload, emit_events
from tests.billing.helpers import check_ledger_invariants, finance
from tests.billing.test_payouts import SOURCES, YUZHONG, _finance_users, _scene
from tests.resilience.conftest import Scene
from tests.resilience.harness import (
    Daemon,
    Outcome,
    laowu,
    laowu_once,
    pending_events,
    run_until_done,
)

SEED = 20261130


async def drill_payouts(
    scene: Scene, rng: random.Random, *, brokers: int, kills: int, outcome: Outcome
) -> None:
    maker, checker = await _finance_users(scene.sessions, scene.cipher)
    made, payloads = await _scene(scene.sessions, scene.cipher, brokers)
    async with unit_of_work(scene.sessions) as session:
        batch = await payouts.build(
            session,
            actor=finance(maker),
            data=payouts.BatchIn(district_code=YUZHONG, period="2026-01"),
            key=f"drill-{rng.randrange(10**9)}",
        )
        assert batch.id is not None
        await payouts.approve(session, actor=finance(checker), batch_id=batch.id)
        batch_id, gross = batch.id, batch.gross_fen
        planned = (
            await session.execute(
                select(func.count())
                .select_from(PayoutLine)
                .where(col(PayoutLine.batch_id) == batch_id)
            )
        ).scalar_one()
        assert planned > 0
    # More approved tasks arrive while the batch runs: the outbox worker accrues them
    # into the same pools (they belong to a later batch).
    later = [approved_payload(b, amount_fen=700, source=SOURCES[i % 2]) for i, b in enumerate(made)]
    await emit_events(scene.sessions, *(("task.approved", p) for p in later))
    worker = Daemon([*laowu(), "worker", "--interval", "0.2"], scene.env, scene.var_dir / "w.log")
    stop = asyncio.Event()
    chaos = asyncio.create_task(worker.chaos(rng, outcome, "laowu worker", stop, every=3.0))
    try:
        await run_until_done(
            [*laowu(), "billing", "execute-batch", "--id", str(batch_id), "--user", "fin_payout_2"],
            scene.env,
            rng,
            kills=kills,
            window=(1.5, 3.5),
            outcome=outcome,
            label="execute-batch",
        )
        # Run again once finished: pays nobody twice.
        await laowu_once(
            scene.env, "billing", "execute-batch", "--id", str(batch_id), "--user", "fin_payout_2"
        )
    finally:
        stop.set()
        await chaos
    await laowu_once(scene.env, "worker", "--once")
    async with scene.sessions() as session:
        assert await pending_events(session) == 0
        lines = list(
            (
                await session.execute(
                    select(PayoutLine).where(col(PayoutLine.batch_id) == batch_id)
                )
            ).scalars()
        )
        assert len(lines) == len({ln.broker_id for ln in lines}) == planned
        assert {ln.status for ln in lines} == {"paid"}
        assert sum(ln.net_fen for ln in lines) == gross
        payout_entries = (
            await session.execute(
                select(func.count())
                .select_from(LedgerEntry)
                .where(col(LedgerEntry.kind) == "payout")
            )
        ).scalar_one()
        pairs = (
            await session.execute(
                select(func.count()).select_from(
                    select(col(Subsidy.broker_id), col(Subsidy.source))
                    .where(col(Subsidy.batch_id) == batch_id)
                    .distinct()
                    .subquery()
                )
            )
        ).scalar_one()
        assert payout_entries == pairs  # one per broker and funding source, never two
        accrued = (await session.execute(select(func.count()).select_from(Subsidy))).scalar_one()
        assert accrued == len(payloads) + len(later)  # every approved task exactly once
        await check_ledger_invariants(session)
    outcome.checks.update(
        {"brokers paid once": planned, "payout entries": payout_entries, "ledger": "balanced"}
    )


async def test_payout_batch_killed_anywhere_pays_each_broker_once(scene: Scene) -> None:
    outcome = Outcome("payout batch")
    await drill_payouts(scene, random.Random(SEED), brokers=20, kills=2, outcome=outcome)
    print(outcome.line())
