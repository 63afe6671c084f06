"""Demo training and exams for ``laowu demo`` (docs/training.md, "Demo data").

Per demo district: a year of sessions (the district's and its first townships', all
three modes, one refresher) with attendance drawn from the seed, so the compliance
report shows brokers with enough days, brokers short and brokers due a refresher;
real exam attempts for the applications that passed (replacing the placeholder
attempt the application demo records) and a failed attempt for one applicant still
in training. Loading twice adds nothing: a district that has sessions is skipped.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import SYSTEM
from marketplace.brokers import exams, questions, training, training_courses
from marketplace.brokers.exams_models import ExamAttempt, ExamItem
from marketplace.brokers.models import ApplicationStatus, Broker, BrokerApplication, BrokerStatus
from marketplace.brokers.questions_models import QuestionVersion
from marketplace.brokers.training_models import (
    CourseCreate,
    SessionCreate,
    TrainingAttendance,
    TrainingCourse,
    TrainingMode,
    TrainingSession,
)
from marketplace.regions.models import Region, RegionLevel

COURSES = (
    ("劳务经纪人岗位职责与工作规范", "实名台账、岗位核实、推荐就业与跟踪服务、职业道德。", False),
    (
        "劳动合同与工资支付",
        "《劳动合同法》要点；《保障农民工工资支付条例》与工程建设领域专项规定。",
        False,
    ),
    ("社会保险与待遇资格认证", "五项社会保险、城乡居民养老保险、手机刷脸认证操作。", False),
    ("就业服务与创业担保贷款", "公共就业服务、就业援助、创业担保贷款申请流程。", False),
    ("劳动争议调解仲裁与劳动保障监察", "协商、调解、仲裁、投诉举报的途径与时限。", False),
    ("年度复训：政策更新与案例", "面向上一年已参训经纪人：当年政策变化与典型案例。", True),
)
# Days before today, length in days, mode, refresher: about a year of sessions.
PLAN = (
    (350, 2, TrainingMode.offline, False),
    (300, 1, TrainingMode.meeting, False),
    (240, 2, TrainingMode.online, False),
    (180, 1, TrainingMode.offline, True),
    (120, 1, TrainingMode.meeting, False),
    (75, 2, TrainingMode.offline, False),
    (40, 1, TrainingMode.online, False),
    (15, 1, TrainingMode.meeting, True),
)
MODE_TITLES = {
    TrainingMode.offline: "集中培训班",
    TrainingMode.online: "线上培训",
    TrainingMode.meeting: "工作例会（以会代训）",
}


async def demo_courses(session: AsyncSession) -> list[TrainingCourse]:
    existing = {
        c.title: c
        for c in (
            await session.execute(
                select(TrainingCourse).where(col(TrainingCourse.region_code) == "50")
            )
        ).scalars()
    }
    made = []
    for title, content, refresher in COURSES:
        course = existing.get(title) or await training_courses.create_course(
            session=session,
            actor=SYSTEM,
            data=CourseCreate(title=title, content=content, refresher=refresher, region_code="50"),
        )
        made.append(course)
    return made


async def _townships(session: AsyncSession, district_code: str, n: int) -> list[Region]:
    rows = await session.execute(
        select(Region)
        .where(col(Region.parent_code) == district_code, col(Region.level) == RegionLevel.township)
        .order_by(col(Region.code))
        .limit(n)
    )
    return list(rows.scalars())


async def demo_training(
    session: AsyncSession, district_code: str, district_name: str, rng: random.Random
) -> int:
    """A year of sessions with attendance in one district; returns sessions made."""
    present = (
        await session.execute(
            select(col(TrainingSession.id))
            .where(col(TrainingSession.region_code).startswith(district_code))
            .limit(1)
        )
    ).first()
    if present is not None:
        return 0
    courses = await demo_courses(session)
    regular = [c for c in courses if not c.refresher]
    refresher_course = next(c for c in courses if c.refresher)
    hosts = [district_code, *(t.code for t in await _townships(session, district_code, 3))]
    today = training.today_local()
    made = 0
    for index, (ago, days, mode, refresher) in enumerate(PLAN):
        host = hosts[index % len(hosts)] if not refresher else district_code
        starts = today - timedelta(days=ago)
        course = refresher_course if refresher else regular[index % len(regular)]
        row = await training.create_session(
            session=session,
            actor=SYSTEM,
            data=SessionCreate(
                title=f"{district_name}{starts.month}月{'复训' if refresher else MODE_TITLES[mode]}",
                course_id=course.id,
                region_code=host,
                starts_on=starts,
                days=days,
                mode=mode,
                location="区县人力社保局培训室" if mode == TrainingMode.offline else None,
                refresher=refresher,
            ),
        )
        await _attend(session, row, rng)
        made += 1
    return made


async def _attend(session: AsyncSession, row: TrainingSession, rng: random.Random) -> None:
    brokers = await session.execute(
        select(Broker).where(
            col(Broker.village_code).startswith(row.region_code),
            col(Broker.status) == BrokerStatus.active,
        )
    )
    for broker in brokers.scalars():
        # Some brokers miss most sessions, so the compliance report has people short.
        keen = (broker.id or 0) % 4 != 0
        if rng.random() < (0.8 if keen else 0.25):
            days = row.days if rng.random() < 0.85 else max(1, row.days - 1)
            session.add(
                TrainingAttendance(
                    session_id=row.id or 0,
                    broker_id=broker.id,
                    name=broker.name,
                    village_code=broker.village_code,
                    days=days,
                )
            )
    applicants = await session.execute(
        select(BrokerApplication).where(
            col(BrokerApplication.village_code).startswith(row.region_code),
            col(BrokerApplication.status) == ApplicationStatus.in_training,
        )
    )
    for application in applicants.scalars():
        session.add(
            TrainingAttendance(
                session_id=row.id or 0,
                application_id=application.id,
                name=application.name,
                village_code=application.village_code,
                days=row.days,
            )
        )
    await session.flush()


async def _sit(
    session: AsyncSession, application: BrokerApplication, score: int, when: datetime
) -> ExamAttempt:
    """A graded attempt with about ``score`` points: that many answers right, the rest wrong."""
    attempt, _ = await exams.start_attempt(session, application=application, broker=None, now=when)
    assert attempt.id is not None
    rows = await session.execute(
        select(ExamItem, QuestionVersion)
        .join(QuestionVersion, col(QuestionVersion.id) == col(ExamItem.question_version_id))
        .where(col(ExamItem.attempt_id) == attempt.id)
        .order_by(col(ExamItem.position))
    )
    items = rows.all()
    right = round(score * len(items) / 100)
    for n, (item, version) in enumerate(items):
        if n < right:
            item.answer = list(version.correct)
        else:
            wrong = [i for i in range(len(version.options)) if i not in version.correct]
            item.answer = wrong[:1]
        item.answered_at = when + timedelta(minutes=1 + n // 2)
        session.add(item)
    await exams.grade(session, attempt, when + timedelta(minutes=18))
    return attempt


async def demo_exams(session: AsyncSession, district_code: str, rng: random.Random) -> int:
    """Real attempts for the district's demo applications; returns attempts made."""
    rows = await session.execute(
        select(BrokerApplication)
        .where(col(BrokerApplication.village_code).startswith(district_code))
        .order_by(col(BrokerApplication.id))
    )
    made = 0
    first_in_training = True
    for application in rows.scalars():
        taken = (
            await session.execute(
                select(col(ExamAttempt.id)).where(col(ExamAttempt.application_id) == application.id)
            )
        ).first()
        if taken is not None:
            continue
        when = datetime.combine(
            training.today_local() - timedelta(days=rng.randint(3, 20)), time(2, 0), tzinfo=UTC
        )
        if application.status == ApplicationStatus.in_training and first_in_training:
            first_in_training = False
            await _sit(session, application, rng.randint(35, 55), when)
            made += 1
        elif application.exam_attempt_id == 0 and application.exam_score is not None:
            # Passed in the application demo: make the attempt behind that score real.
            attempt = await _sit(session, application, application.exam_score, when)
            application.exam_attempt_id = attempt.id
            application.exam_score = attempt.score
            session.add(application)
            made += 1
    await session.flush()
    return made


async def load_bank(session: AsyncSession) -> None:
    await questions.load_starter(session=session, actor=SYSTEM)


async def load(session: AsyncSession, district_code: str, district_name: str, seed: int) -> None:
    """One district's sessions, attendance and exam attempts (after ``load_bank``)."""
    rng = random.Random(f"{seed}:{district_code}:training")  # noqa: S311 - demo data from a seed
    await demo_training(session, district_code, district_name, rng)
    await demo_exams(session, district_code, rng)
