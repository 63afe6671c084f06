"""What people do with scores: confirm or overrule candidates, appeal, review the year."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import SYSTEM, Actor, Role, require
from marketplace.brokers import service as broker_service
from marketplace.brokers.models import Broker, BrokerStatus
from marketplace.clock import utcnow
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.notifications import service as inbox
from marketplace.scoring import service
from marketplace.scoring.models import AnnualReview, BrokerScore, ScoreAppeal, ScoreDecision
from marketplace.scoring.rules import Period

OUTCOMES = ("优秀", "称职", "基本称职", "不称职")


def _reason(text: str | None, field: str = "reason") -> str:
    text = (text or "").strip()
    if not text:
        raise Invalid(field, "请填写理由")
    if len(text) > 500:
        raise Invalid(field, "理由不能超过 500 字")
    return text


async def _notify_broker(session: AsyncSession, broker_id: int, title: str, body: str) -> None:
    broker = await session.get(Broker, broker_id)
    if broker is not None and broker.user_id is not None:
        await inbox.send(
            session=session, user_id=broker.user_id, title=title, body=body, link="/scores/me"
        )


# ----------------------------------------------------- promotion and elimination


async def decide_candidate(
    *,
    session: AsyncSession,
    actor: Actor,
    score_id: int,
    kind: str,
    decision: str,
    reason: str | None,
) -> ScoreDecision:
    """A district admin confirms or overrules a candidate. Confirming an elimination
    eliminates the broker (their villages' coverage drops at once); confirming a
    promotion makes them a key broker (重点骨干)."""
    if kind not in ("promotion", "elimination"):
        raise Invalid("kind", "应为 promotion（重点骨干）或 elimination（淘汰）")
    if decision not in ("confirm", "overrule"):
        raise Invalid("decision", "应为 confirm（确认）或 overrule（否决）")
    text = _reason(reason)
    score = await service.get_score(session, score_id)
    require(actor, "score.decide", region_code=score.village_code)
    candidate = score.promotion_candidate if kind == "promotion" else score.elimination_candidate
    if not candidate:
        raise Conflict("这位经纪人本期不是该类候选人", field="kind")
    taken = (
        await session.execute(
            select(ScoreDecision).where(
                col(ScoreDecision.score_id) == score_id, col(ScoreDecision.kind) == kind
            )
        )
    ).scalar_one_or_none()
    if taken is not None:
        raise Conflict("本期已对该候选人作出决定", field="kind")
    row = ScoreDecision(
        score_id=score_id,
        kind=kind,
        decision="confirmed" if decision == "confirm" else "overruled",
        reason=text,
        decided_by=actor.user_id or 0,
    )
    session.add(row)
    broker = await session.get(Broker, score.broker_id)
    if broker is None:
        raise NotFound("没有这位经纪人")
    if decision == "confirm" and kind == "elimination":
        await _eliminate(session, actor, broker, f"{score.period} 积分考核淘汰：{text}")
    if decision == "confirm" and kind == "promotion":
        broker.key_broker = True
        session.add(broker)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action=f"score.{kind}_{row.decision}",
        object_type="broker",
        object_id=broker.id,
        region_code=broker.village_code,
        detail={"period": score.period, "score_id": score_id},
    )
    label = "重点骨干" if kind == "promotion" else "淘汰"
    verdict = "确认" if decision == "confirm" else "否决"
    await _notify_broker(
        session, broker.id or 0, f"{score.period} 积分{label}候选：区县已{verdict}", text
    )
    return row


async def _eliminate(session: AsyncSession, actor: Actor, broker: Broker, reason: str) -> None:
    """Through the broker's status (docs/brokers.md): history, disabled login,
    ``broker.status_changed``, the inbox message, and the coverage gap at once."""
    if broker.status == BrokerStatus.eliminated:
        return
    await broker_service.change_status(
        session=session, actor=actor, broker_id=broker.id or 0, action="eliminate", reason=reason
    )


# --------------------------------------------------------------------- appeals


async def appeal(
    *, session: AsyncSession, actor: Actor, score_id: int, reason: str | None
) -> ScoreAppeal:
    """Once per period's score, by the broker it belongs to."""
    text = _reason(reason)
    score = await service.get_score(session, score_id)
    if actor.role != Role.broker:
        raise Forbidden("只有经纪人本人可以申诉")
    await service.check_read(session, actor, score)
    existing = (
        await session.execute(select(ScoreAppeal).where(col(ScoreAppeal.score_id) == score_id))
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict("本期积分已申诉过一次，不能重复申诉", field="score_id")
    row = ScoreAppeal(
        score_id=score_id, broker_id=score.broker_id, reason=text, score_before=score.score
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="score.appeal",
        object_type="score_appeal",
        object_id=row.id,
        region_code=score.village_code,
        detail={"period": score.period},
    )
    return row


async def decide_appeal(
    *,
    session: AsyncSession,
    actor: Actor,
    score_id: int,
    decision: str,
    reason: str | None,
    recompute: bool,
) -> ScoreAppeal:
    """Uphold or dismiss; an upheld appeal may recompute the period (after the
    underlying record was corrected), and the appeal keeps the before and after."""
    if decision not in ("uphold", "dismiss"):
        raise Invalid("decision", "应为 uphold（支持）或 dismiss（驳回）")
    text = _reason(reason)
    score = await service.get_score(session, score_id)
    require(actor, "score.decide", region_code=score.village_code)
    row = (
        await session.execute(select(ScoreAppeal).where(col(ScoreAppeal.score_id) == score_id))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("这条积分没有申诉")
    if row.status != "pending":
        raise Conflict("申诉已经处理过", field="decision")
    row.status = "upheld" if decision == "uphold" else "dismissed"
    row.decision_reason = text
    row.decided_by = actor.user_id
    row.decided_at = utcnow()
    if decision == "uphold" and recompute:
        # The district decides the appeal; the recompute itself is the system's.
        result = await service.compute(
            session=session,
            actor=SYSTEM,
            period=Period.parse(score.period),
            trigger="appeal",
            requested_by=actor.user_id,
        )
        row.recompute_run_id = result.run.id
        await session.refresh(score)
    row.score_after = score.score
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action=f"score.appeal_{row.status}",
        object_type="score_appeal",
        object_id=row.id,
        region_code=score.village_code,
        detail={"period": score.period, "recomputed": row.recompute_run_id is not None},
    )
    verdict = "支持" if row.status == "upheld" else "驳回"
    await _notify_broker(session, score.broker_id, f"{score.period} 积分申诉已{verdict}", text)
    return row


async def pending_appeals(
    *, session: AsyncSession, actor: Actor, region_code: str | None = None
) -> list[tuple[ScoreAppeal, BrokerScore]]:
    region = region_code or actor.region_code
    require(actor, "score.decide", region_code=region)
    rows = await session.execute(
        select(ScoreAppeal, BrokerScore)
        .join(BrokerScore, col(BrokerScore.id) == col(ScoreAppeal.score_id))
        .where(
            col(ScoreAppeal.status) == "pending", col(BrokerScore.village_code).startswith(region)
        )
        .order_by(col(ScoreAppeal.created_at))
    )
    return [(a, s) for a, s in rows.all()]


# --------------------------------------------------------------- annual review


async def _review_row(session: AsyncSession, broker: Broker, year: int) -> AnnualReview:
    row = (
        await session.execute(
            select(AnnualReview).where(
                col(AnnualReview.broker_id) == broker.id, col(AnnualReview.year) == year
            )
        )
    ).scalar_one_or_none()
    return row or AnnualReview(broker_id=broker.id or 0, year=year)


def _year(value: int) -> int:
    if not 2000 <= value <= 2100:
        raise Invalid("year", "年份不合理")
    return value


async def set_targets(
    *, session: AsyncSession, actor: Actor, broker_id: int, year: int, targets: dict[str, float]
) -> AnnualReview:
    """The district's annual targets for a broker (e.g. register update rate 80)."""
    from marketplace.scoring.rules import COMPONENTS

    for name, value in targets.items():
        if name not in COMPONENTS:
            raise Invalid(f"targets.{name}", "未知的考核指标")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise Invalid(f"targets.{name}", "目标应为 0 到 100 之间的数")
    broker = await session.get(Broker, broker_id)
    if broker is None:
        raise NotFound("没有这位经纪人")
    require(actor, "score.decide", region_code=broker.village_code)
    row = await _review_row(session, broker, _year(year))
    if row.outcome is not None:
        raise Conflict("年度评审已完成，不能再修改目标", field="targets")
    row.targets = dict(targets)
    row.targets_set_by = actor.user_id
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="score.annual_targets",
        object_type="annual_review",
        object_id=row.id,
        region_code=broker.village_code,
        detail={"year": year},
    )
    return row


async def record_review(
    *,
    session: AsyncSession,
    actor: Actor,
    broker_id: int,
    year: int,
    outcome: str,
    note: str | None,
) -> AnnualReview:
    """The year's outcome, stored with the year's average score and months scored."""
    if outcome not in OUTCOMES:
        raise Invalid("outcome", "应为 " + "、".join(OUTCOMES) + " 之一")
    broker = await session.get(Broker, broker_id)
    if broker is None:
        raise NotFound("没有这位经纪人")
    require(actor, "score.decide", region_code=broker.village_code)
    row = await _review_row(session, broker, _year(year))
    avg, months = (
        await session.execute(
            select(func.avg(col(BrokerScore.score)), func.count()).where(
                col(BrokerScore.broker_id) == broker_id,
                col(BrokerScore.period) >= f"{year:04d}-01",
                col(BrokerScore.period) <= f"{year:04d}-12",
            )
        )
    ).one()
    row.average_score = None if avg is None else round(float(avg), 2)
    row.months_scored = int(months)
    row.outcome = outcome
    row.note = (note or "").strip()[:1000] or None
    row.decided_by = actor.user_id
    row.decided_at = utcnow()
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="score.annual_review",
        object_type="annual_review",
        object_id=row.id,
        region_code=broker.village_code,
        detail={"year": year, "outcome": outcome},
    )
    await _notify_broker(session, broker_id, f"{year} 年度履职评审结果：{outcome}", row.note or "")
    return row
