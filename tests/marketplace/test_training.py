"""Training against a real database: sessions, attendance for brokers and applicants,
the four-days-a-year compliance report, refresher tracking, materials and scope."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import Actor
from marketplace.accounts import service as accounts
from marketplace.brokers import training, training_courses
from marketplace.brokers.models import ApplicationStatus, Broker, BrokerApplication, BrokerStatus
from marketplace.brokers.training_models import (
    AttendanceEntry,
    CourseCreate,
    MaterialTextCreate,
    SessionCreate,
    TrainingAttendance,
    TrainingMode,
)
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.errors import Forbidden, Invalid, NotFound
from tests.conftest import WUXI, YUZHONG
from tests.marketplace.training_helpers import applicant_in_training, village_under

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
Sessions = async_sessionmaker[AsyncSession]
THIS_YEAR = training.today_local().year


async def broker_id(sessions: Sessions, user_id: int) -> int:
    async with sessions() as session:
        found = (
            await session.execute(select(col(Broker.id)).where(col(Broker.user_id) == user_id))
        ).scalar_one()
    return int(found)


async def new_session(
    sessions: Sessions, actor: Actor, region: str, starts_on: date, days: int, **kw: Any
) -> int:
    async with unit_of_work(sessions) as session:
        made = await training.create_session(
            session=session,
            actor=actor,
            data=SessionCreate(
                title=kw.pop("title", "经纪人集中培训"),
                region_code=region,
                starts_on=starts_on,
                days=days,
                mode=kw.pop("mode", TrainingMode.offline),
                **kw,
            ),
        )
    assert made.id is not None
    return made.id


async def attend(
    sessions: Sessions, actor: Actor, training_id: int, *entries: tuple[str, int | None]
) -> list[Any]:
    async with unit_of_work(sessions) as session:
        return await training.record_attendance(
            session=session,
            actor=actor,
            training_id=training_id,
            entries=[AttendanceEntry(trainee=t, days=d) for t, d in entries],
        )


async def test_the_report_lists_who_is_short_of_four_days_and_by_how_much(
    sessions: Sessions, cipher: DataCipher, make_account: Any
) -> None:
    township, village = await village_under(sessions, YUZHONG)
    admin = accounts.actor_for((await make_account("district_admin", YUZHONG)).user)
    accounts_made = [await make_account("broker", village) for _ in range(4)]
    b1, b2, b3, b4 = [await broker_id(sessions, a.id) for a in accounts_made]
    applicant = await applicant_in_training(sessions, cipher, village, 7)
    jan = date(THIS_YEAR, 1, 10)
    main = await new_session(sessions, admin, YUZHONG, jan, 3)
    meeting = await new_session(
        sessions,
        admin,
        township,
        jan + timedelta(days=1),
        2,
        mode=TrainingMode.meeting,
        refresher=True,
    )
    last_year = await new_session(sessions, admin, YUZHONG, date(THIS_YEAR - 1, 6, 1), 4)
    await attend(
        sessions,
        admin,
        main,
        (f"broker:{b1}", None),
        (f"broker:{b2}", None),
        (f"application:{applicant.id}", None),
    )
    await attend(sessions, admin, meeting, (f"broker:{b2}", 1))
    await attend(sessions, admin, last_year, (f"broker:{b3}", None), (f"broker:{b2}", None))
    # The applicant is certified as b4: the days trained before count for the broker.
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(BrokerApplication)
            .where(col(BrokerApplication.id) == applicant.id)
            .values(status=ApplicationStatus.certified, broker_id=b4)
        )
    suspended = await make_account("broker", village)
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(Broker)
            .where(col(Broker.user_id) == suspended.id)
            .values(status=BrokerStatus.suspended)
        )
    await make_account("broker", (await village_under(sessions, WUXI))[1])  # another district
    async with sessions() as session:
        report = await training.compliance(session=session, actor=admin, year=THIS_YEAR)
    short = {row.broker_id: row for row in report.short}
    assert report.brokers == 4  # the suspended broker and the other district are left out
    assert report.compliant == 1  # b2: 3 + 1 days
    assert {k: v.short_by for k, v in short.items()} == {b1: 1, b3: 4, b4: 1}
    assert list(short) == [b3, b1, b4]  # furthest behind first
    assert short[b3].trained_last_year
    assert short[b3].needs_refresher
    assert not short[b1].trained_last_year
    assert report.refresher_due == 1  # b2 trained last year and had a refresher day
    async with sessions() as session:
        last = await training.compliance(session=session, actor=admin, year=THIS_YEAR - 1)
    assert {r.broker_id: r.short_by for r in last.short} == {b1: 4, b4: 4}


@SQLITE_ONLY
async def test_attendance_is_set_idempotently_and_bad_entries_change_nothing(
    sessions: Sessions, cipher: DataCipher, make_account: Any
) -> None:
    township, village = await village_under(sessions, YUZHONG)
    officer = accounts.actor_for((await make_account("township_officer", township)).user)
    b1 = await broker_id(sessions, (await make_account("broker", village)).id)
    b2 = await broker_id(sessions, (await make_account("broker", village)).id)
    far = await broker_id(
        sessions, (await make_account("broker", (await village_under(sessions, WUXI))[1])).id
    )
    applicant = await applicant_in_training(sessions, cipher, village, 3)
    sid = await new_session(sessions, officer, township, date(THIS_YEAR, 1, 5), 2)
    first = await attend(
        sessions, officer, sid, (f"broker:{b1}", None), (f"application:{applicant.id}", 1)
    )
    again = await attend(
        sessions, officer, sid, (f"broker:{b1}", None), (f"application:{applicant.id}", 1)
    )
    assert first == again
    assert {(a.trainee, a.days) for a in first} == {
        (f"broker:{b1}", 2),
        (f"application:{applicant.id}", 1),
    }
    bad = [
        ((f"broker:{b2}", 3), "entries[0].days", "不能超过"),
        ((f"broker:{far}", None), "entries[0].trainee", "不属于"),
        (("worker:1", None), "entries[0].trainee", "无效"),
        ((f"broker:{b2}", None), "entries[1].trainee", "重复"),
    ]
    for entry, field, words in bad:
        entries = [entry] if "重复" not in words else [entry, entry]
        with pytest.raises(Invalid) as caught:
            await attend(sessions, officer, sid, *entries)
        assert caught.value.field == field
        assert words in caught.value.message
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(BrokerApplication)
            .where(col(BrokerApplication.id) == applicant.id)
            .values(status=ApplicationStatus.rejected)
        )
    with pytest.raises(Invalid) as not_training:
        await attend(sessions, officer, sid, (f"application:{applicant.id}", None))
    assert "不在培训阶段" in not_training.value.message
    future = await new_session(
        sessions, officer, township, training.today_local() + timedelta(days=3), 1
    )
    with pytest.raises(Invalid) as early:
        await attend(sessions, officer, future, (f"broker:{b1}", None))
    assert "尚未开始" in early.value.message
    async with sessions() as session:
        rows = (await session.execute(select(TrainingAttendance))).scalars().all()
    assert {(r.broker_id, r.application_id, r.days) for r in rows} == {
        (b1, None, 2),
        (None, applicant.id, 1),
    }


@SQLITE_ONLY
async def test_officers_work_inside_their_region_only(
    sessions: Sessions, make_account: Any
) -> None:
    township, _ = await village_under(sessions, YUZHONG)
    other_township, _ = await village_under(sessions, WUXI)
    yuzhong = accounts.actor_for((await make_account("township_officer", township)).user)
    wuxi = accounts.actor_for((await make_account("district_admin", WUXI)).user)
    broker = accounts.actor_for(
        (await make_account("broker", (await village_under(sessions, YUZHONG))[1])).user
    )
    sid = await new_session(sessions, yuzhong, township, date(THIS_YEAR, 1, 5), 1)
    with pytest.raises(Forbidden):
        await new_session(sessions, yuzhong, other_township, date(THIS_YEAR, 1, 5), 1)
    with pytest.raises(Forbidden):
        await new_session(sessions, broker, township, date(THIS_YEAR, 1, 5), 1)
    async with sessions() as session:
        with pytest.raises(NotFound):
            await training.get_session(session=session, actor=wuxi, training_id=sid)
        with pytest.raises(Forbidden):
            await training.compliance(session=session, actor=wuxi, region_code=YUZHONG)
        listed, total = await training.list_sessions(session=session, actor=wuxi)
    assert total == 0
    assert listed == []


@SQLITE_ONLY
async def test_course_materials_are_stored_under_the_media_dir(
    sessions: Sessions, make_account: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = accounts.actor_for((await make_account("district_admin", YUZHONG)).user)
    township, _ = await village_under(sessions, YUZHONG)
    officer = accounts.actor_for((await make_account("township_officer", township)).user)
    media = tmp_path / "media"
    async with unit_of_work(sessions) as session:
        course = await training_courses.create_course(
            session=session,
            actor=admin,
            data=CourseCreate(title="劳动合同法要点", content="第一讲"),
        )
        assert course.id is not None
        await training_courses.add_text_material(
            session=session,
            actor=admin,
            course_id=course.id,
            data=MaterialTextCreate(title="讲义", text="正文"),
        )
        pdf = await training_courses.add_file_material(
            session=session,
            actor=admin,
            course_id=course.id,
            title="",
            file_name="课件.pdf",
            stream=io.BytesIO(b"%PDF-1.4 demo"),
            media_dir=media,
        )
    assert pdf.id is not None
    async with sessions() as session:
        # A township officer in the district reads the district's course and its files.
        material, path = await training_courses.material_file(
            session=session, actor=officer, course_id=course.id, material_id=pdf.id, media_dir=media
        )
        listed = await training_courses.materials(
            session=session, actor=officer, course_id=course.id
        )
    assert path.read_bytes() == b"%PDF-1.4 demo"
    assert path.parent == media / "training"
    assert material.title == "课件"
    assert [m.kind for m in listed] == ["text", "file"]
    async with unit_of_work(sessions) as session:
        with pytest.raises(Invalid) as suffix:
            await training_courses.add_file_material(
                session=session,
                actor=admin,
                course_id=course.id,
                title="x",
                file_name="run.exe",
                stream=io.BytesIO(b"MZ"),
                media_dir=media,
            )
        monkeypatch.setattr(training_courses, "MAX_MATERIAL_BYTES", 10)
        with pytest.raises(Invalid) as size:
            await training_courses.add_file_material(
                session=session,
                actor=admin,
                course_id=course.id,
                title="x",
                file_name="big.pdf",
                stream=io.BytesIO(b"x" * 11),
                media_dir=media,
            )
        with pytest.raises(Forbidden):
            await training_courses.add_text_material(
                session=session,
                actor=officer,
                course_id=course.id,
                data=MaterialTextCreate(title="t", text="t"),
            )
    assert suffix.value.field == "file"
    assert "MB" in size.value.message
    assert sorted(p.name for p in (media / "training").iterdir()) == [
        path.name
    ]  # nothing half-written
