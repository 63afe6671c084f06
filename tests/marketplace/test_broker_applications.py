"""Broker applications and the broker record against a real database: submission
rules, tracking, the review chain with region scope, queues, bulk decisions,
certification (account, number, events, inbox) and coverage after certification and
status changes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import Actor
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.brokers import applications, gaps
from marketplace.brokers import service as brokers
from marketplace.brokers.applications import ApplicationInput
from marketplace.brokers.models import (
    ApplicationStatus,
    Broker,
    BrokerApplication,
    BrokerUpdate,
    BrokerVillage,
)
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.events import OutboxEvent
from marketplace.notifications.models import Notification
from marketplace.regions import service as regions
from marketplace.regions.models import Region
from marketplace.workers.identity import check_char
from tests.conftest import WUXI, YUZHONG
from web.wiring import build_registry

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def make_id(n: int, born: date = date(1985, 6, 1)) -> str:
    first17 = f"500103{born:%Y%m%d}{n % 1000:03d}"
    return first17 + check_char(first17)


@dataclass
class Chain:
    sessions: async_sessionmaker[AsyncSession]
    cipher: DataCipher
    village: str
    other_village: str
    officers: dict[str, Actor]
    other_district: Actor

    def form(self, n: int = 1, **changes: Any) -> ApplicationInput:
        values: dict[str, Any] = {
            "name": "李春梅",
            "id_number": make_id(n),
            "phone": f"1390000{n:04d}",
            "village_code": self.village,
            "background": "grid_worker",
            "computer_skills": True,
            "smartphone_skills": True,
            "enough_time": True,
            "not_on_public_payroll": True,
            "note": None,
        }
        values.update(changes)
        return ApplicationInput(**values)

    async def submit(self, n: int = 1, **changes: Any) -> BrokerApplication:
        async with unit_of_work(self.sessions) as session:
            return await applications.submit(
                session=session, data=self.form(n, **changes), cipher=self.cipher
            )

    async def decide(
        self, role: str, app_id: int, decision: str = "approve", comment: str | None = None
    ) -> applications.Outcome:
        actor = self.officers.get(role, self.other_district)
        async with unit_of_work(self.sessions) as session:
            return await applications.decide(
                session=session,
                actor=actor,
                application_id=app_id,
                decision=decision,
                comment=comment,
                cipher=self.cipher,
            )

    async def status(self, app_id: int) -> str:
        async with self.sessions() as session:
            app = await session.get(BrokerApplication, app_id)
            assert app is not None
            return app.status

    async def to_training(self, app_id: int) -> None:
        for role in ("village_officer", "township_officer", "district_admin", "district_admin"):
            await self.decide(role, app_id)
        assert await self.status(app_id) == ApplicationStatus.in_training

    async def pass_exam(self, app_id: int, score: int = 85) -> None:
        async with unit_of_work(self.sessions) as session:
            await applications.record_exam_passed(session, app_id, attempt_id=1, score=score)


@pytest.fixture
async def chain(
    sessions: async_sessionmaker[AsyncSession], make_account: Any, cipher: DataCipher
) -> Chain:
    async with sessions() as session:
        township = (
            (
                await session.execute(
                    select(col(Region.code))
                    .where(col(Region.parent_code) == YUZHONG)
                    .order_by(col(Region.code))
                )
            )
            .scalars()
            .first()
        )
        assert township is not None
        village = (
            (
                await session.execute(
                    select(col(Region.code))
                    .where(col(Region.parent_code) == township)
                    .order_by(col(Region.code))
                )
            )
            .scalars()
            .first()
        )
        other_village = (
            (
                await session.execute(
                    select(col(Region.code))
                    .where(col(Region.code).startswith(WUXI), col(Region.level) == "village")
                    .order_by(col(Region.code))
                )
            )
            .scalars()
            .first()
        )
    assert village is not None
    assert other_village is not None
    officers = {
        "village_officer": await make_account("village_officer", village),
        "township_officer": await make_account("township_officer", township),
        "district_admin": await make_account("district_admin", YUZHONG),
    }
    other = await make_account("district_admin", WUXI)
    return Chain(
        sessions=sessions,
        cipher=cipher,
        village=village,
        other_village=other_village,
        officers={role: accounts.actor_for(a.user) for role, a in officers.items()},
        other_district=accounts.actor_for(other.user),
    )


# --- submission and tracking ------------------------------------------------------------


@SQLITE_ONLY
async def test_submission_stores_the_id_encrypted_and_tracks_by_code_and_phone(
    chain: Chain,
) -> None:
    app = await chain.submit(1)
    assert len(app.tracking_code) == 10
    assert make_id(1) not in app.id_number_enc
    async with chain.sessions() as session:
        found = await applications.track(
            session=session,
            code=app.tracking_code.lower(),
            phone="139 0000 0001",
            cipher=chain.cipher,
        )
        view = await applications.to_tracked(session, found, chain.cipher)
        assert view.id_number == make_id(1)[:3] + "*" * 11 + make_id(1)[-4:]
        assert view.status_label == "待村（社区）推荐"
        assert [h.action for h in view.history] == ["submit"]
        # A wrong phone reads exactly like an unknown code: neither can be probed alone.
        with pytest.raises(NotFound) as wrong_phone:
            await applications.track(
                session=session, code=app.tracking_code, phone="13900009999", cipher=chain.cipher
            )
        with pytest.raises(NotFound) as wrong_code:
            await applications.track(
                session=session, code="ABCDEFGHJK", phone="13900000001", cipher=chain.cipher
            )
        assert wrong_phone.value.message == wrong_code.value.message


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"name": " "}, "name"),
    ({"id_number": make_id(2)[:-1] + ("1" if make_id(2)[-1] == "0" else "0")}, "id_number"),
    ({"id_number": make_id(3, born=date(2015, 1, 1))}, "id_number"),  # a child
    ({"phone": "12345"}, "phone"),
    ({"village_code": YUZHONG}, "village_code"),  # a district, not a village
    ({"background": "astronaut"}, "background"),
    ({"computer_skills": False}, "computer_skills"),
    ({"smartphone_skills": False}, "smartphone_skills"),
    ({"enough_time": False}, "enough_time"),
    ({"not_on_public_payroll": False}, "not_on_public_payroll"),
]


@SQLITE_ONLY
async def test_bad_input_names_the_field_and_stores_nothing(chain: Chain) -> None:
    for changes, field in BAD_INPUT:
        with pytest.raises(Invalid) as caught:
            await chain.submit(2, **changes)
        assert caught.value.field == field, changes
    async with chain.sessions() as session:
        assert (await session.execute(select(BrokerApplication))).first() is None


async def test_one_open_application_per_id_number_even_when_concurrent(chain: Chain) -> None:
    """On both databases: the unique open_id_hash refuses the second, however timed."""
    results = await asyncio.gather(
        chain.submit(5), chain.submit(5, phone="13700000005"), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["BrokerApplication", "Conflict"]
    first = next(r for r in results if isinstance(r, BrokerApplication))
    assert first.id is not None
    with pytest.raises(Conflict) as caught:
        await chain.submit(5)
    assert caught.value.field == "id_number"
    # Once the open one ends (rejected), the same person may apply again.
    await chain.decide("village_officer", first.id, "reject", "本村已有足够人选")
    again = await chain.submit(5)
    assert again.status == ApplicationStatus.submitted


# --- the review chain -------------------------------------------------------------------


@SQLITE_ONLY
async def test_each_step_is_its_own_role_and_records_who_when_why(chain: Chain) -> None:
    app = await chain.submit(10)
    assert app.id is not None
    # Out of turn: the district cannot skip the village's recommendation.
    with pytest.raises(Conflict):
        await chain.decide("district_admin", app.id)
    # Out of region: another district's admin, even at its own step later on.
    with pytest.raises(Forbidden):
        await chain.decide("other", app.id, "reject", "不在本区")
    await chain.decide("village_officer", app.id, comment="群众基础好")
    await chain.decide("township_officer", app.id)
    with pytest.raises(Forbidden):
        await chain.decide("other", app.id)
    await chain.decide("district_admin", app.id)
    assert await chain.status(app.id) == ApplicationStatus.district_approved
    async with chain.sessions() as session:
        rows = await applications.history(session=session, application_id=app.id)
    assert [(r.action, r.from_status, r.to_status) for r in rows] == [
        ("submit", None, "submitted"),
        ("approve", "submitted", "recommended"),
        ("approve", "recommended", "township_reviewed"),
        ("approve", "township_reviewed", "district_approved"),
    ]
    assert rows[1].comment == "群众基础好"
    assert rows[1].actor_user_id == chain.officers["village_officer"].user_id
    assert rows[1].actor_role == "village_officer"


@SQLITE_ONLY
async def test_returned_application_is_corrected_and_goes_back_to_the_asking_step(
    chain: Chain,
) -> None:
    app = await chain.submit(11)
    assert app.id is not None
    await chain.decide("village_officer", app.id)
    await chain.decide("township_officer", app.id, "return", "请补充从事劳务经纪的经历")
    async with chain.sessions() as session:
        tracked = await applications.to_tracked(
            session,
            await applications.track(
                session=session, code=app.tracking_code, phone="13900000011", cipher=chain.cipher
            ),
            chain.cipher,
        )
    assert tracked.status == "returned"
    assert tracked.status_reason == "请补充从事劳务经纪的经历"
    async with unit_of_work(chain.sessions) as session:
        with pytest.raises(Invalid) as caught:
            await applications.resubmit(
                session=session,
                code=app.tracking_code,
                phone="13900000011",
                data=chain.form(12),
                cipher=chain.cipher,
            )
        assert caught.value.field == "id_number"  # the person cannot change
    async with unit_of_work(chain.sessions) as session:
        await applications.resubmit(
            session=session,
            code=app.tracking_code,
            phone="13900000011",
            data=chain.form(11, note="曾组织 30 人赴浙江务工", phone="13600000011"),
            cipher=chain.cipher,
        )
    # Back with the township officer, who asked; the village's recommendation stands.
    assert await chain.status(app.id) == ApplicationStatus.recommended
    async with chain.sessions() as session:
        refreshed = await applications.track(
            session=session, code=app.tracking_code, phone="13600000011", cipher=chain.cipher
        )
        assert refreshed.note == "曾组织 30 人赴浙江务工"
    async with unit_of_work(chain.sessions) as session:
        with pytest.raises(Conflict):  # only a returned application can be resubmitted
            await applications.resubmit(
                session=session,
                code=app.tracking_code,
                phone="13600000011",
                data=chain.form(11),
                cipher=chain.cipher,
            )


@SQLITE_ONLY
async def test_queues_are_regional_counted_and_oldest_first(chain: Chain) -> None:
    first = await chain.submit(20)
    second = await chain.submit(21)
    await chain.submit(22, village_code=chain.other_village)
    assert first.id is not None
    assert second.id is not None
    await chain.decide("village_officer", second.id)
    district = chain.officers["district_admin"]
    async with chain.sessions() as session:
        counts = await applications.counts(session=session, actor=district)
        assert counts["submitted"] == 1
        assert counts["recommended"] == 1
        assert counts["certified"] == 0
        items, total = await applications.list_applications(session=session, actor=district)
        assert total == 2  # not the 巫溪 one
        assert [a.id for a in items] == [first.id, second.id]
        with pytest.raises(Forbidden):
            await applications.list_applications(session=session, actor=district, region_code=WUXI)
        mine, _ = await applications.list_applications(
            session=session, actor=chain.officers["village_officer"], status="submitted"
        )
        assert [a.id for a in mine] == [first.id]


@SQLITE_ONLY
async def test_bulk_decisions_apply_per_item_and_leave_refused_items_unchanged(
    chain: Chain,
) -> None:
    a = await chain.submit(30)
    b = await chain.submit(31)
    c = await chain.submit(32)
    assert a.id
    assert b.id
    assert c.id
    await chain.decide("village_officer", c.id)  # no longer the village's step
    async with unit_of_work(chain.sessions) as session:
        with pytest.raises(Invalid):  # a rejection without a reason refuses the batch
            await applications.decide_many(
                session=session,
                actor=chain.officers["village_officer"],
                application_ids=[a.id],
                decision="reject",
                comment=None,
                cipher=chain.cipher,
            )
        results = await applications.decide_many(
            session=session,
            actor=chain.officers["village_officer"],
            application_ids=[a.id, b.id, c.id],
            decision="approve",
            comment=None,
            cipher=chain.cipher,
        )
    assert [(r.application_id, r.error is None) for r in results] == [
        (a.id, True),
        (b.id, True),
        (c.id, False),
    ]
    assert isinstance(results[2].error, Conflict)
    assert await chain.status(a.id) == await chain.status(b.id) == "recommended"
    assert await chain.status(c.id) == "recommended"


@SQLITE_ONLY
async def test_exam_pass_is_recorded_only_for_applicants_in_training(chain: Chain) -> None:
    app = await chain.submit(40)
    assert app.id is not None
    with pytest.raises(Conflict):
        await chain.pass_exam(app.id)
    await chain.to_training(app.id)
    async with chain.sessions() as session:
        waiting, total = await applications.list_in_training(session=session, region_code=YUZHONG)
        assert [w.id for w in waiting] == [app.id]
        assert total == 1
        none, _ = await applications.list_in_training(session=session, region_code=WUXI)
        assert none == []
    await chain.pass_exam(app.id, score=72)
    assert await chain.status(app.id) == ApplicationStatus.exam_passed
    with pytest.raises(Conflict):
        await chain.pass_exam(app.id)


# --- certification, status, coverage ------------------------------------------------------


async def _coverage(chain: Chain, code: str) -> tuple[int, int]:
    async with chain.sessions() as session:
        node = await regions.coverage(session=session, code=code)
    return node.villages_covered, node.brokers_active


async def test_certification_makes_an_active_broker_who_can_log_in_and_counts_in_coverage(
    chain: Chain,
) -> None:
    app = await chain.submit(50)
    assert app.id is not None
    await chain.to_training(app.id)
    await chain.pass_exam(app.id)
    covered_before, active_before = await _coverage(chain, chain.village)
    outcome = await chain.decide("district_admin", app.id)
    assert outcome.application.status == ApplicationStatus.certified
    assert outcome.username
    assert outcome.initial_password
    assert await _coverage(chain, chain.village) == (1, active_before + 1)
    assert covered_before == 0
    async with chain.sessions() as session:
        broker = await session.get(Broker, outcome.application.broker_id)
        assert broker is not None
        assert broker.broker_no == f"JJ{YUZHONG}{app.id:06d}"
        assert broker.status == "active"
        assert broker.certified_at is not None
        villages = (
            (
                await session.execute(
                    select(col(BrokerVillage.village_code)).where(
                        col(BrokerVillage.broker_id) == broker.id
                    )
                )
            )
            .scalars()
            .all()
        )
        assert villages == [chain.village]
        user = await session.get(User, broker.user_id)
        assert user is not None
        assert user.role == "broker"
        assert user.password_hash != ""
        events = (
            (
                await session.execute(
                    select(OutboxEvent).where(col(OutboxEvent.name) == "broker.certified")
                )
            )
            .scalars()
            .all()
        )
        assert [e.payload for e in events] == [
            {"broker_id": broker.id, "application_id": app.id, "village_code": chain.village}
        ]
        # The open-application slot is free again (a certified person is not "open").
        stored = await session.get(BrokerApplication, app.id)
        assert stored is not None
        assert stored.open_id_hash is None
    async with unit_of_work(chain.sessions) as session:
        login = await accounts.login(
            session=session,
            username=outcome.username,
            password=outcome.initial_password,
            otp=None,
            kind="bearer",
            ip=None,
            cipher=chain.cipher,
        )
        assert login.token
    await drain(chain.sessions, build_registry())
    async with chain.sessions() as session:
        titles = (
            (
                await session.execute(
                    select(col(Notification.title)).where(
                        col(Notification.user_id) == broker.user_id
                    )
                )
            )
            .scalars()
            .all()
        )
        assert "您已通过认证，成为劳务经纪人" in titles


async def test_village_losing_its_last_broker_shows_at_once(chain: Chain) -> None:
    app = await chain.submit(60)
    assert app.id is not None
    await chain.to_training(app.id)
    await chain.pass_exam(app.id)
    outcome = await chain.decide("district_admin", app.id)
    broker_id = outcome.application.broker_id
    assert broker_id is not None
    district = chain.officers["district_admin"]
    async with chain.sessions() as session:
        short = {g.village_code for g in await gaps.village_gaps(session=session, actor=district)}
        assert chain.village not in short
    with pytest.raises(Conflict) as serving:  # a serving broker does not apply again
        await chain.submit(60)
    assert "已是认证的劳务经纪人" in serving.value.message
    async with unit_of_work(chain.sessions) as session:
        with pytest.raises(Invalid):
            await brokers.change_status(
                session=session, actor=district, broker_id=broker_id, action="eliminate", reason=""
            )
    async with unit_of_work(chain.sessions) as session:
        await brokers.change_status(
            session=session,
            actor=district,
            broker_id=broker_id,
            action="eliminate",
            reason="年度考核不合格",
        )
    assert await _coverage(chain, chain.village) == (0, 0)
    async with chain.sessions() as session:
        short = {g.village_code for g in await gaps.village_gaps(session=session, actor=district)}
        assert chain.village in short
        user = (
            await session.execute(select(User).join(Broker).where(col(Broker.id) == broker_id))
        ).scalar_one()
        assert not user.is_active  # an eliminated broker cannot log in
        event = (
            await session.execute(
                select(OutboxEvent).where(col(OutboxEvent.name) == "broker.status_changed")
            )
        ).scalar_one()
        assert event.payload == {
            "broker_id": broker_id,
            "old_status": "active",
            "new_status": "eliminated",
            "reason": "年度考核不合格",
        }
    # Once eliminated, the person may apply again (the officers will judge).
    again = await chain.submit(60)
    assert again.status == ApplicationStatus.submitted
    async with unit_of_work(chain.sessions) as session:
        with pytest.raises(Conflict):  # elimination is final
            await brokers.change_status(
                session=session,
                actor=district,
                broker_id=broker_id,
                action="reinstate",
                reason="申诉",
            )
    await drain(chain.sessions, build_registry())
    async with chain.sessions() as session:
        bodies = (
            (
                await session.execute(
                    select(col(Notification.title)).where(col(Notification.user_id) == user.id)
                )
            )
            .scalars()
            .all()
        )
        assert "您的经纪人状态已变更为“淘汰”" in bodies


@SQLITE_ONLY
async def test_suspend_and_reinstate_and_out_of_region_status_change(chain: Chain) -> None:
    app = await chain.submit(70)
    assert app.id is not None
    await chain.to_training(app.id)
    await chain.pass_exam(app.id)
    broker_id = (await chain.decide("district_admin", app.id)).application.broker_id
    assert broker_id is not None
    district = chain.officers["district_admin"]
    async with unit_of_work(chain.sessions) as session:
        with pytest.raises(Forbidden):
            await brokers.change_status(
                session=session,
                actor=chain.other_district,
                broker_id=broker_id,
                action="suspend",
                reason="越权",
            )
    async with unit_of_work(chain.sessions) as session:
        await brokers.change_status(
            session=session,
            actor=district,
            broker_id=broker_id,
            action="suspend",
            reason="投诉核查中",
        )
    assert (await _coverage(chain, chain.village))[1] == 0
    async with unit_of_work(chain.sessions) as session:
        await brokers.change_status(
            session=session,
            actor=district,
            broker_id=broker_id,
            action="reinstate",
            reason="核查无误",
        )
    assert (await _coverage(chain, chain.village))[1] == 1
    async with chain.sessions() as session:
        history = await brokers.status_history(session=session, broker_id=broker_id)
    assert [(h.old_status, h.new_status) for h in history] == [
        (None, "active"),
        ("active", "suspended"),
        ("suspended", "active"),
    ]


@SQLITE_ONLY
async def test_flags_and_assigned_villages_follow_the_staffing_rule(chain: Chain) -> None:
    app = await chain.submit(80)
    assert app.id is not None
    await chain.to_training(app.id)
    await chain.pass_exam(app.id)
    broker_id = (await chain.decide("district_admin", app.id)).application.broker_id
    assert broker_id is not None
    district = chain.officers["district_admin"]
    async with chain.sessions() as session:
        neighbours = (
            (
                await session.execute(
                    select(col(Region.code))
                    .where(
                        col(Region.parent_code) == chain.village[:9],
                        col(Region.code) != chain.village,
                    )
                    .order_by(col(Region.code))
                )
            )
            .scalars()
            .all()
        )
    async with unit_of_work(chain.sessions) as session:
        with pytest.raises(Invalid) as caught:
            await brokers.update(
                session=session,
                actor=district,
                broker_id=broker_id,
                data=BrokerUpdate(welfare_post=True, welfare_post_monthly_fen=80000),
            )
        assert caught.value.field == "welfare_post_task_types"
    async with unit_of_work(chain.sessions) as session:
        with pytest.raises(Invalid):  # another district's village
            await brokers.update(
                session=session,
                actor=district,
                broker_id=broker_id,
                data=BrokerUpdate(assigned_villages=[chain.other_village]),
            )
    async with unit_of_work(chain.sessions) as session:
        broker = await brokers.update(
            session=session,
            actor=district,
            broker_id=broker_id,
            data=BrokerUpdate(
                key_broker=True,
                welfare_post=True,
                welfare_post_task_types=["政策宣传", "政策宣传", "就业信息采集"],
                welfare_post_monthly_fen=80000,
                assigned_villages=[neighbours[0]],
            ),
        )
        public = await brokers.to_public(session, broker)
    assert public.key_broker
    assert public.welfare_post
    assert public.welfare_post_task_types == ["政策宣传", "就业信息采集"]
    assert public.villages == [chain.village, neighbours[0]]
    # The neighbour is now served: a second broker of a 1-broker village is refused there.
    other = await chain.submit(81)
    assert other.id is not None
    await chain.to_training(other.id)
    await chain.pass_exam(other.id)
    second = (await chain.decide("district_admin", other.id)).application.broker_id
    assert second is not None
    async with unit_of_work(chain.sessions) as session:
        with pytest.raises(Invalid) as caught:
            await brokers.update(
                session=session,
                actor=district,
                broker_id=second,
                data=BrokerUpdate(assigned_villages=[neighbours[0]]),
            )
        assert "无需再分配" in caught.value.message
