"""The first wage: a month after the start the broker records whether it was paid in
full and on time; a wage not paid in full opens an arrears case (欠薪), which the
tasks issue turns into a rights-protection task and which lowers the employer's
standing. See docs/matching.md."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, require
from marketplace.clock import utcnow
from marketplace.errors import Conflict, Invalid, NotFound
from marketplace.events import emit
from marketplace.placements.models import (
    ArrearsCase,
    ArrearsStatus,
    Placement,
    Standing,
    WageReport,
    WageReportCreate,
)
from marketplace.placements.service import active_broker
from marketplace.workers.models import Worker


def one_month_after(day: date) -> date:
    """The same day next month, or that month's last day (31 Jan -> 28/29 Feb)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def report_due_on(placement: Placement) -> date:
    return one_month_after(placement.starts_on)


async def report_wage(
    *,
    session: AsyncSession,
    actor: Actor,
    placement_id: int,
    data: WageReportCreate,
    today: date,
    now: datetime | None = None,
) -> tuple[WageReport, ArrearsCase | None]:
    now = now or utcnow()
    reach = await active_broker(session, actor, "placement.report_wage")
    placement = await session.get(Placement, placement_id, with_for_update=True)
    if placement is None or reach.broker is None or placement.broker_id != reach.broker.id:
        raise NotFound(f"上岗记录 {placement_id} 不存在", field="id")
    due = report_due_on(placement)
    if today < due:
        raise Conflict(
            f"首月工资回访在开工满一个月后（{due:%Y-%m-%d} 起）填报", field="placement_id"
        )
    existing = (
        await session.execute(
            select(col(WageReport.id)).where(col(WageReport.placement_id) == placement_id)
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict("此上岗记录的首月工资已回访填报过", field="placement_id")
    if data.paid_in_full and data.owed_fen:
        raise Invalid("owed_fen", "工资已足额发放时不能填写欠薪金额")
    report = WageReport(
        placement_id=placement_id,
        paid_in_full=data.paid_in_full,
        paid_on_time=data.paid_on_time,
        amount_paid_fen=data.amount_paid_fen,
        note=(data.note or "").strip() or None,
        reported_by=actor.user_id,
        reported_at=now,
    )
    session.add(report)
    await session.flush()
    case = None if data.paid_in_full else await _open_case(session, placement, report, data, now)
    await audit.record(
        session=session,
        actor=actor,
        action="placement.wage_report",
        object_type="placement",
        object_id=placement_id,
        detail={
            "paid_in_full": data.paid_in_full,
            "paid_on_time": data.paid_on_time,
            "arrears_case_id": case.id if case else None,
        },
    )
    return report, case


async def _open_case(
    session: AsyncSession,
    placement: Placement,
    report: WageReport,
    data: WageReportCreate,
    now: datetime,
) -> ArrearsCase:
    assert placement.id is not None
    assert report.id is not None
    worker = await session.get(Worker, placement.worker_id)
    assert worker is not None
    case = ArrearsCase(
        placement_id=placement.id,
        wage_report_id=report.id,
        organization_id=placement.organization_id,
        broker_id=placement.broker_id,
        worker_id=placement.worker_id,
        # The worker's home village: its broker follows the case up, and the
        # rights-protection task belongs to that district.
        region_code=worker.hukou_village_code,
        owed_fen=data.owed_fen,
        opened_at=now,
    )
    session.add(case)
    await session.flush()
    await emit(
        session,
        "arrears.opened",
        {
            "case_id": case.id,
            "placement_id": case.placement_id,
            "organization_id": case.organization_id,
            "broker_id": case.broker_id,
            "region_code": case.region_code,
        },
    )
    return case


async def wage_report_of(session: AsyncSession, placement_id: int) -> WageReport | None:
    return (
        await session.execute(
            select(WageReport).where(col(WageReport.placement_id) == placement_id)
        )
    ).scalar_one_or_none()


async def arrears_of(session: AsyncSession, placement_id: int) -> ArrearsCase | None:
    return (
        await session.execute(
            select(ArrearsCase).where(col(ArrearsCase.placement_id) == placement_id)
        )
    ).scalar_one_or_none()


async def resolve_arrears(
    *, session: AsyncSession, actor: Actor, placement_id: int, note: str | None
) -> ArrearsCase:
    """An officer of the worker's region records that the owed wage was paid (欠薪化解).
    Only an officer may close a case: it counts as a bonus in the broker's points."""
    text = (note or "").strip()
    if not text:
        raise Invalid("note", "请说明欠薪如何化解（例如：已于某日足额补发）")
    if len(text) > 500:
        raise Invalid("note", "说明不能超过 500 字")
    require(actor, "arrears.resolve")
    case = await arrears_of(session, placement_id)
    if case is None:
        raise NotFound("这次上岗没有欠薪记录", field="placement_id")
    require(actor, "arrears.resolve", region_code=case.region_code)
    if case.status == ArrearsStatus.resolved:
        raise Conflict("欠薪已经化解", field="placement_id")
    case.status = ArrearsStatus.resolved
    case.resolved_at = utcnow()
    session.add(case)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="arrears.resolve",
        object_type="arrears_case",
        object_id=case.id,
        region_code=case.region_code,
        detail={"placement_id": placement_id, "note_length": len(text)},
    )
    await emit(
        session,
        "arrears.resolved",
        {"case_id": case.id, "placement_id": placement_id, "broker_id": case.broker_id},
    )
    return case


# --- standing ------------------------------------------------------------------------


def _standing_statement() -> Select[Any]:
    """Placements, first-wage reports and arrears of one organisation: three one-row
    aggregates side by side, one round trip (built once; the organisation is bound)."""
    org = bindparam("organization_id", type_=Integer)
    placed = (
        select(func.count().label("placements"))
        .where(col(Placement.organization_id) == org)
        .subquery("placed")
    )
    reports = (
        select(
            func.count().label("reports"),
            func.count()
            .filter(col(WageReport.paid_in_full).is_(True), col(WageReport.paid_on_time).is_(True))
            .label("good"),
            func.count()
            .filter(col(WageReport.paid_in_full).is_(True), col(WageReport.paid_on_time).is_(False))
            .label("late"),
        )
        .select_from(WageReport)
        .join(Placement, col(Placement.id) == col(WageReport.placement_id))
        .where(col(Placement.organization_id) == org)
        .subquery("reports")
    )
    cases = (
        select(
            func.count().label("total"),
            func.count().filter(col(ArrearsCase.status) == ArrearsStatus.open).label("open"),
        )
        .where(col(ArrearsCase.organization_id) == org)
        .subquery("cases")
    )
    return select(
        placed.c.placements,
        reports.c.reports,
        reports.c.good,
        reports.c.late,
        cases.c.total,
        cases.c.open,
    ).select_from(placed.join(reports, true()).join(cases, true()))


_STANDING = _standing_statement()


async def standing(*, session: AsyncSession, organization_id: int) -> Standing:
    """The employer's record with placed workers, for reviewers' and brokers' job and
    organisation views. Counts placements where the organisation is the employer."""
    row = (await session.execute(_STANDING, {"organization_id": organization_id})).one()
    placements, total_reports, good, late, arrears_total, open_arrears = (int(n) for n in row)
    return Standing(
        organization_id=organization_id,
        placements=placements,
        wage_reports=total_reports,
        paid_in_full_on_time=good,
        paid_late=late,
        open_arrears=open_arrears,
        arrears_total=arrears_total,
        summary=_summary(placements, total_reports, good, late, open_arrears, arrears_total),
        warning=open_arrears > 0,
    )


def _summary(placements: int, reports: int, good: int, late: int, open_: int, total: int) -> str:
    if placements == 0:
        return "尚无经平台上岗的劳动者"
    parts = [f"经平台上岗 {placements} 人", f"首月工资回访 {reports} 人"]
    if reports:
        parts.append(f"按时足额 {good} 人")
    if late:
        parts.append(f"迟发 {late} 人")
    if open_:
        parts.append(f"欠薪未结 {open_} 起")
    elif total:
        parts.append(f"欠薪 {total} 起（均已处理）")
    return "，".join(parts)


async def standing_for(*, session: AsyncSession, actor: Actor, organization_id: int) -> Standing:
    require(actor, "organization.standing")
    return await standing(session=session, organization_id=organization_id)
