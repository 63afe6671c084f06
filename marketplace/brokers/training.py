"""Training: sessions, attendance, the compliance report (courses and their materials
are in ``training_courses``).

District admins and township officers (and the city) run sessions in their region and
record who attended; trainees are certified brokers and applicants in training
(``TraineeRef``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import Select, and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, in_scope, require
from marketplace.brokers import training_courses
from marketplace.brokers.models import (
    ApplicationStatus,
    Broker,
    BrokerApplication,
    BrokerStatus,
)
from marketplace.brokers.training_models import (
    REQUIRED_DAYS_PER_YEAR,
    AttendanceEntry,
    AttendancePublic,
    ComplianceReport,
    SessionCreate,
    TraineeRef,
    TrainingAttendance,
    TrainingSession,
)
from marketplace.brokers.training_rules import BrokerFacts, compliance_rows
from marketplace.clock import local, utcnow
from marketplace.errors import Invalid, NotFound
from marketplace.regions.models import Region

TRAINEE_BROKER_STATUSES = (BrokerStatus.active, BrokerStatus.suspended)


def today_local() -> date:
    return local(utcnow()).date()


async def _region(session: AsyncSession, code: str, field: str) -> Region:
    region = await session.get(Region, code) if code else None
    if region is None:
        raise Invalid(field, f"区划代码 {code or '（空）'} 不存在")
    return region


# --- sessions ---------------------------------------------------------------------------


async def create_session(
    *, session: AsyncSession, actor: Actor, data: SessionCreate
) -> TrainingSession:
    region = await _region(session, data.region_code, "region_code")
    require(actor, "training.manage", region_code=region.code)
    if len(region.code) == 12:
        raise Invalid("region_code", "培训班应由区县或乡镇（街道）举办，请选择区县或乡镇")
    if data.course_id is not None:
        await training_courses.get_course(session=session, actor=actor, course_id=data.course_id)
    title = data.title.strip()
    if not title:
        raise Invalid("title", "培训班名称不能为空")
    training = TrainingSession(
        course_id=data.course_id,
        title=title,
        region_code=region.code,
        starts_on=data.starts_on,
        days=data.days,
        mode=data.mode.value,
        location=(data.location or "").strip() or None,
        refresher=data.refresher,
        created_by=actor.user_id,
    )
    session.add(training)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="training.session_create",
        object_type="training_session",
        object_id=training.id,
        region_code=region.code,
    )
    return training


async def list_sessions(
    *,
    session: AsyncSession,
    actor: Actor,
    region_code: str | None = None,
    year: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[TrainingSession], int]:
    prefix = region_code or actor.region_code
    require(actor, "training.view", region_code=prefix)
    where = [col(TrainingSession.region_code).startswith(prefix)]
    if year is not None:
        where += [
            col(TrainingSession.starts_on) >= date(year, 1, 1),
            col(TrainingSession.starts_on) <= date(year, 12, 31),
        ]
    total = (
        await session.execute(select(func.count()).select_from(TrainingSession).where(*where))
    ).scalar_one()
    rows = await session.execute(
        select(TrainingSession)
        .where(*where)
        .order_by(col(TrainingSession.starts_on).desc(), col(TrainingSession.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.scalars()), int(total)


async def attendee_counts(session: AsyncSession, session_ids: list[int]) -> dict[int, int]:
    if not session_ids:
        return {}
    rows = await session.execute(
        select(col(TrainingAttendance.session_id), func.count())
        .where(col(TrainingAttendance.session_id).in_(session_ids))
        .group_by(col(TrainingAttendance.session_id))
    )
    return {int(sid): int(n) for sid, n in rows.all()}


async def get_session(*, session: AsyncSession, actor: Actor, training_id: int) -> TrainingSession:
    require(actor, "training.view")
    training = await session.get(TrainingSession, training_id)
    if training is None or not in_scope(actor, training.region_code):
        # Another region's session reads as absent, like the worker register.
        raise NotFound(f"培训班 {training_id} 不存在", field="training_id")
    return training


# --- trainees and attendance ------------------------------------------------------------


def ref_of(row: TrainingAttendance) -> TraineeRef:
    if row.broker_id is not None:
        return TraineeRef("broker", row.broker_id)
    assert row.application_id is not None
    return TraineeRef("application", row.application_id)


async def attendance(
    *, session: AsyncSession, actor: Actor, training_id: int
) -> list[AttendancePublic]:
    await get_session(session=session, actor=actor, training_id=training_id)
    rows = await session.execute(
        select(TrainingAttendance)
        .where(col(TrainingAttendance.session_id) == training_id)
        .order_by(col(TrainingAttendance.village_code), col(TrainingAttendance.name))
    )
    return [
        AttendancePublic(
            trainee=str(ref_of(r)), name=r.name, village_code=r.village_code, days=r.days
        )
        for r in rows.scalars()
    ]


async def eligible_trainees(
    *, session: AsyncSession, actor: Actor, training_id: int
) -> list[AttendancePublic]:
    """Who may be recorded for this session: brokers (active or suspended) and applicants
    in training from the session's region; ``days`` is the session's length."""
    training = await get_session(session=session, actor=actor, training_id=training_id)
    brokers = await session.execute(
        select(Broker)
        .where(
            col(Broker.village_code).startswith(training.region_code),
            col(Broker.status).in_(TRAINEE_BROKER_STATUSES),
        )
        .order_by(col(Broker.village_code), col(Broker.name))
        .limit(2000)
    )
    applicants = await session.execute(
        select(BrokerApplication)
        .where(
            col(BrokerApplication.village_code).startswith(training.region_code),
            col(BrokerApplication.status) == ApplicationStatus.in_training,
            col(BrokerApplication.broker_id).is_(None),
        )
        .order_by(col(BrokerApplication.village_code), col(BrokerApplication.name))
        .limit(2000)
    )
    out = [
        AttendancePublic(
            trainee=f"broker:{b.id}", name=b.name, village_code=b.village_code, days=training.days
        )
        for b in brokers.scalars()
    ]
    out += [
        AttendancePublic(
            trainee=f"application:{a.id}",
            name=a.name,
            village_code=a.village_code,
            days=training.days,
        )
        for a in applicants.scalars()
    ]
    return out


async def _resolve(
    session: AsyncSession, training: TrainingSession, ref: TraineeRef, field: str
) -> tuple[str, str]:
    """(name, village) of a trainee who may attend ``training``."""
    if ref.kind == "broker":
        broker = await session.get(Broker, ref.id)
        if broker is None:
            raise Invalid(field, f"经纪人 {ref.id} 不存在")
        if broker.status not in TRAINEE_BROKER_STATUSES:
            raise Invalid(field, f"经纪人{broker.name}已退出或被淘汰，不能记录培训")
        name, village = broker.name, broker.village_code
    else:
        application = await session.get(BrokerApplication, ref.id)
        if application is None:
            raise Invalid(field, f"申请 {ref.id} 不存在")
        if application.status != ApplicationStatus.in_training:
            raise Invalid(field, f"申请人{application.name}不在培训阶段，不能记录培训")
        name, village = application.name, application.village_code
    if not village.startswith(training.region_code):
        raise Invalid(field, f"{name}不属于本培训班所在区域 {training.region_code}")
    return name, village


async def record_attendance(
    *,
    session: AsyncSession,
    actor: Actor,
    training_id: int,
    entries: Iterable[AttendanceEntry],
) -> list[AttendancePublic]:
    """Set the session's attendance to exactly ``entries`` (idempotent: sending the
    same list twice changes nothing). Everything is checked before anything is written."""
    training = await get_session(session=session, actor=actor, training_id=training_id)
    require(actor, "training.manage", region_code=training.region_code)
    if training.starts_on > today_local():
        raise Invalid("training_id", "培训班尚未开始，不能登记出勤")
    wanted: dict[TraineeRef, tuple[str, str, int]] = {}
    for index, entry in enumerate(entries):
        field = f"entries[{index}].trainee"
        ref = TraineeRef.parse(entry.trainee, field=field)
        if ref in wanted:
            raise Invalid(field, f"学员 {ref} 重复出现")
        days = entry.days if entry.days is not None else training.days
        if days > training.days:
            raise Invalid(
                f"entries[{index}].days", f"出勤天数不能超过培训班天数（{training.days} 天）"
            )
        name, village = await _resolve(session, training, ref, field)
        wanted[ref] = (name, village, days)
    existing = {
        ref_of(r): r
        for r in (
            await session.execute(
                select(TrainingAttendance).where(col(TrainingAttendance.session_id) == training_id)
            )
        ).scalars()
    }
    removed = [r.id for ref, r in existing.items() if ref not in wanted]
    if removed:
        await session.execute(
            delete(TrainingAttendance).where(col(TrainingAttendance.id).in_(removed))
        )
    changed = len(removed)
    for ref, (name, village, days) in wanted.items():
        row = existing.get(ref)
        if row is not None:
            if row.days != days:
                row.days, row.recorded_by, row.recorded_at = days, actor.user_id, utcnow()
                session.add(row)
                changed += 1
            continue
        session.add(
            TrainingAttendance(
                session_id=training_id,
                broker_id=ref.id if ref.kind == "broker" else None,
                application_id=ref.id if ref.kind == "application" else None,
                name=name,
                village_code=village,
                days=days,
                recorded_by=actor.user_id,
            )
        )
        changed += 1
    await session.flush()
    if changed:
        await audit.record(
            session=session,
            actor=actor,
            action="training.attendance",
            object_type="training_session",
            object_id=training_id,
            region_code=training.region_code,
            detail={"attendees": len(wanted), "changed": changed},
        )
    return await attendance(session=session, actor=actor, training_id=training_id)


# --- compliance -------------------------------------------------------------------------


async def broker_days(
    session: AsyncSession,
    prefix: str,
    year: int,
    *,
    refresher_only: bool = False,
    until: date | None = None,
) -> dict[int, int]:
    """Days per broker in ``year`` (sessions starting that year, up to ``until`` when
    given), counting days trained as an applicant before certification."""
    in_year = [
        col(TrainingSession.starts_on) >= date(year, 1, 1),
        col(TrainingSession.starts_on) <= (until or date(year, 12, 31)),
    ]
    if refresher_only:
        in_year.append(col(TrainingSession.refresher).is_(True))
    direct: Select[int | None, int] = (
        select(
            col(TrainingAttendance.broker_id).label("broker_id"),
            col(TrainingAttendance.days).label("days"),
        )
        .join(TrainingSession, col(TrainingSession.id) == col(TrainingAttendance.session_id))
        .where(col(TrainingAttendance.broker_id).is_not(None), *in_year)
        .where(col(TrainingAttendance.village_code).startswith(prefix))
    )
    as_applicant: Select[int | None, int] = (
        select(
            col(BrokerApplication.broker_id).label("broker_id"),
            col(TrainingAttendance.days).label("days"),
        )
        .join(TrainingSession, col(TrainingSession.id) == col(TrainingAttendance.session_id))
        .join(
            BrokerApplication,
            and_(
                col(BrokerApplication.id) == col(TrainingAttendance.application_id),
                col(BrokerApplication.broker_id).is_not(None),
            ),
        )
        .where(*in_year)
        .where(col(TrainingAttendance.village_code).startswith(prefix))
    )
    both = direct.union_all(as_applicant).subquery()
    rows = await session.execute(
        select(both.c.broker_id, func.sum(both.c.days)).group_by(both.c.broker_id)
    )
    return {int(broker_id): int(total) for broker_id, total in rows.all()}


async def compliance(
    *, session: AsyncSession, actor: Actor, region_code: str | None = None, year: int | None = None
) -> ComplianceReport:
    prefix = region_code or actor.region_code
    require(actor, "training.view", region_code=prefix)
    await _region(session, prefix, "region_code")
    year = year or today_local().year
    if not 2000 <= year <= 2100:
        raise Invalid("year", "年份应在 2000 到 2100 之间")
    rows = await session.execute(
        select(Broker)
        .where(
            col(Broker.village_code).startswith(prefix),
            col(Broker.status) == BrokerStatus.active,
        )
        .order_by(col(Broker.id))
    )
    brokers = [
        BrokerFacts(broker_id=b.id, broker_no=b.broker_no, name=b.name, village_code=b.village_code)
        for b in rows.scalars()
        if b.id is not None
    ]
    days = await broker_days(session, prefix, year)
    refresher = await broker_days(session, prefix, year, refresher_only=True)
    last_year = set(await broker_days(session, prefix, year - 1))
    report_rows = compliance_rows(brokers, days, refresher, last_year)
    return ComplianceReport(
        region_code=prefix,
        year=year,
        required_days=REQUIRED_DAYS_PER_YEAR,
        brokers=len(report_rows),
        compliant=sum(1 for r in report_rows if r.short_by == 0),
        short=[r for r in report_rows if r.short_by > 0],
        refresher_due=sum(1 for r in report_rows if r.needs_refresher),
    )
