"""Jobs service: the state machine, agency authorisations, who sees what, duplicates,
and expiry (the ``laowu jobs expire`` command and the daily tick)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import SYSTEM, Actor
from marketplace.accounts.service import actor_for
from marketplace.clock import utcnow
from marketplace.db import unit_of_work
from marketplace.errors import Conflict, NotFound
from marketplace.jobs import service as jobs
from marketplace.jobs.models import JobCreate, JobStatus, JobUpdate, ReviewRequest
from marketplace.organizations import service as orgs
from marketplace.organizations.credit_code import check_char
from marketplace.organizations.models import (
    AgencyAuthorization,
    AuthorizationCreate,
    OrganizationCreate,
    VerifyRequest,
)
from matching.normalize import normalize
from matching.taxonomy import load_taxonomy
from tests.conftest import YUZHONG

TODAY = jobs.today_local()
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
_serial = iter(range(1, 10_000))


class Occupations:
    def canonical(self, code: str) -> str | None:
        found = load_taxonomy().lookup(code)
        return found.key if found else None

    def for_title(self, title: str) -> str | None:
        match = normalize(title)
        return match.key if match else None


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    employer: Actor
    employer_org: int
    agency: Actor
    agency_org: int
    reviewer: Actor


async def _register(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, kind: str, verified: bool = True
) -> int:
    n = next(_serial)
    first17 = f"91{YUZHONG}{n:09d}"
    async with unit_of_work(sessions) as session:
        org = await orgs.register(
            session=session,
            actor=actor,
            data=OrganizationCreate(
                kind=kind,  # type: ignore[arg-type]
                name=f"服务测试单位{n}",
                credit_code=first17 + check_char(first17),
                contact_name="李经理",
                contact_phone="023-63891234",
                address="渝中区民生路 5 号",
                licence_no="渝人服证字2024第001号" if kind == "agency" else None,
            ),
        )
        assert org.id is not None
        if verified:
            await orgs.verify(
                session=session,
                actor=SYSTEM,
                organization_id=org.id,
                data=VerifyRequest(approve=True),
            )
        return org.id


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession], make_account: Any) -> World:
    employer = actor_for((await make_account("employer", YUZHONG)).user)
    agency = actor_for((await make_account("agency", YUZHONG)).user)
    reviewer = actor_for((await make_account("district_admin", YUZHONG)).user)
    return World(
        sessions=sessions,
        employer=employer,
        employer_org=await _register(sessions, employer, "employer"),
        agency=agency,
        agency_org=await _register(sessions, agency, "agency"),
        reviewer=reviewer,
    )


def posting(org_id: int, **extra: Any) -> JobCreate:
    values: dict[str, Any] = {
        "organization_id": org_id,
        "title": "叉车司机",
        "description": "持叉车证，两班倒，包住",
        "headcount": 3,
        "wage_min_fen": 550_000,
        "wage_max_fen": 700_000,
        "wage_unit": "month",
        "work_region_code": "500103001",
        "starts_on": TODAY + timedelta(days=3),
        "ends_on": TODAY + timedelta(days=30),
        **extra,
    }
    return JobCreate.model_validate(values)


async def create(w: World, actor: Actor, data: JobCreate) -> int:
    async with unit_of_work(w.sessions) as session:
        job = await jobs.create(session=session, actor=actor, data=data, occupations=Occupations())
        assert job.id is not None
        return job.id


async def submit(w: World, actor: Actor, job_id: int, today: date = TODAY) -> JobStatus:
    async with unit_of_work(w.sessions) as session:
        job = await jobs.submit(session=session, actor=actor, job_id=job_id, today=today)
        return JobStatus(job.status)


async def review(w: World, job_id: int, approve: bool = True, today: date = TODAY) -> JobStatus:
    async with unit_of_work(w.sessions) as session:
        job = await jobs.review(
            session=session,
            actor=w.reviewer,
            job_id=job_id,
            data=ReviewRequest(approve=approve, reason=None if approve else "请补充地址"),
            today=today,
        )
        return JobStatus(job.status)


async def change(w: World, job_id: int, **values: Any) -> JobStatus:
    async with unit_of_work(w.sessions) as session:
        job = await jobs.update(
            session=session,
            actor=w.employer,
            job_id=job_id,
            data=JobUpdate.model_validate(values),
            occupations=Occupations(),
        )
        return JobStatus(job.status)


@SQLITE
async def test_states_only_move_along_the_arrows(world: World) -> None:
    job_id = await create(world, world.employer, posting(world.employer_org))
    with pytest.raises(NotFound):
        await review(world, job_id)  # a draft is the employer's own
    with pytest.raises(Conflict):
        await change(world, job_id, status="filled")  # nothing to fill yet
    assert await submit(world, world.employer, job_id) == JobStatus.pending_review
    with pytest.raises(Conflict):
        await submit(world, world.employer, job_id)
    with pytest.raises(Conflict):
        await change(world, job_id, title="叉车工")  # under review: wait for the result
    assert await review(world, job_id, approve=False) == JobStatus.draft
    assert await change(world, job_id, address="渝中区大坪正街 8 号") == JobStatus.draft
    assert await submit(world, world.employer, job_id) == JobStatus.pending_review
    assert await review(world, job_id) == JobStatus.published
    assert await change(world, job_id, status="filled") == JobStatus.filled
    with pytest.raises(Conflict):
        await change(world, job_id, status="closed")
    with pytest.raises(Conflict):
        await change(world, job_id, headcount=9)


@SQLITE
async def test_the_title_names_the_occupation_unless_a_code_is_given(world: World) -> None:
    forklift = await create(world, world.employer, posting(world.employer_org))
    coded = await create(
        world, world.employer, posting(world.employer_org, occupation_code="welder")
    )
    vague = await create(world, world.employer, posting(world.employer_org, title="杂活"))
    async with world.sessions() as session:
        keys = [
            (await jobs.get(session, world.employer, i)).occupation_code
            for i in (forklift, coded, vague)
        ]
    assert keys[0] == Occupations().for_title("叉车司机")
    assert keys[0] is not None
    assert keys[1] == "welder"
    assert keys[2] is None  # unmatched stays unmatched


@SQLITE
async def test_an_agency_needs_a_valid_authorisation_at_submit_and_at_approval(
    world: World,
) -> None:
    job_id = await create(world, world.agency, posting(world.employer_org))
    with pytest.raises(Conflict, match="授权"):
        await submit(world, world.agency, job_id)
    async with unit_of_work(world.sessions) as session:
        grant = await orgs.authorize(
            session=session,
            actor=world.employer,
            employer_id=world.employer_org,
            data=AuthorizationCreate(
                agency_id=world.agency_org,
                document_ref="委托书 A-7",
                valid_from=TODAY - timedelta(days=10),
                valid_until=TODAY + timedelta(days=5),
            ),
        )
        grant_id = grant.id
    with pytest.raises(Conflict, match="授权"):  # not yet valid on that day
        await submit(world, world.agency, job_id, today=TODAY - timedelta(days=11))
    assert await submit(world, world.agency, job_id) == JobStatus.pending_review
    with pytest.raises(Conflict, match="授权"):  # lapsed before the review
        await review(world, job_id, today=TODAY + timedelta(days=6))
    async with unit_of_work(world.sessions) as session:
        await session.execute(
            update(AgencyAuthorization)
            .where(col(AgencyAuthorization.id) == grant_id)
            .values(revoked_at=utcnow())
        )
    with pytest.raises(Conflict, match="授权"):
        await review(world, job_id)


@SQLITE
async def test_an_unverified_agency_cannot_submit_even_when_authorised(
    world: World, make_account: Any
) -> None:
    fresh = actor_for((await make_account("agency", YUZHONG)).user)
    agency_org = await _register(world.sessions, fresh, "agency", verified=False)
    async with unit_of_work(world.sessions) as session:
        await orgs.authorize(
            session=session,
            actor=SYSTEM,
            employer_id=world.employer_org,
            data=AuthorizationCreate(
                agency_id=agency_org,
                document_ref="委托书 B-1",
                valid_from=TODAY,
                valid_until=TODAY + timedelta(days=5),
            ),
        )
    job_id = await create(world, fresh, posting(world.employer_org))
    with pytest.raises(Conflict, match="核验"):
        await submit(world, fresh, job_id)


@SQLITE
async def test_who_sees_a_job_waiting_for_review(world: World, make_account: Any) -> None:
    job_id = await create(world, world.employer, posting(world.employer_org))
    await submit(world, world.employer, job_id)
    township = actor_for((await make_account("township_officer", "500103001")).user)
    other_township = actor_for((await make_account("township_officer", "500103003")).user)
    broker = actor_for((await make_account("broker", "500103001003")).user)
    async with world.sessions() as session:
        assert (await jobs.get(session, township, job_id)).id == job_id
        for outsider in (other_township, broker, world.agency):
            with pytest.raises(NotFound):
                await jobs.get(session, outsider, job_id)
        listed, _ = await jobs.list_jobs(session=session, actor=township, limit=10, offset=0)
        assert [j.id for j in listed] == [job_id]
        listed, _ = await jobs.list_jobs(session=session, actor=broker, limit=10, offset=0)
        assert listed == []


@SQLITE
async def test_a_repost_of_a_live_job_warns_but_may_be_published(world: World) -> None:
    first = await create(world, world.employer, posting(world.employer_org))
    await submit(world, world.employer, first)
    await review(world, first)
    again = await create(world, world.employer, posting(world.employer_org))
    await submit(world, world.employer, again)
    async with world.sessions() as session:
        flags = (await jobs.get(session, world.employer, again)).flags
    assert [f["code"] for f in flags] == ["likely_duplicate"]
    assert str(first) in flags[0]["message"]
    assert await review(world, again) == JobStatus.published


async def test_expire_due_runs_once_per_job_and_day(world: World) -> None:
    job_id = await create(world, world.employer, posting(world.employer_org))
    await submit(world, world.employer, job_id)
    await review(world, job_id)
    end = TODAY + timedelta(days=30)
    async with unit_of_work(world.sessions) as session:
        assert await jobs.expire_due(session, end) == 0  # the end date is still a working day
    async with unit_of_work(world.sessions) as session:
        assert await jobs.expire_due(session, end + timedelta(days=1)) == 1
    async with unit_of_work(world.sessions) as session:
        assert await jobs.expire_due(session, end + timedelta(days=1)) == 0
        assert (await jobs.get(session, world.employer, job_id)).status == JobStatus.expired
    tick = jobs.DailyExpiry()
    # Read around the tick, not the module's TODAY: Chongqing's midnight (16:00 UTC)
    # may have passed since the tests were collected.
    before = jobs.today_local()
    assert await tick.tick(world.sessions) == 0
    assert tick.done_for in {before, jobs.today_local()}


@SQLITE
async def test_an_organisation_lists_its_jobs_and_those_posted_for_it_newest_first(
    world: World,
) -> None:
    first = await create(world, world.employer, posting(world.employer_org))
    second = await create(world, world.employer, posting(world.employer_org, title="焊工"))
    for_it = await create(world, world.agency, posting(world.employer_org, title="叉车工"))
    async with world.sessions() as session:
        mine = await orgs.organization_of(session, world.employer)
        for known in (None, mine):  # looked up by the caller or by the list itself
            listed, total = await jobs.list_jobs(
                session=session, actor=world.employer, limit=10, offset=0, mine=known
            )
            assert ([j.id for j in listed], total) == ([for_it, second, first], 3)
        page, _ = await jobs.list_jobs(session=session, actor=world.employer, limit=2, offset=1)
        assert [j.id for j in page] == [second, first]
        agency, total = await jobs.list_jobs(
            session=session, actor=world.agency, limit=10, offset=0
        )
        assert ([j.id for j in agency], total) == ([for_it], 1)


@SQLITE
async def test_the_jobs_page_lines_show_what_the_jobs_show(world: World) -> None:
    """The jobs page reads only its columns: each line holds the job's own values,
    for the organisation's list and for the reviewer's queue."""
    draft = await create(world, world.employer, posting(world.employer_org))
    waiting = await create(
        world, world.employer, posting(world.employer_org, description="限男性，押金200元")
    )
    await submit(world, world.employer, waiting)
    async with world.sessions() as session:
        for actor, queue in ((world.employer, False), (world.reviewer, True)):
            records, total = await jobs.list_jobs(
                session=session, actor=actor, limit=10, offset=0, queue=queue
            )
            lines, line_total = await jobs.list_lines(
                session=session, actor=actor, limit=10, offset=0, queue=queue
            )
            assert line_total == total
            assert [asdict(line) for line in lines] == [
                {f: getattr(job, f) for f in asdict(line)}
                for job, line in zip(records, lines, strict=True)
            ]
        assert [line.id for line in lines] == [waiting]  # the queue
        assert any(flag["blocking"] for flag in lines[0].flags)
    assert draft != waiting
