"""Demo brokers and applications for ``laowu demo`` (called from ``marketplace.demo``).

- The demo brokers made by the foundation (no number yet) get a broker number, a
  certification date, key-broker and public-welfare flags for a few, and a few status
  changes (suspended, retired, eliminated) with their history.
- Each demo district gets applications at every step of the chain, mostly from
  villages that still lack a broker, moved there by the real services with
  role-holding system actors (the history shows the role, no person). Two per
  district go all the way to certification; their accounts use the demo password.

Safe to run twice: numbered brokers and districts that already have applications
are left alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta

from faker import Faker
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Actor, Role
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.brokers import applications
from marketplace.brokers.applications import ApplicationInput
from marketplace.brokers.models import (
    ApplicationStatus,
    Background,
    Broker,
    BrokerApplication,
    BrokerStatus,
    BrokerStatusChange,
)
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.regions.models import Region, RegionLevel

WELFARE_TASK_TYPES = (["政策宣传", "就业信息采集"], ["劳动力调查", "政策宣传"], ["就业帮扶回访"])
# Where each demo application stops, and how many per district.
PLAN: tuple[tuple[str, int], ...] = (
    (ApplicationStatus.submitted, 3),
    (ApplicationStatus.recommended, 2),
    (ApplicationStatus.township_reviewed, 2),
    (ApplicationStatus.district_approved, 2),
    (ApplicationStatus.in_training, 3),
    (ApplicationStatus.exam_passed, 2),
    (ApplicationStatus.returned, 1),
    (ApplicationStatus.rejected, 1),
    (ApplicationStatus.certified, 2),
)
# The approvals that take a submitted application to each state.
PATH: dict[str, list[Role]] = {
    ApplicationStatus.submitted: [],
    ApplicationStatus.recommended: [Role.village_officer],
    ApplicationStatus.township_reviewed: [Role.village_officer, Role.township_officer],
    ApplicationStatus.district_approved: [
        Role.village_officer,
        Role.township_officer,
        Role.district_admin,
    ],
}
PATH[ApplicationStatus.in_training] = [
    *PATH[ApplicationStatus.district_approved],
    Role.district_admin,
]


def _actor(role: Role, region: str) -> Actor:
    # user_id None: a system actor in the role, so the history names no person.
    return Actor(user_id=None, username=f"demo_{role.value}", role=role.value, region_code=region)


async def number_existing_brokers(
    session: AsyncSession, district_code: str, rng: random.Random
) -> int:
    """Numbers, certification dates, flags and a few status changes for the foundation's
    demo brokers (those without a number)."""
    rows = await session.execute(
        select(Broker)
        .where(col(Broker.village_code).startswith(district_code), col(Broker.broker_no).is_(None))
        .order_by(col(Broker.id))
    )
    now = utcnow()
    done = 0
    for broker in rows.scalars():
        assert broker.id is not None
        broker.broker_no = f"JJ{district_code}B{broker.id:05d}"
        broker.certified_at = now - timedelta(days=rng.randint(60, 900))
        broker.key_broker = rng.random() < 0.1
        if rng.random() < 0.06:
            broker.welfare_post = True
            broker.welfare_post_task_types = list(rng.choice(WELFARE_TASK_TYPES))
            broker.welfare_post_monthly_fen = rng.choice((60_000, 80_000, 100_000))
        session.add(
            BrokerStatusChange(
                broker_id=broker.id,
                old_status=None,
                new_status=BrokerStatus.active,
                reason="演示数据：已认证",
                at=broker.certified_at,
            )
        )
        draw = rng.random()
        change = (
            (BrokerStatus.suspended, "演示数据：群众投诉核查中")
            if draw < 0.02
            else (BrokerStatus.retired, "演示数据：本人申请退出")
            if draw < 0.03
            else (BrokerStatus.eliminated, "演示数据：年度考核不合格")
            if draw < 0.04
            else None
        )
        if change is not None and broker.user_id is None:
            broker.status, broker.status_reason = change
            session.add(
                BrokerStatusChange(
                    broker_id=broker.id,
                    old_status=BrokerStatus.active,
                    new_status=change[0],
                    reason=change[1],
                    at=now - timedelta(days=rng.randint(1, 50)),
                )
            )
        session.add(broker)
        done += 1
    await session.flush()
    return done


async def _uncovered_villages(session: AsyncSession, district_code: str) -> list[Region]:
    active = select(col(Broker.village_code)).where(col(Broker.status) == BrokerStatus.active)
    rows = await session.execute(
        select(Region)
        .where(
            col(Region.level) == RegionLevel.village,
            col(Region.code).startswith(district_code),
            col(Region.code).not_in(active),
        )
        .order_by(col(Region.code))
    )
    return list(rows.scalars())


async def demo_applications(
    session: AsyncSession,
    cipher: DataCipher,
    district_code: str,
    *,
    rng: random.Random,
    fake: Faker,
    id_number: Callable[[random.Random, str], tuple[str, date]],
    password: str,
    officer_village: str,
) -> list[str]:
    """Applications at every step in one district; returns the certified usernames."""
    exists = (
        await session.execute(
            select(col(BrokerApplication.id))
            .where(col(BrokerApplication.village_code).startswith(district_code))
            .limit(1)
        )
    ).first()
    if exists is not None:  # loaded before: report the same logins again
        rows = await session.execute(
            select(col(User.username))
            .join(Broker, col(Broker.user_id) == col(User.id))
            .join(BrokerApplication, col(BrokerApplication.broker_id) == col(Broker.id))
            .where(col(BrokerApplication.village_code).startswith(district_code))
            .order_by(col(BrokerApplication.id))
        )
        return list(rows.scalars())
    gaps = await _uncovered_villages(session, district_code) or []
    if not gaps:
        return []
    # The demo village officer's own village has one waiting, so their queue is not empty.
    targets = [officer_village] + [gaps[i % len(gaps)].code for i in range(sum(n for _, n in PLAN))]
    plan = [state for state, n in PLAN for _ in range(n)]
    usernames: list[str] = []
    for index, (state, village) in enumerate(
        zip([ApplicationStatus.submitted, *plan], targets, strict=False)
    ):
        number, _ = id_number(rng, district_code)
        app = await applications.submit(
            session=session,
            data=ApplicationInput(
                name=fake.name(),
                id_number=number,
                phone=f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                village_code=village,
                background=rng.choice(list(Background)),
                computer_skills=True,
                smartphone_skills=True,
                enough_time=True,
                not_on_public_payroll=True,
                note="演示数据" if index % 3 == 0 else None,
            ),
            cipher=cipher,
        )
        assert app.id is not None
        usernames.extend(await _advance(session, cipher, app, state, rng, password))
    return usernames


async def _decide(
    session: AsyncSession,
    cipher: DataCipher,
    app: BrokerApplication,
    role: Role,
    decision: str = "approve",
    comment: str | None = None,
) -> applications.Outcome:
    assert app.id is not None
    return await applications.decide(
        session=session,
        actor=_actor(role, app.village_code),
        application_id=app.id,
        decision=decision,
        comment=comment,
        cipher=cipher,
    )


async def _advance(
    session: AsyncSession,
    cipher: DataCipher,
    app: BrokerApplication,
    state: str,
    rng: random.Random,
    password: str,
) -> list[str]:
    assert app.id is not None
    if state == ApplicationStatus.returned:
        await _decide(session, cipher, app, Role.village_officer)
        await _decide(
            session, cipher, app, Role.township_officer, "return", "请补充本人从事劳务经纪的经历"
        )
        return []
    if state == ApplicationStatus.rejected:
        await _decide(session, cipher, app, Role.village_officer, "reject", "本人系村财政供养人员")
        return []
    if state in PATH:
        for role in PATH[state]:
            await _decide(session, cipher, app, role)
        return []
    for role in PATH[ApplicationStatus.in_training]:
        await _decide(session, cipher, app, role)
    # attempt_id 0: recorded by the demo without an exam attempt row.
    await applications.record_exam_passed(session, app.id, attempt_id=0, score=rng.randint(62, 96))
    if state == ApplicationStatus.exam_passed:
        return []
    outcome = await _decide(session, cipher, app, Role.district_admin)
    user = (
        await session.execute(select(User).where(col(User.username) == outcome.username))
    ).scalar_one()
    user.password_hash = accounts.hash_password(password)  # demo logins share one password
    session.add(user)
    await session.flush()
    return [user.username]
