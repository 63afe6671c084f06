"""Task objects for the authorisation matrix (tests/web/test_authz_matrix.py): in each
village, a task waiting for review with one evidence file, and a spot check drawn
over an approved task."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.clock import utcnow
from marketplace.db import unit_of_work
from marketplace.tasks import review, spotchecks, submissions
from marketplace.tasks import service as tasks
from marketplace.tasks.evidence import LocalEvidenceStore
from marketplace.tasks.models import (
    EvidenceFile,
    ReviewDecision,
    ReviewRequest,
    SpotCheckCreate,
    TaskCreate,
)
from tests.tasks.support import jpeg


async def _submitted(
    session: AsyncSession, store: LocalEvidenceStore, broker: Any, village: str, n: int
) -> tuple[int, int]:
    task = await tasks.publish(
        session=session,
        actor=SYSTEM,
        data=TaskCreate(
            task_type="policy_outreach",
            region_code=village,
            quantity=1,
            deadline=utcnow() + timedelta(days=5),
            broker_id=None,
        ),
    )
    actor = accounts.actor_for(broker.user)
    await tasks.claim(session=session, actor=actor, task_id=task.id or 0)
    sub, _ = await submissions.submit(
        session=session,
        actor=actor,
        store=store,
        task_id=task.id or 0,
        quantity=1,
        note="",
        worker_ids=[],
        files=[("a.jpg", jpeg((n, 50, 50)))],
    )
    await session.flush()
    files = await submissions.evidence_of(session, [sub.id or 0])
    return task.id or 0, files[sub.id or 0][0].id or 0


async def make(
    sessions: async_sessionmaker[AsyncSession],
    media_dir: Any,
    brokers: dict[str, Any],
    villages: dict[str, str],
) -> dict[str, dict[str, int]]:
    store = LocalEvidenceStore(media_dir)
    out: dict[str, dict[str, int]] = {"task": {}, "evidence": {}, "spot_check": {}}
    for n, (scope, broker) in enumerate(brokers.items()):
        async with unit_of_work(sessions) as session:
            approved, _ = await _submitted(session, store, broker, villages[scope], 10 + n)
            await review.review(
                session=session,
                actor=SYSTEM,
                task_id=approved,
                data=ReviewRequest(decision=ReviewDecision.approve),
            )
            task = await tasks.visible_task(session, SYSTEM, approved)
            check = await spotchecks.draw(
                session=session,
                actor=SYSTEM,
                data=SpotCheckCreate(
                    region_code=villages[scope], period=task.period, sample_size=1, seed=1
                ),
            )
            pending, evidence_id = await _submitted(
                session, store, broker, villages[scope], 100 + n
            )
            out["task"][scope] = pending
            out["evidence"][scope] = evidence_id
            out["spot_check"][scope] = check.id or 0
    assert EvidenceFile  # the table the ids point into
    return out
