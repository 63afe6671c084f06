"""Scoring runs, rankings, explanations, decisions, appeals and the payment gate."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, Role, require
from marketplace.brokers.models import Broker
from marketplace.clock import local, utcnow
from marketplace.db import fetch_page
from marketplace.errors import Forbidden, Invalid, NotFound
from marketplace.scoring import inputs as sources
from marketplace.scoring import rules
from marketplace.scoring.models import (
    BrokerScore,
    ComponentPublic,
    ScoreAppeal,
    ScoreDecision,
    ScoreExplained,
    ScoreModel,
    ScorePublic,
    ScoreRun,
)
from marketplace.scoring.models import Suggestion as SuggestionPublic
from marketplace.scoring.rules import Component, Lines, Period, Scored


def _district(code: str) -> str:
    return code[:6]


# ------------------------------------------------------------------- score models


async def model_for(session: AsyncSession, period: Period) -> ScoreModel:
    """The model in force for ``period``: the newest version effective by then."""
    row = (
        await session.execute(
            select(ScoreModel)
            .where(col(ScoreModel.effective_from) <= str(period))
            .order_by(col(ScoreModel.effective_from).desc(), col(ScoreModel.version).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{period} 之前没有生效的积分规则，请市级管理员先设置")
    return row


async def list_models(session: AsyncSession) -> list[ScoreModel]:
    rows = await session.execute(select(ScoreModel).order_by(col(ScoreModel.version)))
    return list(rows.scalars())


async def create_model(
    *,
    session: AsyncSession,
    actor: Actor,
    rules_json: dict[str, Any],
    effective_from: str,
    note: str = "",
) -> ScoreModel:
    """A new version; earlier periods keep being scored with the version they had."""
    require(actor, "score.model")
    rules.parse_model(rules_json)
    Period.parse(effective_from, "effective_from")
    latest = (await session.execute(select(func.max(col(ScoreModel.version))))).scalar_one()
    model = ScoreModel(
        version=(latest or 0) + 1,
        effective_from=effective_from,
        rules=rules_json,
        note=note,
        created_by=actor.user_id,
    )
    session.add(model)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="score.model_create",
        object_type="score_model",
        object_id=model.id,
        detail={"version": model.version, "effective_from": effective_from},
    )
    return model


# ---------------------------------------------------------------------- compute


def digest(items: list[rules.BrokerInputs], model: ScoreModel) -> str:
    payload = json.dumps(
        {"model": model.version, "inputs": {i.broker_id: i.as_json() for i in items}},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class RunResult:
    run: ScoreRun
    scored: int


async def compute(
    *,
    session: AsyncSession,
    actor: Actor,
    period: Period,
    trigger: str = "api",
    now: datetime | None = None,
    requested_by: int | None = None,
) -> RunResult:
    """Score every broker in service for ``period`` with the model in force for it.
    Idempotent: the same inputs give the same stored scores (rows are updated in
    place, so appeals and decisions keep pointing at them). ``requested_by`` is the
    user behind a system-run recompute (an upheld appeal)."""
    require(actor, "score.compute")
    now = now or utcnow()
    if period.start > now:
        raise Invalid("period", "不能为尚未开始的期间计分")
    model = await model_for(session, period)
    model_rules = rules.parse_model(model.rules)
    brokers = await sources.brokers_in_period(session, period)
    items = await sources.gather(session, period, brokers, now)
    run = ScoreRun(
        period=str(period),
        model_id=model.id or 0,
        trigger=trigger,
        inputs_digest=digest(items, model),
        broker_count=len(items),
        actor_user_id=requested_by or actor.user_id,
        started_at=now,
    )
    session.add(run)
    await session.flush()
    prior = rules.priors(items)
    scored = {item.broker_id: rules.score_broker(model_rules, item, prior) for item in items}
    village = {b.id: b.village_code for b in brokers}
    previous_bottom = await _bottom_of(session, period.previous())
    placed = _place(model_rules, scored, village, previous_bottom)
    existing = {
        row.broker_id: row
        for row in (
            await session.execute(select(BrokerScore).where(col(BrokerScore.period) == str(period)))
        ).scalars()
    }
    by_input = {item.broker_id: item for item in items}
    for broker_id, result in scored.items():
        place = placed[broker_id]
        values: dict[str, Any] = {
            "model_id": model.id or 0,
            "run_id": run.id or 0,
            "district_code": _district(village[broker_id]),
            "village_code": village[broker_id],
            "score": result.score,
            "grade": result.grade,
            "passed": result.passed,
            "assessment_rule": f"总分 ≥ {model_rules.pass_line:g} 为合格（规则第 {model.version} 版）",
            "rank_district": place.rank_district,
            "district_count": place.district_count,
            "rank_city": place.rank_city,
            "city_count": place.city_count,
            "in_top": place.in_top,
            "in_bottom": place.in_bottom,
            # A candidate for key broker must also have passed the assessment.
            "promotion_candidate": place.in_top and result.passed,
            "elimination_candidate": place.in_bottom and broker_id in previous_bottom,
            "components": [c.as_json() for c in result.components],
            "inputs": by_input[broker_id].as_json(),
            "computed_at": now,
        }
        row = existing.pop(broker_id, None)
        if row is None:
            row = BrokerScore(period=str(period), broker_id=broker_id, **values)
        else:
            for key, value in values.items():
                setattr(row, key, value)
        session.add(row)
    # Brokers no longer in service keep no score for a period recomputed later,
    # unless someone already acted on it (an appeal or a decision points at it).
    for stale in existing.values():
        if not await _referenced(session, stale.id or 0):
            await session.delete(stale)
    run.finished_at = utcnow()
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="score.compute",
        object_type="score_run",
        object_id=run.id,
        detail={"period": str(period), "brokers": len(items), "digest": run.inputs_digest},
    )
    return RunResult(run=run, scored=len(items))


async def _referenced(session: AsyncSession, score_id: int) -> bool:
    for model in (ScoreAppeal, ScoreDecision):
        found = (
            await session.execute(
                select(func.count()).select_from(model).where(col(model.score_id) == score_id)
            )
        ).scalar_one()
        if found:
            return True
    return False


async def _bottom_of(session: AsyncSession, period: Period) -> set[int]:
    rows = await session.execute(
        select(col(BrokerScore.broker_id)).where(
            col(BrokerScore.period) == str(period), col(BrokerScore.in_bottom)
        )
    )
    return set(rows.scalars())


@dataclass(frozen=True)
class _Place:
    rank_district: int
    district_count: int
    rank_city: int
    city_count: int
    in_top: bool
    in_bottom: bool


def _place(
    model: rules.ScoreModelRules,
    scored: dict[int, Scored],
    village: dict[int, str],
    previous_bottom: set[int],
) -> dict[int, _Place]:
    city_ranks = rules.competition_ranks({b: s.score for b, s in scored.items()})
    districts: dict[str, dict[int, float]] = defaultdict(dict)
    for broker_id, result in scored.items():
        districts[_district(village[broker_id])][broker_id] = result.score
    out: dict[int, _Place] = {}
    for members in districts.values():
        ranks = rules.competition_ranks(members)
        line = rules.lines(list(members.values()), model.promotion_share, model.elimination_share)
        for broker_id, score in members.items():
            out[broker_id] = _Place(
                rank_district=ranks[broker_id],
                district_count=len(members),
                rank_city=city_ranks[broker_id],
                city_count=len(scored),
                in_top=rules.in_top(score, line),
                in_bottom=rules.in_bottom(score, line, len(members)),
            )
    return out


# ------------------------------------------------------------------------ reading


async def get_score(session: AsyncSession, score_id: int) -> BrokerScore:
    row = await session.get(BrokerScore, score_id)
    if row is None:
        raise NotFound("没有这条积分记录")
    return row


async def _broker_of_actor(session: AsyncSession, actor: Actor) -> Broker | None:
    if actor.role != Role.broker or actor.user_id is None:
        return None
    return (
        await session.execute(select(Broker).where(col(Broker.user_id) == actor.user_id))
    ).scalar_one_or_none()


async def check_read(session: AsyncSession, actor: Actor, score: BrokerScore) -> None:
    """A broker reads their own scores; officers read their region's."""
    if actor.role == Role.broker:
        own = await _broker_of_actor(session, actor)
        if own is None or own.id != score.broker_id:
            raise Forbidden("只能查看本人的积分")
        return
    require(actor, "score.view", region_code=score.village_code)


async def list_scores(
    *,
    session: AsyncSession,
    actor: Actor,
    period: Period,
    region_code: str | None,
    limit: int,
    offset: int,
) -> tuple[list[BrokerScore], int]:
    region = region_code or actor.region_code
    require(actor, "score.view", region_code=region)
    where = [col(BrokerScore.period) == str(period)]
    if len(region) > 2:
        where.append(col(BrokerScore.village_code).startswith(region))
    order = (col(BrokerScore.score).desc(), col(BrokerScore.broker_id))
    return await fetch_page(session, BrokerScore, where, order_by=order, limit=limit, offset=offset)


async def broker_history(
    *, session: AsyncSession, actor: Actor, broker_id: int, months: int = 12
) -> list[BrokerScore]:
    broker = await session.get(Broker, broker_id)
    if broker is None:
        raise NotFound("没有这位经纪人")
    if actor.role == Role.broker:
        own = await _broker_of_actor(session, actor)
        if own is None or own.id != broker_id:
            raise Forbidden("只能查看本人的积分")
    else:
        require(actor, "score.view", region_code=broker.village_code)
    rows = await session.execute(
        select(BrokerScore)
        .where(col(BrokerScore.broker_id) == broker_id)
        .order_by(col(BrokerScore.period).desc())
        .limit(months)
    )
    return list(reversed(list(rows.scalars())))


def components_of(score: BrokerScore) -> list[Component]:
    return [
        Component(
            name=c["name"],
            value=c["value"],
            weight=c["weight"],
            points=c["points"],
            explanation=c["explanation"],
            num=c.get("num"),
            den=c.get("den"),
        )
        for c in score.components
    ]


async def district_lines(
    session: AsyncSession, score: BrokerScore
) -> tuple[Lines, rules.ScoreModelRules]:
    model = await session.get(ScoreModel, score.model_id)
    assert model is not None
    model_rules = rules.parse_model(model.rules)
    values = (
        await session.execute(
            select(col(BrokerScore.score)).where(
                col(BrokerScore.period) == score.period,
                col(BrokerScore.district_code) == score.district_code,
            )
        )
    ).scalars()
    return (
        rules.lines(list(values), model_rules.promotion_share, model_rules.elimination_share),
        model_rules,
    )


@dataclass(frozen=True)
class Explained:
    score: BrokerScore
    lines: Lines
    to_promotion: float | None
    to_safety: float | None
    promotion_suggestions: list[rules.Suggestion]
    safety_suggestions: list[rules.Suggestion]


async def explain(session: AsyncSession, score: BrokerScore) -> Explained:
    """Where the broker stands against the promotion and elimination lines, and what
    would close each gap."""
    line, model_rules = await district_lines(session, score)
    scored = Scored(score.broker_id, score.score, components_of(score), score.grade, score.passed)
    to_promotion = None
    if line.promotion is not None and score.score < line.promotion:
        to_promotion = round(line.promotion - score.score, 2)
    to_safety = None
    if score.in_bottom and line.elimination is not None:
        to_safety = round(line.elimination - score.score + 0.01, 2)
    return Explained(
        score=score,
        lines=line,
        to_promotion=to_promotion,
        to_safety=to_safety,
        promotion_suggestions=rules.close_gap(model_rules, scored, to_promotion or 0)[:3],
        safety_suggestions=rules.close_gap(model_rules, scored, to_safety or 0)[:3],
    )


# ------------------------------------------------------------------- payment gate


@dataclass(frozen=True)
class Assessment:
    broker_id: int
    period: str
    passed: bool
    score: float
    rule: str


async def assessment(session: AsyncSession, broker_id: int, period: Period) -> Assessment | None:
    """The period's assessment result billing uses to make subsidies payable;
    ``None`` until the period has been scored."""
    row = (
        await session.execute(
            select(BrokerScore).where(
                col(BrokerScore.broker_id) == broker_id, col(BrokerScore.period) == str(period)
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return Assessment(broker_id, row.period, row.passed, row.score, row.assessment_rule)


def to_public(score: BrokerScore) -> ScorePublic:
    return ScorePublic(
        id=score.id or 0,
        broker_id=score.broker_id,
        period=score.period,
        score=score.score,
        grade=score.grade,
        passed=score.passed,
        assessment_rule=score.assessment_rule,
        rank=score.rank_district,
        rank_city=score.rank_city,
        district_count=score.district_count,
        city_count=score.city_count,
        promotion_candidate=score.promotion_candidate,
        elimination_candidate=score.elimination_candidate,
        components=[
            ComponentPublic(
                name=c["name"],
                label=c.get("label") or rules.LABELS.get(c["name"], c["name"]),
                value=c["value"],
                weight=c["weight"],
                points=c["points"],
                explanation=c["explanation"],
            )
            for c in score.components
        ],
    )


def to_explained(explained: Explained) -> ScoreExplained:
    base = to_public(explained.score).model_dump()

    def shape(items: list[rules.Suggestion]) -> list[SuggestionPublic]:
        return [
            SuggestionPublic(
                component=s.component, units=s.units, total_gain=s.total_gain, message=s.message
            )
            for s in items
        ]

    return ScoreExplained(
        **base,
        promotion_line=explained.lines.promotion,
        elimination_line=explained.lines.elimination,
        gap_to_promotion=explained.to_promotion,
        gap_to_safety=explained.to_safety,
        to_promotion=shape(explained.promotion_suggestions),
        to_safety=shape(explained.safety_suggestions),
        inputs=explained.score.inputs,
    )


async def monthly_due(session: AsyncSession, now: datetime) -> Period | None:
    """The month just ended, if no run has scored it since it ended: what the
    worker's monthly job computes (once; later runs are by hand or by appeal)."""
    today = local(now).date()
    period = Period(today.year, today.month).previous()
    done = (
        await session.execute(
            select(func.count())
            .select_from(ScoreRun)
            .where(col(ScoreRun.period) == str(period), col(ScoreRun.started_at) >= period.end)
        )
    ).scalar_one()
    return None if done else period
