"""Exams: start or resume an attempt, save answers as they go, grade (docs/training.md).

Candidates are applicants in training (no account: the tracking code and the phone on
file open an exam session, a random token whose sha256 is kept on the attempt) and
certified brokers (their login). The server owns the clock: an answer after
``deadline_at`` is refused, and an open attempt past its deadline is graded with the
answers saved so far the next time anyone opens or submits it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, Role, can, in_scope, require
from marketplace.brokers import applications, exams_policy, exams_rules
from marketplace.brokers import rules as application_rules
from marketplace.brokers.exams_models import (
    AnswerInput,
    AttemptStatus,
    CategoryResult,
    ExamAttempt,
    ExamItem,
    ExamPublic,
    ExamSummary,
    PaperQuestion,
    ReviewItem,
)
from marketplace.brokers.models import ApplicationStatus, Broker, BrokerApplication, BrokerStatus
from marketplace.brokers.questions_models import QuestionVersion
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.db import fetch_page
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from marketplace.notifications import service as inbox


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- who is asking ----------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """An exam request's credentials: a logged-in actor, an exam session token, or none."""

    actor: Actor | None = None
    token: str | None = None


async def _broker_of(session: AsyncSession, actor: Actor) -> Broker | None:
    if actor.user_id is None or actor.role != Role.broker:
        return None
    return (
        await session.execute(select(Broker).where(col(Broker.user_id) == actor.user_id))
    ).scalar_one_or_none()


async def _load(
    session: AsyncSession, attempt_id: int, caller: Caller, *, write: bool
) -> ExamAttempt:
    """The attempt if the caller is its candidate (or, to read, an officer in scope)."""
    attempt = await session.get(ExamAttempt, attempt_id)
    missing = NotFound(f"考试 {attempt_id} 不存在", field="exam_id")
    if caller.token:
        if attempt is None or attempt.token_hash is None:
            raise missing
        if not hmac.compare_digest(attempt.token_hash, hash_token(caller.token)):
            raise missing
        return attempt
    if caller.actor is None:
        raise Unauthenticated("请先用跟踪码和手机号进入考试，或登录后再试")
    actor = caller.actor
    if attempt is None:
        raise missing
    if actor.role == Role.broker:
        broker = await _broker_of(session, actor)
        if broker is None or attempt.broker_id != broker.id:
            raise missing
        return attempt
    if not write and can(actor, "exam.view") and in_scope(actor, attempt.village_code):
        return attempt
    if write and can(actor, "exam.view"):
        raise Forbidden("只有考生本人可以答题和交卷")
    if can(actor, "exam.view"):
        raise missing
    raise Forbidden("您的角色无权查看考试")


# --- starting ---------------------------------------------------------------------------


async def _attempts(
    session: AsyncSession, *, application_id: int | None, broker_id: int | None
) -> list[ExamAttempt]:
    where = (
        col(ExamAttempt.application_id) == application_id
        if application_id is not None
        else col(ExamAttempt.broker_id) == broker_id
    )
    rows = await session.execute(
        select(ExamAttempt).where(where).order_by(col(ExamAttempt.attempt_no))
    )
    return list(rows.scalars())


async def start_attempt(
    session: AsyncSession,
    *,
    application: BrokerApplication | None,
    broker: Broker | None,
    now: datetime,
) -> tuple[ExamAttempt, bool]:
    """(the attempt, whether it is new): the open attempt is resumed; otherwise a new
    paper is drawn, unless the candidate has used up the attempts."""
    past = await _attempts(
        session,
        application_id=application.id if application else None,
        broker_id=broker.id if broker else None,
    )
    for attempt in past:
        if attempt.status == AttemptStatus.open:
            if now <= attempt.deadline_at:
                return attempt, False
            await grade(session, attempt, now)
    if application is not None and any(a.passed for a in past):
        raise Conflict("您已通过考试，无需再考", field="exam")
    policy = await exams_policy.current_policy(session)
    if len(past) >= policy.max_attempts:
        raise Conflict(
            f"考试次数已用完（最多 {policy.max_attempts} 次），请联系区县人力社保局",
            field="attempts",
        )
    blueprint = exams_rules.check_blueprint(policy.blueprint)
    seed = secrets.randbits(31)
    paper = exams_rules.draw(blueprint, await exams_policy.pool(session), seed)
    who = application if application is not None else broker
    assert who is not None
    attempt = ExamAttempt(
        application_id=application.id if application else None,
        broker_id=broker.id if broker else None,
        candidate_name=who.name,
        village_code=who.village_code,
        attempt_no=len(past) + 1,
        seed=seed,
        blueprint=blueprint,
        time_limit_minutes=policy.time_limit_minutes,
        pass_mark=policy.pass_mark,
        started_at=now,
        deadline_at=now + timedelta(minutes=policy.time_limit_minutes),
    )
    try:
        async with session.begin_nested():
            session.add(attempt)
            await session.flush()
    except IntegrityError:
        # A concurrent start (a double tap, two phones) took this attempt number first.
        for other in await _attempts(
            session,
            application_id=application.id if application else None,
            broker_id=broker.id if broker else None,
        ):
            if other.status == AttemptStatus.open and now <= other.deadline_at:
                return other, False
        raise Conflict("考试正在开始，请稍后刷新页面", field="exam") from None
    assert attempt.id is not None
    for position, item in enumerate(paper, start=1):
        session.add(
            ExamItem(
                attempt_id=attempt.id,
                position=position,
                question_version_id=item.version_id,
                category=item.category,
                option_order=list(item.option_order),
            )
        )
    await session.flush()
    return attempt, True


async def start_for_applicant(
    *,
    session: AsyncSession,
    tracking_code: str,
    phone: str,
    cipher: DataCipher,
    now: datetime | None = None,
    ip: str | None = None,
) -> tuple[ExamAttempt, str]:
    """Open an exam session for an applicant in training: (attempt, token). Opening it
    again (a new phone, a lost tab) resumes the same attempt with a fresh token."""
    application = await applications.track(
        session=session, code=tracking_code, phone=phone, cipher=cipher
    )
    if application.status != ApplicationStatus.in_training:
        label = application_rules.STATUS_LABELS.get(application.status, application.status)
        raise Conflict(f"申请当前状态为“{label}”，只有培训阶段的申请人可以参加考试", field="status")
    attempt, new = await start_attempt(
        session, application=application, broker=None, now=now or utcnow()
    )
    token = secrets.token_urlsafe(32)
    attempt.token_hash = hash_token(token)
    session.add(attempt)
    await session.flush()
    if new:
        await _audit(session, attempt, "exam.start", _applicant_actor(application, ip))
    return attempt, token


async def start_for_broker(
    *, session: AsyncSession, actor: Actor, now: datetime | None = None
) -> ExamAttempt:
    require(actor, "exam.take")
    broker = await _broker_of(session, actor)
    if broker is None or broker.status != BrokerStatus.active:
        raise Forbidden("只有在岗的劳务经纪人可以参加考试")
    attempt, new = await start_attempt(
        session, application=None, broker=broker, now=now or utcnow()
    )
    if new:
        await _audit(session, attempt, "exam.start", actor)
    return attempt


def _applicant_actor(application: BrokerApplication, ip: str | None = None) -> Actor:
    return Actor(user_id=None, username="applicant", role="applicant", region_code="", ip=ip)


async def _audit(session: AsyncSession, attempt: ExamAttempt, action: str, actor: Actor) -> None:
    await audit.record(
        session=session,
        actor=actor,
        action=action,
        object_type="exam_attempt",
        object_id=attempt.id,
        region_code=attempt.village_code,
        detail={"attempt_no": attempt.attempt_no, "score": attempt.score},
    )


# --- answering --------------------------------------------------------------------------


async def _items(session: AsyncSession, attempt_id: int) -> list[tuple[ExamItem, QuestionVersion]]:
    rows = await session.execute(
        select(ExamItem, QuestionVersion)
        .join(QuestionVersion, col(QuestionVersion.id) == col(ExamItem.question_version_id))
        .where(col(ExamItem.attempt_id) == attempt_id)
        .order_by(col(ExamItem.position))
    )
    return [(item, version) for item, version in rows.all()]


async def save_answer(
    *,
    session: AsyncSession,
    attempt_id: int,
    caller: Caller,
    data: AnswerInput,
    now: datetime | None = None,
) -> ExamPublic:
    """Save (or change) one answer; the same answer twice is a no-op. Refused after the
    time limit, after hand-in, or for a question that is not on this paper."""
    now = now or utcnow()
    attempt = await _load(session, attempt_id, caller, write=True)
    if attempt.status != AttemptStatus.open:
        raise Conflict("试卷已交，不能再修改答案", field="status")
    if now > attempt.deadline_at:
        raise Conflict("考试时间已到，答案未保存；试卷将按已保存的答案评分", field="deadline")
    item = (
        await session.execute(
            select(ExamItem).where(
                col(ExamItem.attempt_id) == attempt_id,
                col(ExamItem.question_version_id) == data.question_id,
            )
        )
    ).scalar_one_or_none()
    if item is None:
        raise Invalid("question_id", f"题目 {data.question_id} 不在本试卷上")
    version = await session.get(QuestionVersion, item.question_version_id)
    assert version is not None
    shown = exams_rules.check_choices(version.kind, len(item.option_order), data.choices)
    answer = sorted(item.option_order[c] for c in shown)
    if item.answer != answer:
        item.answer = answer
        item.answered_at = now
        session.add(item)
        await session.flush()
    return await view(session=session, attempt=attempt, now=now)


async def grade(session: AsyncSession, attempt: ExamAttempt, now: datetime) -> None:
    assert attempt.id is not None
    items = await _items(session, attempt.id)
    per_category: dict[str, list[int]] = {}
    right = 0
    for item, version in items:
        item.correct = exams_rules.is_correct(version.correct, item.answer)
        session.add(item)
        cell = per_category.setdefault(item.category, [0, 0])
        cell[0] += 1
        cell[1] += int(item.correct)
        right += int(item.correct)
    attempt.score = exams_rules.score_of(right, len(items))
    attempt.passed = attempt.score >= attempt.pass_mark
    attempt.breakdown = {
        category: {"questions": n, "correct": c}
        for category, (n, c) in sorted(per_category.items())
    }
    attempt.status = (
        AttemptStatus.submitted if now <= attempt.deadline_at else AttemptStatus.timed_out
    )
    attempt.submitted_at = (
        min(now, attempt.deadline_at) if attempt.status == AttemptStatus.timed_out else now
    )
    session.add(attempt)
    await session.flush()
    await _after_grading(session, attempt)


async def _after_grading(session: AsyncSession, attempt: ExamAttempt) -> None:
    assert attempt.id is not None
    assert attempt.score is not None
    system = Actor(user_id=None, username="system", role="system", region_code="50")
    await _audit(session, attempt, "exam.graded", system)
    if attempt.application_id is not None and attempt.passed:
        application = await session.get(BrokerApplication, attempt.application_id)
        # An application moved on meanwhile (rejected, say) keeps its state.
        if application is not None and application.status == ApplicationStatus.in_training:
            await applications.record_exam_passed(
                session, attempt.application_id, attempt_id=attempt.id, score=attempt.score
            )
    if attempt.broker_id is not None:
        broker = await session.get(Broker, attempt.broker_id)
        if broker is not None and broker.user_id is not None:
            verdict = "合格" if attempt.passed else "未合格"
            await inbox.send(
                session=session,
                user_id=broker.user_id,
                title=f"考试成绩：{attempt.score} 分（{verdict}）",
                body=f"第 {attempt.attempt_no} 次考试，合格线 {attempt.pass_mark} 分。",
                link=f"/exams/{attempt.id}",
            )


async def submit(
    *, session: AsyncSession, attempt_id: int, caller: Caller, now: datetime | None = None
) -> ExamPublic:
    """Hand in and grade (idempotent: a graded paper is returned as it is)."""
    now = now or utcnow()
    attempt = await _load(session, attempt_id, caller, write=True)
    if attempt.status == AttemptStatus.open:
        await grade(session, attempt, now)
    return await view(session=session, attempt=attempt, now=now)


async def get(
    *, session: AsyncSession, attempt_id: int, caller: Caller, now: datetime | None = None
) -> ExamPublic:
    now = now or utcnow()
    attempt = await _load(session, attempt_id, caller, write=False)
    if attempt.status == AttemptStatus.open and now > attempt.deadline_at:
        await grade(session, attempt, now)
    return await view(session=session, attempt=attempt, now=now)


# --- reading ----------------------------------------------------------------------------


def _shown(
    item: ExamItem, version: QuestionVersion
) -> tuple[list[str], list[int] | None, list[int]]:
    options = [version.options[i] for i in item.option_order]
    choices = sorted(item.option_order.index(a) for a in item.answer) if item.answer else None
    correct = sorted(item.option_order.index(c) for c in version.correct)
    return options, choices, correct


async def view(*, session: AsyncSession, attempt: ExamAttempt, now: datetime) -> ExamPublic:
    """The paper while open (no answers revealed); results and review once graded."""
    assert attempt.id is not None
    items = await _items(session, attempt.id)
    graded = attempt.status != AttemptStatus.open
    out = ExamPublic(
        id=attempt.id,
        candidate_name=attempt.candidate_name,
        attempt_no=attempt.attempt_no,
        status=attempt.status,
        started_at=attempt.started_at,
        deadline_at=attempt.deadline_at,
        submitted_at=attempt.submitted_at,
        seconds_left=0 if graded else max(0, int((attempt.deadline_at - now).total_seconds())),
        time_limit_minutes=attempt.time_limit_minutes,
        pass_mark=attempt.pass_mark,
        score=attempt.score,
        passed=attempt.passed,
        answered=sum(1 for item, _ in items if item.answer),
        total=len(items),
    )
    for item, version in items:
        options, choices, correct = _shown(item, version)
        out.questions.append(
            PaperQuestion(
                question_id=item.question_version_id,
                position=item.position,
                kind=version.kind,
                category=item.category,
                stem=version.stem,
                options=options,
                choices=choices,
            )
        )
        if graded:
            out.review.append(
                ReviewItem(
                    question_id=item.question_version_id,
                    position=item.position,
                    stem=version.stem,
                    options=options,
                    choices=choices,
                    correct_choices=correct,
                    correct=bool(item.correct),
                    explanation=version.explanation,
                )
            )
    if graded and attempt.breakdown:
        out.breakdown = [
            CategoryResult(
                category=category,
                questions=cell["questions"],
                correct=cell["correct"],
                score=exams_rules.score_of(cell["correct"], cell["questions"]),
            )
            for category, cell in attempt.breakdown.items()
        ]
    return out


async def list_attempts(
    *,
    session: AsyncSession,
    actor: Actor,
    region_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ExamSummary], int]:
    """Officers: attempts in their region, newest first. Brokers: their own."""
    if actor.role == Role.broker:
        require(actor, "exam.take")
        broker = await _broker_of(session, actor)
        where = [col(ExamAttempt.broker_id) == (broker.id if broker else -1)]
    else:
        prefix = region_code or actor.region_code
        require(actor, "exam.view", region_code=prefix)
        where = [col(ExamAttempt.village_code).startswith(prefix)]
    rows, total = await fetch_page(
        session,
        ExamAttempt,
        where,
        order_by=col(ExamAttempt.id).desc(),  # ids grow with start time
        limit=limit,
        offset=offset,
    )
    return [summary(a) for a in rows], total


def summary(attempt: ExamAttempt) -> ExamSummary:
    assert attempt.id is not None
    candidate = (
        f"application:{attempt.application_id}"
        if attempt.application_id is not None
        else f"broker:{attempt.broker_id}"
    )
    return ExamSummary(
        id=attempt.id,
        candidate=candidate,
        candidate_name=attempt.candidate_name,
        village_code=attempt.village_code,
        attempt_no=attempt.attempt_no,
        status=attempt.status,
        started_at=attempt.started_at,
        score=attempt.score,
        passed=attempt.passed,
    )
