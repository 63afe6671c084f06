"""Recommendations to placements: attribution, consent and scope refusals, the order of
states, the events, the first-wage follow-up and the job-match rate.

SQL that differs between the databases (the partial unique index, row locks, FILTER
aggregates, the prefilter's ordering) runs on both; plain rule checks on SQLite only."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import Actor
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.dispatcher import Registry, drain
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.events import OutboxEvent
from marketplace.placements import candidates, followup, queries, rate, service
from marketplace.placements import demo as placements_demo
from marketplace.placements.models import (
    ArrearsCase,
    Recommendation,
    RecommendationCreate,
    StatusChange,
    WageReportCreate,
    WorkerOccupation,
)
from marketplace.workers import service as workers
from marketplace.workers.models import DeleteReason
from tests.marketplace import placements_scene
from tests.marketplace.placements_scene import Scene


@pytest.fixture
async def scene(
    sessions: async_sessionmaker[AsyncSession], make_account: Any, cipher: DataCipher
) -> Scene:
    return await placements_scene.build(sessions, make_account, cipher)


async def recommend(
    s: Scene, actor: Actor, worker_id: int | None = None, *, now: datetime | None = None
) -> Recommendation:
    async with unit_of_work(s.sessions) as session:
        return await service.recommend(
            session=session,
            actor=actor,
            data=RecommendationCreate(
                job_id=s.job_id, worker_id=worker_id or s.worker_id, note="焊工证齐全"
            ),
            now=now,
        )


async def move(
    s: Scene,
    actor: Actor,
    rec_id: int,
    status: str,
    *,
    starts_on: date | None = None,
    today: date | None = None,
) -> service.Changed:
    async with unit_of_work(s.sessions) as session:
        return await service.change_status(
            session=session,
            actor=actor,
            recommendation_id=rec_id,
            data=StatusChange(status=status, starts_on=starts_on),  # type: ignore[arg-type]
            today=today or date.today(),
        )


async def events(s: Scene, name: str) -> list[dict[str, Any]]:
    async with s.sessions() as session:
        rows = await session.execute(
            select(OutboxEvent).where(col(OutboxEvent.name) == name).order_by(col(OutboxEvent.id))
        )
        return [e.payload for e in rows.scalars()]


# --- attribution -------------------------------------------------------------------------


async def test_first_recommender_holds_the_worker_for_seven_days(scene: Scene) -> None:
    first = await recommend(scene, scene.broker_a)
    with pytest.raises(Conflict) as refused:
        await recommend(scene, scene.broker_b)
    assert "归属保留至" in refused.value.message
    until = first.attribution_until.astimezone().strftime("%Y-%m-%d")
    assert until[:4] in refused.value.message
    assert "张" not in refused.value.message  # the other broker's name is masked
    with pytest.raises(Conflict, match="您已于"):
        await recommend(scene, scene.broker_a)
    # Unanswered past the window: the second broker may recommend; the first lapses.
    later = await recommend(scene, scene.broker_b, now=utcnow() + timedelta(days=8))
    assert later.broker_id == scene.broker_b_id
    async with scene.sessions() as session:
        old = await session.get(Recommendation, first.id)
    assert old is not None
    assert old.status == "lapsed"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_window_over_but_employer_already_acting_still_refuses(scene: Scene) -> None:
    first = await recommend(scene, scene.broker_a)
    assert first.id is not None
    await move(scene, scene.employer, first.id, "shortlisted")
    with pytest.raises(Conflict, match="已入围"):
        await recommend(scene, scene.broker_b, now=utcnow() + timedelta(days=8))


async def test_a_second_recommendation_is_refused_by_the_database_too(
    scene: Scene, db_url: str
) -> None:
    """Two brokers at once: the partial unique index holds where the check raced."""
    await recommend(scene, scene.broker_a)
    async with scene.sessions() as session:
        first = (await session.execute(select(Recommendation))).scalar_one()
        clash = Recommendation(
            job_id=first.job_id,
            worker_id=first.worker_id,
            broker_id=scene.broker_b_id,
            attribution_until=utcnow(),
        )
        session.add(clash)
        with pytest.raises(Exception, match=r"(?i)unique"):
            await session.flush()


# --- consent and scope ---------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_refusals_consent_scope_role_and_job_state(scene: Scene) -> None:
    with pytest.raises(Conflict, match="未同意被推荐") as refused:
        await recommend(scene, scene.broker_a, scene.silent_worker_id)
    assert refused.value.field == "worker_id"
    with pytest.raises(NotFound):  # a worker outside the broker's villages is not there
        await recommend(scene, scene.broker_far)
    with pytest.raises(Forbidden):
        await recommend(scene, scene.employer)
    closed = await placements_scene.job(
        scene.sessions, scene.org_id, region=scene.village[:6], status="closed"
    )
    async with unit_of_work(scene.sessions) as session:
        with pytest.raises(Conflict, match="不在招聘中"):
            await service.recommend(
                session=session,
                actor=scene.broker_a,
                data=RecommendationCreate(job_id=closed, worker_id=scene.worker_id),
            )
    async with scene.sessions() as session:
        assert (await session.execute(select(Recommendation))).first() is None


# --- states --------------------------------------------------------------------------------


async def test_states_in_order_to_a_placement_and_its_event(scene: Scene) -> None:
    rec = await recommend(scene, scene.broker_a)
    assert rec.id is not None
    with pytest.raises(Conflict, match="不能改为“已录用”"):
        await move(scene, scene.employer, rec.id, "hired", starts_on=date.today())
    with pytest.raises(Forbidden, match="只能由用人单位"):
        await move(scene, scene.broker_a, rec.id, "shortlisted")
    with pytest.raises(NotFound):
        await move(scene, scene.other_employer, rec.id, "shortlisted")
    await move(scene, scene.employer, rec.id, "shortlisted")
    with pytest.raises(Invalid) as no_date:
        await move(scene, scene.employer, rec.id, "hired")
    assert no_date.value.field == "starts_on"
    start = date.today() + timedelta(days=3)
    await move(scene, scene.employer, rec.id, "hired", starts_on=start)
    with pytest.raises(Conflict, match="开工后才能确认到岗"):
        await move(scene, scene.broker_a, rec.id, "onboarded")
    with pytest.raises(Forbidden):
        await move(scene, scene.employer, rec.id, "onboarded", today=start)
    assert await events(scene, "placement.confirmed") == []
    changed = await move(scene, scene.broker_a, rec.id, "onboarded", today=start)
    placement = changed.placement
    assert placement is not None
    assert await events(scene, "placement.confirmed") == [
        {
            "placement_id": placement.id,
            "job_id": scene.job_id,
            "organization_id": scene.org_id,
            "broker_id": scene.broker_a_id,
            "worker_id": scene.worker_id,
            "starts_on": start.isoformat(),
            "wage_min_fen": 300_00,
            "wage_max_fen": 380_00,
            "wage_unit": "day",
            "fee_fixed_fen": 500_00,
            "fee_share_bp": None,
        }
    ]
    with pytest.raises(Conflict, match="已到岗"):
        await move(scene, scene.broker_a, rec.id, "withdrawn")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_withdrawal_and_no_show_are_recorded(scene: Scene) -> None:
    rec = await recommend(scene, scene.broker_a)
    assert rec.id is not None
    with pytest.raises(Conflict):
        await move(scene, scene.broker_a, rec.id, "no_show")
    await move(scene, scene.employer, rec.id, "shortlisted")
    await move(scene, scene.employer, rec.id, "hired", starts_on=date.today())
    await move(scene, scene.employer, rec.id, "no_show")
    async with scene.sessions() as session:
        row = await session.get(Recommendation, rec.id)
    assert row is not None
    assert row.status == "no_show"
    # A no-show frees the worker: a new recommendation for the same job is allowed.
    again = await recommend(scene, scene.broker_b)
    await move(scene, scene.broker_b, again.id or 0, "withdrawn")


# --- the first wage ---------------------------------------------------------------------------


async def _placed(scene: Scene, start: date) -> int:
    rec = await recommend(scene, scene.broker_a)
    assert rec.id is not None
    await move(scene, scene.employer, rec.id, "shortlisted")
    await move(scene, scene.employer, rec.id, "hired", starts_on=start)
    changed = await move(scene, scene.broker_a, rec.id, "onboarded", today=start)
    assert changed.placement is not None
    assert changed.placement.id is not None
    return changed.placement.id


async def report(scene: Scene, placement_id: int, today: date, **fields: Any) -> Any:
    async with unit_of_work(scene.sessions) as session:
        return await followup.report_wage(
            session=session,
            actor=fields.pop("actor", scene.broker_a),
            placement_id=placement_id,
            data=WageReportCreate(**fields),
            today=today,
        )


async def test_unpaid_first_wage_opens_an_arrears_case(scene: Scene) -> None:
    start = date.today() - timedelta(days=20)
    placement_id = await _placed(scene, start)
    async with scene.sessions() as session:
        clean = await followup.standing(session=session, organization_id=scene.org_id)
    assert (clean.placements, clean.open_arrears, clean.warning) == (1, 0, False)
    with pytest.raises(Conflict, match="开工满一个月后"):
        await report(scene, placement_id, date.today(), paid_in_full=False, paid_on_time=False)
    due = followup.one_month_after(start)
    with pytest.raises(NotFound):
        await report(
            scene, placement_id, due, actor=scene.broker_b, paid_in_full=True, paid_on_time=True
        )
    _, case = await report(
        scene, placement_id, due, paid_in_full=False, paid_on_time=False, owed_fen=2_000_00
    )
    assert case is not None
    assert await events(scene, "arrears.opened") == [
        {
            "case_id": case.id,
            "placement_id": placement_id,
            "organization_id": scene.org_id,
            "broker_id": scene.broker_a_id,
            "region_code": scene.village,
        }
    ]
    with pytest.raises(Conflict, match="已回访填报过"):
        await report(scene, placement_id, due, paid_in_full=True, paid_on_time=True)
    async with scene.sessions() as session:
        standing = await followup.standing(session=session, organization_id=scene.org_id)
        cases = (await session.execute(select(ArrearsCase))).scalars().all()
    assert len(cases) == 1
    assert (standing.open_arrears, standing.wage_reports, standing.warning) == (1, 1, True)
    assert "欠薪未结 1 起" in standing.summary


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_paid_in_full_opens_no_case(scene: Scene) -> None:
    start = date.today() - timedelta(days=40)
    placement_id = await _placed(scene, start)
    with pytest.raises(Invalid) as bad:
        await report(
            scene, placement_id, date.today(), paid_in_full=True, paid_on_time=True, owed_fen=1
        )
    assert bad.value.field == "owed_fen"
    _, case = await report(scene, placement_id, date.today(), paid_in_full=True, paid_on_time=False)
    assert case is None
    assert await events(scene, "arrears.opened") == []
    async with scene.sessions() as session:
        standing = await followup.standing(session=session, organization_id=scene.org_id)
    assert (standing.paid_late, standing.open_arrears) == (1, 0)


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (date(2026, 1, 31), date(2026, 2, 28)),
        (date(2028, 1, 31), date(2028, 2, 29)),
        (date(2026, 12, 15), date(2027, 1, 15)),
    ],
)
def test_one_month_after(start: date, due: date) -> None:
    assert followup.one_month_after(start) == due


# --- job-match rate --------------------------------------------------------------------------


def test_match_rate_edge_cases() -> None:
    assert rate.match_rate_of([]).rate is None  # nothing recommended: no rate, not 0
    mixed = rate.match_rate_of(["onboarded", "hired", "withdrawn", "no_show", "lapsed"])
    assert (mixed.made, mixed.hired, mixed.rate) == (5, 2, 0.4)
    pending = rate.match_rate_of(["recommended", "shortlisted", "onboarded"])
    assert (pending.open, pending.final) == (2, False)


async def test_match_rate_counts_a_later_hire_for_the_period_of_the_recommendation(
    scene: Scene,
) -> None:
    made_at = utcnow() - timedelta(days=40)
    rec = await recommend(scene, scene.broker_a, now=made_at)
    assert rec.id is not None
    # Hired today, in a later period than the recommendation.
    await move(scene, scene.employer, rec.id, "shortlisted")
    await move(scene, scene.employer, rec.id, "hired", starts_on=date.today())
    async with scene.sessions() as session:
        then = await rate.match_rate(
            session=session,
            broker_id=scene.broker_a_id,
            start=made_at - timedelta(days=1),
            end=made_at + timedelta(days=1),
        )
        now = await rate.match_rate(
            session=session,
            broker_id=scene.broker_a_id,
            start=utcnow() - timedelta(days=1),
            end=utcnow() + timedelta(days=1),
        )
    assert (then.made, then.hired, then.rate) == (1, 1, 1.0)
    assert (now.made, now.hired, now.rate) == (0, 0, None)


# --- the candidate prefilter ------------------------------------------------------------------


async def _prefilter(s: Scene) -> set[tuple[int, str, bool]]:
    async with s.sessions() as session:
        rows = await session.execute(select(WorkerOccupation))
        return {(r.worker_id, r.occupation_key, r.consent) for r in rows.scalars()}


async def test_prefilter_follows_the_register_and_rebuilds_the_same(scene: Scene) -> None:
    registry = Registry()
    for name, handler in candidates.HANDLERS.items():
        registry.subscribe(name, "candidates", handler)
    await drain(scene.sessions, registry)
    expected = {(scene.worker_id, "welder", True), (scene.silent_worker_id, "welder", False)}
    assert await _prefilter(scene) == expected
    async with unit_of_work(scene.sessions) as session:
        await workers.delete_worker(
            session=session,
            actor=scene.broker_a,
            worker_id=scene.silent_worker_id,
            reason=DeleteReason.person_request,
        )
    await drain(scene.sessions, registry)
    assert await _prefilter(scene) == {(scene.worker_id, "welder", True)}
    async with unit_of_work(scene.sessions) as session:
        assert await candidates.rebuild(session) == 1
    assert await _prefilter(scene) == {(scene.worker_id, "welder", True)}
    # The rebuild leaves the planner statistics of the new rows (else SQLite guessed
    # the indexes of a freshly filled table wrong at scale).
    async with scene.sessions() as session:
        if session.get_bind().dialect.name == "sqlite":
            stats = "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'worker_occupation'"
        else:
            stats = (
                "SELECT count(*) FROM pg_class "
                "WHERE relname = 'worker_occupation' AND reltuples >= 0"
            )
        assert (await session.execute(text(stats))).scalar_one() > 0
    async with scene.sessions() as session:
        pool = await candidates.pool(
            session, candidates.PoolQuery(exact=["welder"], consent_only=True)
        )
    assert pool == [scene.worker_id]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_demo_recommendations_once(scene: Scene) -> None:
    async with unit_of_work(scene.sessions) as session:
        added = await placements_demo.demo_placements(session, seed=1)
    assert added == 1  # the one consenting worker for the one job
    async with scene.sessions() as session:
        rec = (await session.execute(select(Recommendation))).scalar_one()
    assert rec.worker_id == scene.worker_id
    async with unit_of_work(scene.sessions) as session:
        assert await placements_demo.demo_placements(session, seed=1) == 0


async def test_recommendation_lists_count_within_each_readers_reach(scene: Scene) -> None:
    """The page and its total come from one read; a page past the end still says how
    many there are; each reader counts only what they may see."""
    rec = await recommend(scene, scene.broker_a)

    async def listed(actor: Actor, **query: Any) -> tuple[list[int | None], int]:
        async with scene.sessions() as session:
            items, total = await queries.list_recommendations(
                session=session, actor=actor, cipher=scene.cipher, today=date.today(), **query
            )
        return [item.id for item in items], total

    assert await listed(scene.employer) == ([rec.id], 1)
    assert await listed(scene.employer, job_id=scene.job_id, offset=1) == ([], 1)
    assert await listed(scene.employer, status="hired") == ([], 0)
    assert await listed(scene.other_employer) == ([], 0)
    assert await listed(scene.other_employer, offset=5) == ([], 0)
    assert await listed(scene.broker_a) == ([rec.id], 1)
    assert await listed(scene.broker_b) == ([], 0)  # another broker's recommendation
    assert await listed(scene.officer, worker_id=scene.worker_id) == ([rec.id], 1)
