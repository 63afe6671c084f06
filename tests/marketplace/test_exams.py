"""Exams against a real database: opening an exam session, the paper, saving answers,
the time limit, grading, retakes, question versions and the hand-over to the review chain."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.brokers import exams, questions
from marketplace.brokers.exams import Caller
from marketplace.brokers.exams_models import DEFAULT_BLUEPRINT, AnswerInput, ExamAttempt, ExamItem
from marketplace.brokers.models import ApplicationStatus, BrokerApplication
from marketplace.brokers.questions_models import QuestionInput, QuestionVersion
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.errors import Conflict, Invalid, NotFound, Unauthenticated
from tests.conftest import WUXI, YUZHONG
from tests.marketplace.training_helpers import (
    PHONE,
    applicant_in_training,
    load_bank,
    village_under,
)

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
Sessions = async_sessionmaker[AsyncSession]


async def open_exam(
    sessions: Sessions, cipher: DataCipher, application: BrokerApplication
) -> tuple[int, str]:
    async with unit_of_work(sessions) as session:
        attempt, token = await exams.start_for_applicant(
            session=session, tracking_code=application.tracking_code, phone=PHONE, cipher=cipher
        )
    assert attempt.id is not None
    return attempt.id, token


async def right_choices(sessions: Sessions, attempt_id: int) -> dict[int, list[int]]:
    """question_id -> the displayed option numbers that are correct."""
    async with sessions() as session:
        rows = await session.execute(
            select(ExamItem, QuestionVersion)
            .join(QuestionVersion, col(QuestionVersion.id) == col(ExamItem.question_version_id))
            .where(col(ExamItem.attempt_id) == attempt_id)
        )
        return {
            item.question_version_id: sorted(item.option_order.index(c) for c in version.correct)
            for item, version in rows.all()
        }


async def answer(
    sessions: Sessions, attempt_id: int, token: str, question_id: int, choices: list[int], **kw: Any
) -> Any:
    async with unit_of_work(sessions) as session:
        return await exams.save_answer(
            session=session,
            attempt_id=attempt_id,
            caller=Caller(token=token),
            data=AnswerInput(question_id=question_id, choices=choices),
            **kw,
        )


async def test_an_applicant_opens_a_paper_drawn_by_the_blueprint_and_resumes_it(
    sessions: Sessions, cipher: DataCipher
) -> None:
    await load_bank(sessions)
    _, village = await village_under(sessions, YUZHONG)
    application = await applicant_in_training(sessions, cipher, village, 1)
    async with unit_of_work(sessions) as session:
        with pytest.raises(NotFound):
            await exams.start_for_applicant(
                session=session,
                tracking_code=application.tracking_code,
                phone="13900000000",
                cipher=cipher,
            )
    attempt_id, token = await open_exam(sessions, cipher, application)
    async with sessions() as session:
        paper = await exams.get(session=session, attempt_id=attempt_id, caller=Caller(token=token))
        versions = {
            v.id: v
            for v in (
                await session.execute(
                    select(QuestionVersion).where(
                        col(QuestionVersion.id).in_([q.question_id for q in paper.questions])
                    )
                )
            ).scalars()
        }
    assert paper.total == 20
    assert paper.seconds_left > 0
    assert [q.position for q in paper.questions] == list(range(1, 21))
    cells = Counter(
        (versions[q.question_id].category, versions[q.question_id].difficulty)
        for q in paper.questions
    )
    assert cells == Counter(
        {(c, d): n for c, cell in DEFAULT_BLUEPRINT.items() for d, n in cell.items()}
    )
    assert paper.review == []  # no answers shown while the paper is open
    # A dropped connection: opening again gives the same paper under a fresh token.
    again_id, new_token = await open_exam(sessions, cipher, application)
    assert again_id == attempt_id
    assert new_token != token
    async with sessions() as session:
        with pytest.raises(NotFound):
            await exams.get(session=session, attempt_id=attempt_id, caller=Caller(token=token))
        with pytest.raises(Unauthenticated):
            await exams.get(session=session, attempt_id=attempt_id, caller=Caller())
        resumed = await exams.get(
            session=session, attempt_id=attempt_id, caller=Caller(token=new_token)
        )
    assert [q.question_id for q in resumed.questions] == [q.question_id for q in paper.questions]


@SQLITE_ONLY
async def test_two_candidates_get_different_orders(sessions: Sessions, cipher: DataCipher) -> None:
    await load_bank(sessions)
    _, village = await village_under(sessions, YUZHONG)
    orders = []
    seeds = []
    for n in (1, 2, 3):
        application = await applicant_in_training(sessions, cipher, village, n)
        attempt_id, token = await open_exam(sessions, cipher, application)
        async with sessions() as session:
            paper = await exams.get(
                session=session, attempt_id=attempt_id, caller=Caller(token=token)
            )
            attempt = await session.get(ExamAttempt, attempt_id)
        assert attempt is not None
        seeds.append(attempt.seed)
        orders.append([q.question_id for q in paper.questions])
    assert len(set(seeds)) == 3
    assert len({tuple(o) for o in orders}) == 3


async def test_answers_are_saved_as_they_go_and_a_pass_moves_the_application_on(
    sessions: Sessions, cipher: DataCipher
) -> None:
    await load_bank(sessions)
    _, village = await village_under(sessions, YUZHONG)
    application = await applicant_in_training(sessions, cipher, village, 1)
    attempt_id, token = await open_exam(sessions, cipher, application)
    right = await right_choices(sessions, attempt_id)
    first = next(iter(right))
    wrong = [0] if right[first] != [0] else [1]
    await answer(sessions, attempt_id, token, first, wrong)
    for question_id, choices in right.items():
        view = await answer(sessions, attempt_id, token, question_id, choices)
    # The same answer again is a no-op, and nothing is lost between requests.
    again = await answer(sessions, attempt_id, token, first, right[first])
    assert again.answered == view.answered == 20
    async with unit_of_work(sessions) as session:
        result = await exams.submit(
            session=session, attempt_id=attempt_id, caller=Caller(token=token)
        )
    assert result.status == "submitted"
    assert result.score == 100
    assert result.passed is True
    assert {r.category: (r.questions, r.correct, r.score) for r in result.breakdown} == {
        "政策法规": (12, 12, 100),
        "业务知识": (4, 4, 100),
        "职业道德": (4, 4, 100),
    }
    assert all(item.correct and item.explanation for item in result.review)
    async with unit_of_work(sessions) as session:
        # Handing in twice returns the same result.
        twice = await exams.submit(
            session=session, attempt_id=attempt_id, caller=Caller(token=token)
        )
        stored = await session.get(BrokerApplication, application.id)
    assert twice.score == 100
    assert stored is not None
    assert stored.status == ApplicationStatus.exam_passed
    assert stored.exam_attempt_id == attempt_id
    assert stored.exam_score == 100


async def test_bad_answers_are_refused_and_change_nothing(
    sessions: Sessions, cipher: DataCipher
) -> None:
    await load_bank(sessions)
    _, village = await village_under(sessions, YUZHONG)
    application = await applicant_in_training(sessions, cipher, village, 1)
    attempt_id, token = await open_exam(sessions, cipher, application)
    right = await right_choices(sessions, attempt_id)
    question_id = next(iter(right))
    await answer(sessions, attempt_id, token, question_id, right[question_id])
    async with sessions() as session:
        not_on_paper = (
            (
                await session.execute(
                    select(col(QuestionVersion.id)).where(
                        col(QuestionVersion.id).not_in(list(right))
                    )
                )
            )
            .scalars()
            .first()
        )
        attempt = await session.get(ExamAttempt, attempt_id)
    assert not_on_paper is not None
    assert attempt is not None
    with pytest.raises(Invalid) as caught:
        await answer(sessions, attempt_id, token, not_on_paper, [0])
    assert caught.value.field == "question_id"
    late = attempt.deadline_at + timedelta(seconds=1)
    other = [0] if right[question_id] != [0] else [1]
    with pytest.raises(Conflict) as late_error:
        await answer(sessions, attempt_id, token, question_id, other, now=late)
    assert "时间已到" in late_error.value.message
    # An answer exactly at the deadline still counts.
    await answer(
        sessions, attempt_id, token, question_id, right[question_id], now=attempt.deadline_at
    )
    async with sessions() as session:
        item = (
            await session.execute(
                select(ExamItem).where(
                    col(ExamItem.attempt_id) == attempt_id,
                    col(ExamItem.question_version_id) == question_id,
                )
            )
        ).scalar_one()
    assert sorted(item.option_order.index(a) for a in item.answer or []) == right[question_id]


async def test_past_the_time_limit_the_saved_answers_are_graded(
    sessions: Sessions, cipher: DataCipher
) -> None:
    await load_bank(sessions)
    _, village = await village_under(sessions, YUZHONG)
    application = await applicant_in_training(sessions, cipher, village, 1)
    attempt_id, token = await open_exam(sessions, cipher, application)
    right = await right_choices(sessions, attempt_id)
    for question_id in list(right)[:13]:
        await answer(sessions, attempt_id, token, question_id, right[question_id])
    async with sessions() as session:
        attempt = await session.get(ExamAttempt, attempt_id)
    assert attempt is not None
    async with unit_of_work(sessions) as session:
        result = await exams.get(
            session=session,
            attempt_id=attempt_id,
            caller=Caller(token=token),
            now=attempt.deadline_at + timedelta(minutes=5),
        )
    assert result.status == "timed_out"
    assert result.score == 65
    assert result.passed is True
    assert result.submitted_at == attempt.deadline_at
    with pytest.raises(Conflict):
        await answer(sessions, attempt_id, token, next(iter(right)), [0])


@SQLITE_ONLY
async def test_retakes_are_limited_and_recorded(sessions: Sessions, cipher: DataCipher) -> None:
    await load_bank(sessions)
    _, village = await village_under(sessions, YUZHONG)
    application = await applicant_in_training(sessions, cipher, village, 1)
    ids = []
    for _ in range(3):
        attempt_id, token = await open_exam(sessions, cipher, application)
        async with unit_of_work(sessions) as session:
            result = await exams.submit(
                session=session, attempt_id=attempt_id, caller=Caller(token=token)
            )
        assert result.score == 0
        assert result.passed is False
        ids.append(attempt_id)
    assert len(set(ids)) == 3
    async with unit_of_work(sessions) as session:
        with pytest.raises(Conflict) as caught:
            await exams.start_for_applicant(
                session=session, tracking_code=application.tracking_code, phone=PHONE, cipher=cipher
            )
    assert "次数已用完" in caught.value.message
    async with sessions() as session:
        attempts = (
            (
                await session.execute(
                    select(ExamAttempt).where(col(ExamAttempt.application_id) == application.id)
                )
            )
            .scalars()
            .all()
        )
        stored = await session.get(BrokerApplication, application.id)
    assert sorted(a.attempt_no for a in attempts) == [1, 2, 3]
    assert stored is not None
    assert stored.status == ApplicationStatus.in_training


@SQLITE_ONLY
async def test_editing_a_question_never_changes_a_paper_already_drawn(
    sessions: Sessions, cipher: DataCipher
) -> None:
    await load_bank(sessions)
    _, village = await village_under(sessions, YUZHONG)
    application = await applicant_in_training(sessions, cipher, village, 1)
    attempt_id, token = await open_exam(sessions, cipher, application)
    right = await right_choices(sessions, attempt_id)
    question_id = next(iter(right))
    async with unit_of_work(sessions) as session:
        version = await session.get(QuestionVersion, question_id)
        assert version is not None
        old_stem, old_correct = version.stem, list(version.correct)
        edited = await questions.update(
            session=session,
            actor=SYSTEM,
            question_id=version.question_id,
            data=QuestionInput(
                kind=version.kind,
                category=version.category,
                difficulty=version.difficulty,
                stem=version.stem + "（修订）",
                options=list(version.options) if version.kind != "true_false" else [],
                correct=[1 - version.correct[0]]
                if version.kind == "true_false"
                else version.correct,
                explanation=version.explanation,
                source=version.source,
            ),
        )
        history = await questions.versions(
            session=session, actor=SYSTEM, question_id=version.question_id
        )
    assert edited.version == 2
    assert [h.version for h in history] == [2, 1]
    assert edited.version_id != question_id
    await answer(sessions, attempt_id, token, question_id, right[question_id])
    async with unit_of_work(sessions) as session:
        result = await exams.submit(
            session=session, attempt_id=attempt_id, caller=Caller(token=token)
        )
    reviewed = next(r for r in result.review if r.question_id == question_id)
    assert reviewed.stem == old_stem
    assert reviewed.correct is True
    async with sessions() as session:
        unchanged = await session.get(QuestionVersion, question_id)
    assert unchanged is not None
    assert unchanged.correct == old_correct


@SQLITE_ONLY
async def test_an_unchanged_edit_makes_no_version_and_loading_the_bank_twice_changes_nothing(
    sessions: Sessions,
) -> None:
    await load_bank(sessions)
    async with unit_of_work(sessions) as session:
        report = await questions.load_starter(session=session, actor=SYSTEM)
        listed, total = await questions.list_questions(session=session, actor=SYSTEM, limit=5)
    assert (report.created, report.updated) == (0, 0)
    assert report.unchanged == total >= 100
    q = listed[0]
    async with unit_of_work(sessions) as session:
        same = await questions.update(
            session=session,
            actor=SYSTEM,
            question_id=q.id,
            data=QuestionInput(
                kind=q.kind,
                category=q.category,
                difficulty=q.difficulty,
                stem=q.stem,
                options=q.options if q.kind != "true_false" else [],
                correct=q.correct,
                explanation=q.explanation,
                source=q.source,
            ),
        )
    assert same.version == 1
    async with unit_of_work(sessions) as session:
        with pytest.raises(Invalid) as caught:
            await questions.update(
                session=session,
                actor=SYSTEM,
                question_id=q.id,
                data=QuestionInput(
                    kind="single",
                    category="政策法规",
                    difficulty="easy",
                    stem="题",
                    options=["甲", "乙"],
                    correct=[],
                    explanation="解析",
                ),
            )
    assert caught.value.field == "correct"


async def test_a_broker_sits_an_exam_with_their_login_and_officers_read_results_in_scope(
    sessions: Sessions, make_account: Any
) -> None:
    await load_bank(sessions)
    township, village = await village_under(sessions, YUZHONG)
    broker = await make_account("broker", village)
    officer = await make_account("township_officer", township)
    outsider = await make_account("district_admin", WUXI)
    actor = accounts.actor_for(broker.user)
    async with unit_of_work(sessions) as session:
        attempt = await exams.start_for_broker(session=session, actor=actor)
    assert attempt.id is not None
    async with unit_of_work(sessions) as session:
        result = await exams.submit(
            session=session, attempt_id=attempt.id, caller=Caller(actor=actor)
        )
        listed, total = await exams.list_attempts(
            session=session, actor=accounts.actor_for(officer.user)
        )
        seen = await exams.get(
            session=session,
            attempt_id=attempt.id,
            caller=Caller(actor=accounts.actor_for(officer.user)),
        )
    assert result.status == "submitted"
    assert total == 1
    assert listed[0].candidate_name == broker.user.display_name
    assert seen.score == 0
    async with sessions() as session:
        with pytest.raises(NotFound):
            await exams.get(
                session=session,
                attempt_id=attempt.id,
                caller=Caller(actor=accounts.actor_for(outsider.user)),
            )


async def test_two_starts_at_once_open_one_attempt(sessions: Sessions, make_account: Any) -> None:
    """A double tap (or two phones) starting the same candidate's exam concurrently."""
    await load_bank(sessions)
    _, village = await village_under(sessions, YUZHONG)
    actor = accounts.actor_for((await make_account("broker", village)).user)

    async def start() -> int:
        async with unit_of_work(sessions) as session:
            attempt = await exams.start_for_broker(session=session, actor=actor)
        assert attempt.id is not None
        return attempt.id

    first, second = await asyncio.gather(start(), start())
    assert first == second
    async with sessions() as session:
        attempts = (await session.execute(select(ExamAttempt))).scalars().all()
    assert [a.attempt_no for a in attempts] == [1]
