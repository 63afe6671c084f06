"""Demo tasks for ``laowu demo``: four months of tasks in every state, evidence photos
drawn locally with Pillow, and spot checks with passes and failures.

Everything goes through the real services with a moved clock (``now=``), so events,
audit entries and notifications are what real use would leave. Idempotent: a district
whose first demo task exists is skipped.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import SYSTEM, Actor
from marketplace.accounts.models import User
from marketplace.accounts.service import actor_for
from marketplace.brokers.models import Broker
from marketplace.clock import SHANGHAI, utcnow
from marketplace.tasks import evidence, review, rules, spotchecks, submissions
from marketplace.tasks import service as tasks
from marketplace.tasks.models import (
    DistrictTaskSetting,
    ReviewDecision,
    ReviewRequest,
    ServiceTask,
    SpotCheckCreate,
    SpotCheckResult,
    TaskCreate,
)
from marketplace.workers.models import Worker

# What each demo task ends as: (months ago, task type, quantity, outcome).
PLAN: list[tuple[int, str, int, str]] = [
    (3, "policy_outreach", 2, "approved"),
    (3, "startup_loan_service", 3, "partly"),
    (3, "social_security_certification", 2, "approved"),
    (2, "policy_outreach", 1, "approved"),
    (2, "startup_loan_service", 2, "approved"),
    (2, "rights_protection", 1, "approved"),
    (2, "purchase_civil_affairs_visit", 4, "rejected"),
    (1, "policy_outreach", 2, "partly"),
    (1, "job_referral", 2, "approved"),
    (1, "rights_protection", 1, "expired"),
    (0, "policy_outreach", 2, "open"),
    (0, "startup_loan_service", 1, "open_township"),
    (0, "purchase_civil_affairs_visit", 3, "claimed"),
    (0, "policy_outreach", 1, "submitted"),
    (0, "startup_loan_service", 2, "rejected_open"),
    (0, "job_referral", 1, "approved"),
    (0, "policy_outreach", 2, "partly"),
    (0, "social_security_certification", 1, "township_checked"),
]
COLOURS = [(70, 130, 180), (205, 92, 92), (60, 179, 113), (218, 165, 32), (123, 104, 238)]
# Near 渝中区, 巫溪县 and 万州区: the photo's GPS position.
PLACES = {"500103": (29.556, 106.577), "500238": (31.399, 109.630), "500101": (30.808, 108.408)}


@dataclass
class DemoContext:
    session: AsyncSession
    store: evidence.EvidenceStore
    district: str
    broker_actor: Actor
    admin_actor: Actor
    village: str
    rng: random.Random
    township_actor: Actor | None = None  # set where the district asks townships first


def photo(rng: random.Random, label: str, taken: datetime, place: tuple[float, float]) -> bytes:
    """A made-up site photo: a coloured scene with a few shapes, EXIF time and place."""
    image = Image.new("RGB", (480, 360), rng.choice(COLOURS))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randint(0, 400), rng.randint(0, 280)
        draw.rectangle(
            (x, y, x + rng.randint(30, 120), y + rng.randint(20, 80)),
            fill=tuple(rng.randint(40, 250) for _ in range(3)),
        )
    draw.rectangle((0, 320, 480, 360), fill=(255, 255, 255))
    draw.text((10, 330), label, fill=(0, 0, 0))
    exif = Image.Exif()
    lat, lon = place
    exif[0x8825] = {1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon)}
    exif[0x8769] = {36867: taken.astimezone(SHANGHAI).strftime("%Y:%m:%d %H:%M:%S")}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80, exif=exif)
    return out.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60, 2)
    return float(degrees), float(minutes), seconds


async def _workers_of(session: AsyncSession, broker_id: int, n: int) -> list[int]:
    rows = await session.execute(
        select(col(Worker.id))
        .where(col(Worker.broker_id) == broker_id, col(Worker.deleted_at).is_(None))
        .order_by(col(Worker.id))
        .limit(n)
    )
    return [int(i or 0) for i in rows.scalars()]


async def _one(
    ctx: DemoContext, n: int, months_ago: int, code: str, quantity: int, outcome: str, now: datetime
) -> ServiceTask | None:
    start = now - timedelta(days=30 * months_ago + 20) if months_ago else now - timedelta(days=3)
    deadline = start + timedelta(days=14) if months_ago else now + timedelta(days=10 + n)
    region = ctx.village[:9] if outcome == "open_township" else ctx.village
    ttype = await tasks.current_type(ctx.session, code)
    task = await tasks.publish(
        session=ctx.session,
        actor=ctx.admin_actor,
        now=start,
        data=TaskCreate(
            task_type=code,
            region_code=region,
            quantity=quantity,
            deadline=deadline,
            instructions=f"演示任务：{ttype.description or ttype.name}。",
        ),
    )
    task.source_key = f"demo:{ctx.district}:{n}"
    if outcome in ("open", "open_township", "expired"):
        return task
    await tasks.claim(
        session=ctx.session,
        actor=ctx.broker_actor,
        task_id=task.id or 0,
        now=start + timedelta(hours=2),
    )
    if outcome == "claimed":
        return task
    people: list[int] = []
    if ttype.per_person:
        people = await _workers_of(ctx.session, task.broker_id or 0, quantity)
        if len(people) < quantity:
            return task
    sent = start + timedelta(days=5 if months_ago else 1)
    files = [
        (
            f"现场{k + 1}.jpg",
            photo(ctx.rng, f"demo task {task.id} photo {k + 1}", sent, PLACES[ctx.district]),
        )
        for k in range(1 + n % 2)
    ]
    await submissions.submit(
        session=ctx.session,
        actor=ctx.broker_actor,
        store=ctx.store,
        task_id=task.id or 0,
        quantity=quantity,
        note="已按要求完成。",
        worker_ids=people,
        files=files,
        now=sent,
    )
    if outcome == "submitted":
        return task
    decided = sent + timedelta(days=2 if months_ago else 1)
    if ctx.township_actor is not None:
        await review.review(
            session=ctx.session,
            actor=ctx.township_actor,
            task_id=task.id or 0,
            data=ReviewRequest(decision=ReviewDecision.township_pass),
            now=decided - timedelta(hours=6),
        )
    if outcome == "township_checked":
        return task
    if outcome in ("rejected", "rejected_open"):
        data = ReviewRequest(
            decision=ReviewDecision.reject, comment="照片看不清签到表，请补拍后重新提交"
        )
    elif outcome == "partly":
        data = ReviewRequest(
            decision=ReviewDecision.approve,
            approved_quantity=quantity - 1,
            comment="其中一项材料不全，按核实数量计",
        )
    else:
        data = ReviewRequest(decision=ReviewDecision.approve)
    await review.review(
        session=ctx.session, actor=ctx.admin_actor, task_id=task.id or 0, data=data, now=decided
    )
    return task


async def demo_tasks(
    session: AsyncSession, media_dir: Path, *, seed: int, districts: list[str]
) -> int:
    """Returns how many demo tasks were made (0 on a second run)."""
    store = evidence.LocalEvidenceStore(media_dir)
    now = utcnow()
    made = 0
    for district in districts:
        key = f"demo:{district}:0"
        exists = (
            await session.execute(
                select(col(ServiceTask.id)).where(col(ServiceTask.source_key) == key)
            )
        ).first()
        if exists is not None:
            continue
        broker_user = (
            (
                await session.execute(
                    select(User)
                    .where(col(User.role) == "broker", col(User.region_code).startswith(district))
                    .order_by(col(User.id))
                )
            )
            .scalars()
            .first()
        )
        admin_user = (
            (
                await session.execute(
                    select(User)
                    .where(col(User.role) == "district_admin", col(User.region_code) == district)
                    .order_by(col(User.id))
                )
            )
            .scalars()
            .first()
        )
        if broker_user is None:
            continue
        broker = (
            await session.execute(select(Broker).where(col(Broker.user_id) == broker_user.id))
        ).scalar_one()
        ctx = DemoContext(
            session=session,
            store=store,
            district=district,
            broker_actor=actor_for(broker_user),
            admin_actor=actor_for(admin_user) if admin_user else SYSTEM,
            village=broker.village_code,
            rng=random.Random(f"{seed}:{district}:tasks"),  # noqa: S311  (demo pictures)
        )
        if district == "500101":  # 万州区 asks its townships to look first
            session.add(DistrictTaskSetting(district_code=district, township_check=True))
            township_user = (
                (
                    await session.execute(
                        select(User)
                        .where(
                            col(User.role) == "township_officer",
                            col(User.region_code) == broker.village_code[:9],
                        )
                        .order_by(col(User.id))
                    )
                )
                .scalars()
                .first()
            )
            if township_user is not None:
                ctx.township_actor = actor_for(township_user)
        made_here = []
        for n, (months_ago, code, quantity, outcome) in enumerate(PLAN):
            task = await _one(ctx, n, months_ago, code, quantity, outcome, now)
            if task is not None:
                made_here.append(task)
        await session.flush()
        made += len(made_here)
        await _spot_check(ctx, now)
    await tasks.sweep(session=session, now=now)
    return made


async def _spot_check(ctx: DemoContext, now: datetime) -> None:
    period = rules.period_of(now - timedelta(days=30 * 2 + 20) + timedelta(days=14))
    pool, _ = await spotchecks.candidates(ctx.session, ctx.district, period)
    if len(pool) < 2:
        return
    check = await spotchecks.draw(
        session=ctx.session,
        actor=ctx.admin_actor,
        data=SpotCheckCreate(
            region_code=ctx.district, period=period, sample_size=min(3, len(pool)), seed=20261127
        ),
    )
    items = (
        await spotchecks.get(session=ctx.session, actor=SYSTEM, spot_check_id=check.id or 0)
    ).items
    outcomes = [
        ("pass", "入户回访，服务对象确认已接受服务"),
        ("fail", "电话回访：服务对象表示未参加，照片为其他活动"),
    ]
    for item, (result, notes) in zip(items, outcomes, strict=False):
        await spotchecks.record_result(
            session=ctx.session,
            actor=ctx.admin_actor,
            spot_check_id=check.id or 0,
            data=SpotCheckResult(task_id=item.task_id, result=result, notes=notes),
        )
