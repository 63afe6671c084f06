"""Scoring runs on both databases: idempotent and reproducible, scored with the model
in force for the period, the two-consecutive-periods rule, decisions, appeals, the
annual review and the payment gate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import SYSTEM, Actor
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserActivityDay
from marketplace.brokers.models import Broker, BrokerStatus
from marketplace.db import unit_of_work
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.events import OutboxEvent
from marketplace.regions import service as regions
from marketplace.regions.models import Region
from marketplace.scoring import decisions, inputs, public, rules, service
from marketplace.scoring.models import BrokerScore
from marketplace.scoring.rules import Period
from tests.conftest import YUZHONG

OCT, NOV = Period(2026, 10), Period(2026, 11)
NOW = datetime(2026, 12, 2, 1, 0, tzinfo=Period(2026, 12).start.tzinfo)


@dataclass
class Scene:
    sessions: async_sessionmaker[AsyncSession]
    brokers: list[int]  # ten brokers of one district, best first by activity
    actors: list[Actor]
    district_admin: Actor
    village_of: dict[int, str]


async def _villages(session: AsyncSession, count: int) -> list[str]:
    rows = await session.execute(
        select(col(Region.code))
        .where(col(Region.level) == "village", col(Region.code).startswith(YUZHONG))
        .order_by(col(Region.code))
        .limit(count)
    )
    return list(rows.scalars())


async def _activity(
    sessions: async_sessionmaker[AsyncSession], user_id: int, period: Period, days: int
) -> None:
    """``days`` active weekdays at the start of the period."""
    async with unit_of_work(sessions) as session:
        day, added = period.first_day, 0
        while added < days:
            if day.weekday() < 5:
                session.add(UserActivityDay(user_id=user_id, day=day))
                added += 1
            day += timedelta(days=1)


@pytest.fixture
async def scene(sessions: async_sessionmaker[AsyncSession], make_account: Any) -> Scene:
    async with sessions() as session:
        villages = await _villages(session, 10)
    brokers, actors, village_of = [], [], {}
    for i, village in enumerate(villages):
        account = await make_account("broker", village, username=f"score_broker_{i}")
        async with unit_of_work(sessions) as session:
            broker = (
                await session.execute(select(Broker).where(col(Broker.user_id) == account.id))
            ).scalar_one()
            broker.name = "张三明" if i == 0 else f"李{'一二三四五六七八九'[i - 1]}华"
            broker.certified_at = datetime(2026, 9, 1, tzinfo=NOW.tzinfo)
            session.add(broker)
        assert broker.id is not None
        brokers.append(broker.id)
        actors.append(accounts.actor_for(account.user))
        village_of[broker.id] = village
        # Broker i is active 20 - 2i weekdays in each month: a strict order.
        for period in (OCT, NOV):
            await _activity(sessions, account.id, period, 20 - 2 * i)
    admin = await make_account("district_admin", YUZHONG)
    return Scene(sessions, brokers, actors, accounts.actor_for(admin.user), village_of)


async def _compute(scene: Scene, period: Period) -> service.RunResult:
    async with unit_of_work(scene.sessions) as session:
        return await service.compute(session=session, actor=SYSTEM, period=period, now=NOW)


async def _scores(scene: Scene, period: Period) -> dict[int, BrokerScore]:
    async with scene.sessions() as session:
        rows = await session.execute(
            select(BrokerScore).where(col(BrokerScore.period) == str(period))
        )
        return {row.broker_id: row for row in rows.scalars()}


async def test_runs_are_idempotent_and_reproducible(scene: Scene) -> None:
    first = await _compute(scene, NOV)
    before = await _scores(scene, NOV)
    second = await _compute(scene, NOV)
    after = await _scores(scene, NOV)
    assert first.scored == second.scored == 10
    assert first.run.inputs_digest == second.run.inputs_digest
    for broker_id, row in before.items():
        again = after[broker_id]
        assert again.id == row.id  # updated in place, so appeals keep pointing at it
        assert (again.score, again.rank_district, again.components, again.inputs) == (
            row.score,
            row.rank_district,
            row.components,
            row.inputs,
        )
    # The inputs are recorded: login days of the best broker.
    best = after[scene.brokers[0]]
    assert best.inputs["rates"]["login_activity"][0] == 20
    assert best.rank_district == 1
    assert after[scene.brokers[-1]].rank_district == 10
    # Changing an input changes the digest: the run shows what it saw.
    async with unit_of_work(scene.sessions) as session:
        day = NOV.last_day - timedelta(days=(NOV.last_day.weekday() - 4) % 7)
        session.add(UserActivityDay(user_id=scene.actors[9].user_id or 0, day=day))
    third = await _compute(scene, NOV)
    assert third.run.inputs_digest != first.run.inputs_digest


async def test_a_period_is_scored_with_the_model_in_force(scene: Scene) -> None:
    city = Actor(user_id=None, username="city", role="city_admin", region_code="50")
    async with unit_of_work(scene.sessions) as session:
        only_logins = {
            **rules.DEFAULT_MODEL,
            "components": {"login_activity": {"weight": 100, "min_count": 1}},
        }
        model = await service.create_model(
            session=session, actor=city, rules_json=only_logins, effective_from="2026-11"
        )
        assert model.version == 2
    await _compute(scene, OCT)
    await _compute(scene, NOV)
    oct_scores, nov_scores = await _scores(scene, OCT), await _scores(scene, NOV)
    best = scene.brokers[0]
    assert [c["name"] for c in nov_scores[best].components][:1] == ["login_activity"]
    assert len(oct_scores[best].components) > len(nov_scores[best].components)
    # November: 20 active of 21 working days, nothing else counts.
    assert nov_scores[best].score == pytest.approx(20 / 21 * 100, abs=0.01)
    # A broker may not set the model; a bad model names its field.
    async with unit_of_work(scene.sessions) as session:
        with pytest.raises(Forbidden):
            await service.create_model(
                session=session,
                actor=scene.actors[0],
                rules_json=only_logins,
                effective_from="2026-12",
            )
        with pytest.raises(Invalid) as err:
            await service.create_model(
                session=session, actor=city, rules_json={"components": {}}, effective_from="2026-12"
            )
        assert err.value.field == "components"


async def test_register_update_counts_records_live_at_the_period_end(
    scene: Scene, cipher: Any
) -> None:
    from marketplace.workers import service as workers
    from marketplace.workers.models import WorkerCreate
    from tests.marketplace.test_workers_rules import make_id

    broker_actor = scene.actors[0]
    async with unit_of_work(scene.sessions) as session:
        for n in range(3):
            await workers.register(
                session=session,
                actor=broker_actor,
                cipher=cipher,
                data=WorkerCreate(
                    name="王" + "甲乙丙"[n],
                    id_number=make_id(date(1990, 1, 1 + n), n),
                    hukou_village_code=scene.village_of[scene.brokers[0]],
                ),
            )
    now = datetime.now(NOW.tzinfo)
    period = Period(now.astimezone(rules.SHANGHAI).year, now.astimezone(rules.SHANGHAI).month)
    async with scene.sessions() as session:
        brokers = await inputs.brokers_in_period(session, period)
        counts = await inputs.register_update(session, period, brokers)
    assert counts[scene.brokers[0]] == rules.Counts(3, 3)
    assert counts[scene.brokers[1]] == rules.Counts(0, 0)


async def _set_activity(scene: Scene, index: int, period: Period, days: int) -> None:
    user_id = scene.actors[index].user_id
    async with unit_of_work(scene.sessions) as session:
        await session.execute(
            delete(UserActivityDay).where(
                col(UserActivityDay.user_id) == user_id,
                col(UserActivityDay.day) >= period.first_day,
                col(UserActivityDay.day) <= period.last_day,
            )
        )
    await _activity(scene.sessions, user_id or 0, period, days)


async def test_elimination_needs_two_consecutive_bottom_periods(scene: Scene) -> None:
    worst, next_worst = scene.brokers[9], scene.brokers[8]
    await _compute(scene, OCT)
    # November: October's worst broker works every day; broker 8 not at all.
    await _set_activity(scene, 9, NOV, 20)
    await _set_activity(scene, 8, NOV, 0)
    await _compute(scene, NOV)
    oct_, nov = await _scores(scene, OCT), await _scores(scene, NOV)
    assert oct_[worst].in_bottom
    assert not oct_[worst].elimination_candidate
    assert nov[next_worst].in_bottom
    assert not nov[next_worst].elimination_candidate
    assert not nov[worst].in_bottom
    # The best broker is in the top share but, under 60, not a candidate for key broker.
    assert nov[scene.brokers[0]].in_top
    assert nov[scene.brokers[0]].score < 60
    assert not nov[scene.brokers[0]].promotion_candidate
    # Broker 8 at the bottom in October too: now a candidate for elimination.
    await _set_activity(scene, 8, OCT, 0)
    await _compute(scene, OCT)
    await _compute(scene, NOV)
    assert (await _scores(scene, OCT))[next_worst].in_bottom
    assert (await _scores(scene, NOV))[next_worst].elimination_candidate


async def test_confirmed_elimination_removes_the_broker_from_coverage(scene: Scene) -> None:
    await _compute(scene, OCT)
    await _compute(scene, NOV)
    worst = scene.brokers[9]
    scores = await _scores(scene, NOV)
    assert scores[worst].elimination_candidate
    village = scene.village_of[worst]
    async with scene.sessions() as session:
        assert (await regions.public(session=session, code=village)).active_brokers == 1
    async with unit_of_work(scene.sessions) as session:
        with pytest.raises(Invalid) as err:
            await decisions.decide_candidate(
                session=session,
                actor=scene.district_admin,
                score_id=scores[worst].id or 0,
                kind="elimination",
                decision="confirm",
                reason="  ",
            )
        assert err.value.field == "reason"
    async with unit_of_work(scene.sessions) as session:
        await decisions.decide_candidate(
            session=session,
            actor=scene.district_admin,
            score_id=scores[worst].id or 0,
            kind="elimination",
            decision="confirm",
            reason="连续两期末位，经区县复核确认",
        )
    async with scene.sessions() as session:
        broker = await session.get(Broker, worst)
        assert broker is not None
        assert broker.status == BrokerStatus.eliminated
        assert (await regions.public(session=session, code=village)).active_brokers == 0
        events = (
            await session.execute(
                select(OutboxEvent).where(col(OutboxEvent.name) == "broker.status_changed")
            )
        ).scalars()
        assert any(e.payload["broker_id"] == worst for e in events)
    # Decided once; a broker who is no candidate cannot be decided on.
    async with unit_of_work(scene.sessions) as session:
        with pytest.raises(Conflict):
            await decisions.decide_candidate(
                session=session,
                actor=scene.district_admin,
                score_id=scores[worst].id or 0,
                kind="elimination",
                decision="overrule",
                reason="再议",
            )
        with pytest.raises(Conflict):
            await decisions.decide_candidate(
                session=session,
                actor=scene.district_admin,
                score_id=scores[scene.brokers[4]].id or 0,
                kind="promotion",
                decision="confirm",
                reason="表现好",
            )


async def test_appeal_once_and_a_decided_appeal_may_recompute(scene: Scene) -> None:
    await _compute(scene, NOV)
    score = (await _scores(scene, NOV))[scene.brokers[5]]
    async with unit_of_work(scene.sessions) as session:
        with pytest.raises(Forbidden):  # not the broker's own score
            await decisions.appeal(
                session=session, actor=scene.actors[4], score_id=score.id or 0, reason="不对"
            )
    async with unit_of_work(scene.sessions) as session:
        await decisions.appeal(
            session=session,
            actor=scene.actors[5],
            score_id=score.id or 0,
            reason="有 4 天登录未计入",
        )
    async with unit_of_work(scene.sessions) as session:
        with pytest.raises(Conflict):
            await decisions.appeal(
                session=session, actor=scene.actors[5], score_id=score.id or 0, reason="再申诉"
            )
    # The missing days are restored; the district upholds and recomputes.
    await _activity(scene.sessions, scene.actors[5].user_id or 0, Period(2026, 11), 0)
    async with unit_of_work(scene.sessions) as session:
        existing = set(
            (
                await session.execute(
                    select(col(UserActivityDay.day)).where(
                        col(UserActivityDay.user_id) == scene.actors[5].user_id
                    )
                )
            ).scalars()
        )
        day, added = NOV.first_day, 0
        while added < 4:
            if day.weekday() < 5 and day not in existing:
                session.add(UserActivityDay(user_id=scene.actors[5].user_id or 0, day=day))
                added += 1
            day += timedelta(days=1)
    async with unit_of_work(scene.sessions) as session:
        appeal = await decisions.decide_appeal(
            session=session,
            actor=scene.district_admin,
            score_id=score.id or 0,
            decision="uphold",
            reason="核实属实",
            recompute=True,
        )
    assert appeal.status == "upheld"
    assert appeal.recompute_run_id is not None
    assert appeal.score_after is not None
    assert appeal.score_before is not None
    assert appeal.score_after > appeal.score_before
    async with unit_of_work(scene.sessions) as session:
        with pytest.raises(Conflict):
            await decisions.decide_appeal(
                session=session,
                actor=scene.district_admin,
                score_id=score.id or 0,
                decision="dismiss",
                reason="重复",
                recompute=False,
            )


async def test_payment_gate_and_annual_review(scene: Scene) -> None:
    async with scene.sessions() as session:
        assert await service.assessment(session, scene.brokers[0], NOV) is None
    await _compute(scene, OCT)
    await _compute(scene, NOV)
    async with scene.sessions() as session:
        gate = await service.assessment(session, scene.brokers[0], NOV)
    assert gate is not None
    assert gate.passed == (gate.score >= 60)
    assert "60" in gate.rule
    async with unit_of_work(scene.sessions) as session:
        await decisions.set_targets(
            session=session,
            actor=scene.district_admin,
            broker_id=scene.brokers[0],
            year=2026,
            targets={"register_update": 80},
        )
        with pytest.raises(Invalid) as err:
            await decisions.set_targets(
                session=session,
                actor=scene.district_admin,
                broker_id=scene.brokers[0],
                year=2026,
                targets={"charm": 10},
            )
        assert err.value.field == "targets.charm"
    async with unit_of_work(scene.sessions) as session:
        review = await decisions.record_review(
            session=session,
            actor=scene.district_admin,
            broker_id=scene.brokers[0],
            year=2026,
            outcome="优秀",
            note=None,
        )
    scores = [(await _scores(scene, p))[scene.brokers[0]].score for p in (OCT, NOV)]
    assert review.months_scored == 2
    assert review.average_score == pytest.approx(sum(scores) / 2, abs=0.01)
    async with scene.sessions() as session:
        shown = await public.reviews(session, YUZHONG, 2026)
    assert [(r.name, r.outcome) for r in shown] == [("张*明", "优秀")]
    async with unit_of_work(scene.sessions) as session:
        with pytest.raises(NotFound):
            await decisions.record_review(
                session=session,
                actor=scene.district_admin,
                broker_id=999_999,
                year=2026,
                outcome="称职",
                note=None,
            )


async def test_public_ranking_masks_names(scene: Scene) -> None:
    await _compute(scene, NOV)
    async with scene.sessions() as session:
        rows = await public.ranking(session, YUZHONG, NOV)
        everyone = await public.ranking(session, None, NOV)
    assert [r.rank for r in rows] == list(range(1, 11))
    assert rows[0].name == "张*明"
    assert len(everyone) == 10
    assert all("*" in r.name for r in rows)
    assert public.mask_name("欧阳小明") == "欧**明"
    assert public.mask_name("王五") == "王*"
    assert public.mask_name("") == "*"
