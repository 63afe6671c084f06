"""The training and exam demo: a year of sessions with attendance and real attempts,
loaded twice without adding anything."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import SYSTEM
from marketplace.brokers import applications, training, training_demo
from marketplace.brokers.exams_models import ExamAttempt
from marketplace.brokers.models import ApplicationStatus, BrokerApplication
from marketplace.brokers.training_models import TrainingAttendance, TrainingSession
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from tests.conftest import YUZHONG
from tests.marketplace.training_helpers import applicant_in_training, village_under

Sessions = async_sessionmaker[AsyncSession]


async def counts(sessions: Sessions) -> tuple[int, ...]:
    async with sessions() as session:
        return tuple(
            [
                int((await session.execute(select(func.count()).select_from(model))).scalar_one())
                for model in (TrainingSession, TrainingAttendance, ExamAttempt)
            ]
        )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_demo_makes_a_year_of_training_and_real_exam_attempts_once(
    sessions: Sessions, cipher: DataCipher, make_account: Any
) -> None:
    _, village = await village_under(sessions, YUZHONG)
    for _ in range(8):
        await make_account("broker", village)
    waiting = await applicant_in_training(sessions, cipher, village, 1)
    passed = await applicant_in_training(sessions, cipher, village, 2)
    async with unit_of_work(sessions) as session:
        # As the application demo leaves it: passed, with a placeholder attempt id 0.
        await applications.record_exam_passed(session, passed.id or 0, attempt_id=0, score=80)
    for _ in range(2):
        async with unit_of_work(sessions) as session:
            await training_demo.load_bank(session)
            await training_demo.load(session, YUZHONG, "渝中区", seed=7)
        if _ == 0:
            first = await counts(sessions)
    assert await counts(sessions) == first
    made_sessions, attendance, attempts = first
    assert made_sessions == len(training_demo.PLAN)
    assert attendance > 8
    assert attempts == 2
    async with sessions() as session:
        report = await training.compliance(session=session, actor=SYSTEM, region_code=YUZHONG)
        stored = await session.get(BrokerApplication, passed.id)
        failed = (
            await session.execute(
                select(ExamAttempt).where(col(ExamAttempt.application_id) == waiting.id)
            )
        ).scalar_one()
        modes = set((await session.execute(select(col(TrainingSession.mode)))).scalars())
    assert modes == {"offline", "online", "meeting"}
    assert report.brokers >= 8
    assert report.compliant + len(report.short) == report.brokers
    assert stored is not None
    assert stored.status == ApplicationStatus.exam_passed
    assert stored.exam_attempt_id is not None
    assert stored.exam_attempt_id > 0
    assert stored.exam_score == 80
    assert failed.passed is False
    async with sessions() as session:
        still = await session.get(BrokerApplication, waiting.id)
    assert still is not None
    assert still.status == ApplicationStatus.in_training
