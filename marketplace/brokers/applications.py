"""Broker applications: the public submission, the review chain, and the hooks the
training and exam modules call (``list_in_training``, ``record_exam_passed``).

The chain's legal moves live in ``rules.TRANSITIONS``; this module checks region
scope, writes the decision row (who, when, why) and the audit entry, and on the final
step hands over to ``certification.certify``. docs/brokers.md tells the whole story.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, in_scope, require
from marketplace.brokers import certification, rules
from marketplace.brokers.models import (
    ApplicationDecision,
    ApplicationPublic,
    ApplicationStatus,
    ApplicationTracked,
    Background,
    Broker,
    BrokerApplication,
    BrokerStatus,
    DecisionPublic,
)
from marketplace.brokers.paging import page
from marketplace.clock import local, utcnow
from marketplace.crypto import DataCipher
from marketplace.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from marketplace.regions.models import Region, RegionLevel
from marketplace.workers.identity import mask, parse_mobile, parse_resident_id

CTX_ID = "broker_application.id_number"
CTX_PHONE = "broker_application.phone"
# No 0/O, 1/I/L: read aloud over the phone and typed on a keypad without confusion.
TRACKING_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
TRACKING_LENGTH = 10
APPLICANT = "applicant"
MIN_AGE = 18


@dataclass(frozen=True)
class ApplicationInput:
    """The applicant's answers, as typed (checked by ``check_input``)."""

    name: str
    id_number: str
    phone: str
    village_code: str
    background: str
    computer_skills: bool
    smartphone_skills: bool
    enough_time: bool
    not_on_public_payroll: bool
    note: str | None = None


@dataclass(frozen=True)
class Checked:
    name: str
    id_number: str
    phone: str
    village_code: str
    background: str
    note: str | None


def new_tracking_code() -> str:
    return "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(TRACKING_LENGTH))


def normalise_tracking_code(raw: str) -> str:
    return "".join(ch for ch in (raw or "").upper() if ch.isalnum())


def today_local() -> date:
    return local(utcnow()).date()


async def _check_village(session: AsyncSession, code: str) -> None:
    region = await session.get(Region, code) if code else None
    if region is None:
        raise Invalid("village_code", f"村（社区）代码 {code or '（空）'} 不存在")
    if region.level != RegionLevel.village:
        raise Invalid("village_code", f"{code}（{region.name}）不是村（社区）级区划")


async def check_input(session: AsyncSession, data: ApplicationInput) -> Checked:
    """Every field checked in form order; the first problem is reported by name."""
    name = (data.name or "").strip()
    if not name or len(name) > 32:
        raise Invalid("name", "姓名不能为空，且不超过 32 个字")
    identity = parse_resident_id(data.id_number, today=today_local())
    born = identity.birth_date
    today = today_local()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age < MIN_AGE:
        raise Invalid("id_number", f"申请劳务经纪人须年满 {MIN_AGE} 周岁")
    phone = parse_mobile(data.phone)
    await _check_village(session, (data.village_code or "").strip())
    if data.background not in set(Background):
        raise Invalid("background", "请选择人员类别")
    if not data.computer_skills:
        raise Invalid("computer_skills", "劳务经纪人需要会使用电脑，请确认具备电脑操作能力")
    if not data.smartphone_skills:
        raise Invalid("smartphone_skills", "劳务经纪人需要会使用智能手机，请确认具备该能力")
    if not data.enough_time:
        raise Invalid("enough_time", "劳务经纪人需要有足够时间开展服务，请确认")
    if not data.not_on_public_payroll:
        raise Invalid("not_on_public_payroll", "财政供养人员不能申请劳务经纪人，请确认本人不属于")
    note = (data.note or "").strip() or None
    if note is not None and len(note) > 500:
        raise Invalid("note", "备注不能超过 500 个字")
    return Checked(
        name=name,
        id_number=identity.number,
        phone=phone,
        village_code=data.village_code.strip(),
        background=data.background,
        note=note,
    )


def _history(
    application: BrokerApplication,
    *,
    action: str,
    from_status: str | None,
    actor: Actor | None,
    comment: str | None = None,
) -> ApplicationDecision:
    assert application.id is not None
    return ApplicationDecision(
        application_id=application.id,
        action=action,
        from_status=from_status,
        to_status=application.status,
        comment=comment,
        actor_user_id=actor.user_id if actor else None,
        actor_role=(actor.role if actor else APPLICANT),
    )


def _move(application: BrokerApplication, status: str) -> None:
    application.status = status
    application.status_since = utcnow()
    application.updated_at = application.status_since
    if status in rules.FINAL_STATES:
        application.open_id_hash = None  # the ID number may apply again


# --- the applicant ---------------------------------------------------------------------


async def submit(
    *, session: AsyncSession, data: ApplicationInput, cipher: DataCipher, ip: str | None = None
) -> BrokerApplication:
    """A public submission. One open application per ID number (409 otherwise)."""
    checked = await check_input(session, data)
    hashes = cipher.lookup_hashes(checked.id_number)
    open_one = (
        await session.execute(
            select(col(BrokerApplication.id)).where(col(BrokerApplication.open_id_hash).in_(hashes))
        )
    ).first()
    if open_one is not None:
        raise Conflict(
            "该身份证号已有一份正在办理的申请，请用跟踪码和手机号查询进度", field="id_number"
        )
    serving = (
        await session.execute(
            select(col(BrokerApplication.id))
            .join(Broker, col(Broker.id) == col(BrokerApplication.broker_id))
            .where(
                col(BrokerApplication.id_number_hash).in_(hashes),
                col(Broker.status).in_([BrokerStatus.active, BrokerStatus.suspended]),
            )
        )
    ).first()
    if serving is not None:
        # Retired or eliminated brokers may apply again; serving ones need not.
        raise Conflict("该身份证号的持有人已是认证的劳务经纪人，无需再次申请", field="id_number")
    id_hash = cipher.lookup_hash(checked.id_number)
    application = BrokerApplication(
        tracking_code=new_tracking_code(),
        name=checked.name,
        id_number_enc=cipher.encrypt(checked.id_number, context=CTX_ID),
        id_number_hash=id_hash,
        open_id_hash=id_hash,
        phone_enc=cipher.encrypt(checked.phone, context=CTX_PHONE),
        phone_hash=cipher.lookup_hash(checked.phone),
        village_code=checked.village_code,
        background=checked.background,
        computer_skills=True,
        smartphone_skills=True,
        enough_time=True,
        not_on_public_payroll=True,
        note=checked.note,
    )
    try:
        async with session.begin_nested():
            session.add(application)
            await session.flush()
    except IntegrityError:
        # A concurrent submission for the same ID number won the unique open_id_hash.
        raise Conflict(
            "该身份证号已有一份正在办理的申请，请用跟踪码和手机号查询进度", field="id_number"
        ) from None
    session.add(_history(application, action="submit", from_status=None, actor=None))
    await audit.record(
        session=session,
        actor=Actor(user_id=None, username=APPLICANT, role=APPLICANT, region_code="", ip=ip),
        action="broker_application.submit",
        object_type="broker_application",
        object_id=application.id,
        region_code=application.village_code,
    )
    await session.flush()
    return application


async def track(
    *, session: AsyncSession, code: str, phone: str, cipher: DataCipher
) -> BrokerApplication:
    """The applicant's view: both the tracking code and the phone must match. A wrong
    phone reads exactly like an unknown code, so neither can be probed alone."""
    normalised = normalise_tracking_code(code)
    not_found = NotFound("没有找到与该跟踪码和手机号对应的申请，请核对后重试", field="code")
    try:
        digits = parse_mobile(phone)
    except Invalid:
        raise not_found from None
    application = (
        await session.execute(
            select(BrokerApplication).where(col(BrokerApplication.tracking_code) == normalised)
        )
    ).scalar_one_or_none()
    if application is None:
        raise not_found
    if not any(
        hmac.compare_digest(application.phone_hash, h) for h in cipher.lookup_hashes(digits)
    ):
        raise not_found
    return application


async def resubmit(
    *,
    session: AsyncSession,
    code: str,
    phone: str,
    data: ApplicationInput,
    cipher: DataCipher,
    ip: str | None = None,
) -> BrokerApplication:
    """A returned application, corrected by the applicant, goes back to the step that
    asked for more information. The ID number cannot change (it is the person)."""
    application = await track(session=session, code=code, phone=phone, cipher=cipher)
    if application.status != ApplicationStatus.returned or application.returned_from is None:
        raise Conflict("只有被退回的申请才能修改后重新提交", field="status")
    checked = await check_input(session, data)
    if not any(
        hmac.compare_digest(application.id_number_hash, h)
        for h in cipher.lookup_hashes(checked.id_number)
    ):
        raise Invalid("id_number", "身份证号不能修改；如需更换申请人，请重新提交新的申请")
    application.name = checked.name
    application.phone_enc = cipher.encrypt(checked.phone, context=CTX_PHONE)
    application.phone_hash = cipher.lookup_hash(checked.phone)
    application.village_code = checked.village_code
    application.background = checked.background
    application.note = checked.note
    target = application.returned_from
    application.returned_from = None
    application.status_reason = None  # answered; the history keeps it
    _move(application, target)
    session.add(application)
    session.add(
        _history(application, action="resubmit", from_status=ApplicationStatus.returned, actor=None)
    )
    await audit.record(
        session=session,
        actor=Actor(user_id=None, username=APPLICANT, role=APPLICANT, region_code="", ip=ip),
        action="broker_application.resubmit",
        object_type="broker_application",
        object_id=application.id,
        region_code=application.village_code,
    )
    await session.flush()
    return application


# --- officers --------------------------------------------------------------------------


async def get(*, session: AsyncSession, actor: Actor, application_id: int) -> BrokerApplication:
    require(actor, "broker_application.view")
    application = await session.get(BrokerApplication, application_id)
    if application is None:
        raise NotFound(f"申请 {application_id} 不存在", field="id")
    if not in_scope(actor, application.village_code):
        raise Forbidden(
            f"申请人所在村（社区）{application.village_code} 不在您的管辖范围内",
            field="region_code",
        )
    return application


async def history(*, session: AsyncSession, application_id: int) -> list[ApplicationDecision]:
    rows = await session.execute(
        select(ApplicationDecision)
        .where(col(ApplicationDecision.application_id) == application_id)
        .order_by(col(ApplicationDecision.at), col(ApplicationDecision.id))
    )
    return list(rows.scalars())


def _scope_prefix(actor: Actor, region_code: str | None) -> str:
    prefix = region_code or ("" if actor.is_system else actor.region_code)
    if not actor.is_system and not prefix.startswith(actor.region_code):
        raise Forbidden(f"区划 {prefix} 不在您的管辖范围内", field="region_code")
    return prefix


async def list_applications(
    *,
    session: AsyncSession,
    actor: Actor,
    status: str | None = None,
    region_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[BrokerApplication], int]:
    """Applications inside the actor's region, oldest in their state first."""
    require(actor, "broker_application.view")
    prefix = _scope_prefix(actor, region_code)
    where = [col(BrokerApplication.village_code).startswith(prefix)]
    if status:
        if status not in set(ApplicationStatus):
            raise Invalid("status", f"未知的申请状态 {status!r}")
        where.append(col(BrokerApplication.status) == status)
    return await page(
        session,
        BrokerApplication,
        where,
        order_by=(col(BrokerApplication.status_since), col(BrokerApplication.id)),
        limit=limit,
        offset=offset,
    )


async def counts(
    *, session: AsyncSession, actor: Actor, region_code: str | None = None
) -> dict[str, int]:
    """How many applications are in each state inside the region (every state listed)."""
    require(actor, "broker_application.view")
    prefix = _scope_prefix(actor, region_code)
    rows = await session.execute(
        select(col(BrokerApplication.status), func.count())
        .where(col(BrokerApplication.village_code).startswith(prefix))
        .group_by(col(BrokerApplication.status))
    )
    found = {status: int(n) for status, n in rows.all()}
    return {status.value: found.get(status.value, 0) for status in ApplicationStatus}


async def list_in_training(
    *, session: AsyncSession, region_code: str, limit: int = 500, offset: int = 0
) -> tuple[list[BrokerApplication], int]:
    """Applicants in training inside ``region_code`` (a code prefix), oldest first: the
    training module enrols these into sessions. No actor: callers authorise."""
    return await page(
        session,
        BrokerApplication,
        [
            col(BrokerApplication.status) == ApplicationStatus.in_training,
            col(BrokerApplication.village_code).startswith(region_code),
        ],
        order_by=(col(BrokerApplication.status_since), col(BrokerApplication.id)),
        limit=limit,
        offset=offset,
    )


@dataclass
class Outcome:
    application: BrokerApplication
    # Set once, when the decision certified the applicant: the new account's login.
    username: str | None = None
    initial_password: str | None = None


async def decide(
    *,
    session: AsyncSession,
    actor: Actor,
    application_id: int,
    decision: str,
    comment: str | None,
    cipher: DataCipher,
) -> Outcome:
    """One officer decision; the step follows from the state and the officer's role."""
    require(actor, "broker_application.decide")
    application = await get(session=session, actor=actor, application_id=application_id)
    text = rules.check_reason(decision, comment)
    step = rules.step(application.status, decision, actor.role)
    before = application.status
    outcome = Outcome(application=application)
    if step.target == ApplicationStatus.certified:
        outcome.username, outcome.initial_password = await certification.certify(
            session=session, actor=actor, application=application, cipher=cipher
        )
    if step.target == ApplicationStatus.returned:
        application.returned_from = before
    if step.target in (ApplicationStatus.rejected, ApplicationStatus.returned):
        application.status_reason = text
    _move(application, step.target)
    session.add(application)
    session.add(
        _history(application, action=decision, from_status=before, actor=actor, comment=text)
    )
    await audit.record(
        session=session,
        actor=actor,
        action=f"broker_application.{decision}",
        object_type="broker_application",
        object_id=application.id,
        region_code=application.village_code,
        detail={"from": before, "to": step.target},
    )
    await session.flush()
    return outcome


@dataclass
class BulkResult:
    application_id: int
    outcome: Outcome | None = None
    error: DomainError | None = None


async def decide_many(
    *,
    session: AsyncSession,
    actor: Actor,
    application_ids: list[int],
    decision: str,
    comment: str | None,
    cipher: DataCipher,
) -> list[BulkResult]:
    """The same decision on many applications; each in its own savepoint, so one
    refused (out of turn, out of region) leaves the others decided and itself unchanged."""
    require(actor, "broker_application.decide")
    rules.check_reason(decision, comment)  # a missing reason refuses the whole batch
    results: list[BulkResult] = []
    for application_id in dict.fromkeys(application_ids):
        try:
            async with session.begin_nested():
                outcome = await decide(
                    session=session,
                    actor=actor,
                    application_id=application_id,
                    decision=decision,
                    comment=comment,
                    cipher=cipher,
                )
            results.append(BulkResult(application_id, outcome=outcome))
        except DomainError as exc:
            results.append(BulkResult(application_id, error=exc))
    return results


async def record_exam_passed(
    session: AsyncSession, application_id: int, *, attempt_id: int, score: int
) -> BrokerApplication:
    """in_training -> exam_passed, called by the exam module when an attempt passes;
    Conflict in any other state (a second pass, or an applicant not in training)."""
    application = await session.get(BrokerApplication, application_id)
    if application is None:
        raise NotFound(f"申请 {application_id} 不存在", field="application_id")
    if application.status != rules.EXAM_FROM:
        label = rules.STATUS_LABELS.get(application.status, application.status)
        raise Conflict(f"申请当前状态为“{label}”，不能记录考试合格", field="status")
    before = application.status
    application.exam_attempt_id = attempt_id
    application.exam_score = score
    _move(application, rules.EXAM_TO)
    session.add(application)
    session.add(
        ApplicationDecision(
            application_id=application_id,
            action="exam_passed",
            from_status=before,
            to_status=application.status,
            comment=f"考试成绩 {score} 分",
            actor_user_id=None,
            actor_role="system",
        )
    )
    await session.flush()
    return application


def role_queue(role: str) -> list[str]:
    """The states an officer of ``role`` acts on (their review queue)."""
    return rules.states_for_role(role)


def _decision_public(row: ApplicationDecision) -> DecisionPublic:
    return DecisionPublic(
        action=row.action,
        from_status=row.from_status,
        to_status=row.to_status,
        comment=row.comment,
        actor_role=row.actor_role,
        at=row.at,
    )


async def to_public(
    session: AsyncSession,
    application: BrokerApplication,
    cipher: DataCipher,
    *,
    with_history: bool = False,
) -> ApplicationPublic:
    """The officers' view: ID number and phone masked."""
    assert application.id is not None
    rows = await history(session=session, application_id=application.id) if with_history else None
    return ApplicationPublic(
        id=application.id,
        tracking_code=application.tracking_code,
        name=application.name,
        id_number=masked_id(application, cipher),
        phone=masked_phone(application, cipher),
        village_code=application.village_code,
        background=application.background,
        computer_skills=application.computer_skills,
        smartphone_skills=application.smartphone_skills,
        enough_time=application.enough_time,
        not_on_public_payroll=application.not_on_public_payroll,
        note=application.note,
        status=application.status,
        status_since=application.status_since,
        status_reason=application.status_reason,
        returned_from=application.returned_from,
        exam_score=application.exam_score,
        broker_id=application.broker_id,
        submitted_at=application.submitted_at,
        history=[_decision_public(r) for r in rows] if rows is not None else None,
    )


async def to_tracked(
    session: AsyncSession, application: BrokerApplication, cipher: DataCipher
) -> ApplicationTracked:
    """The applicant's view, with every decision (role and reason, never names)."""
    assert application.id is not None
    village = await session.get(Region, application.village_code)
    broker_no = None
    if application.broker_id is not None:
        broker = await session.get(Broker, application.broker_id)
        broker_no = broker.broker_no if broker else None
    rows = await history(session=session, application_id=application.id)
    return ApplicationTracked(
        id=application.id,
        tracking_code=application.tracking_code,
        name=application.name,
        id_number=masked_id(application, cipher),
        village_code=application.village_code,
        village_name=village.name if village else application.village_code,
        background=application.background,
        status=application.status,
        status_label=rules.STATUS_LABELS.get(application.status, application.status),
        status_reason=application.status_reason,
        submitted_at=application.submitted_at,
        broker_no=broker_no,
        history=[_decision_public(r) for r in rows],
    )


def masked_id(application: BrokerApplication, cipher: DataCipher) -> str:
    return mask(cipher.decrypt(application.id_number_enc, context=CTX_ID))


def masked_phone(application: BrokerApplication, cipher: DataCipher) -> str:
    return mask(cipher.decrypt(application.phone_enc, context=CTX_PHONE))


__all__ = [
    "ApplicationInput",
    "Outcome",
    "counts",
    "decide",
    "get",
    "history",
    "list_applications",
    "list_in_training",
    "record_exam_passed",
    "resubmit",
    "submit",
    "track",
]
