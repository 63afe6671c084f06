"""Objects the authorisation matrix needs for the training, question-bank and exam
routes (docs/training.md): per scope ("own" = 渝中区, "other" = 巫溪县) a training
session in the scope's township, a course of the scope's district with a file
material, and an exam attempt; one question of the bank. The own attempt belongs to
the calling broker, so the broker's own calls succeed; the other to 巫溪县's broker."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlmodel import col

from marketplace.access import SYSTEM, Role
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.brokers import exams, questions, training, training_courses
from marketplace.brokers.exams_models import ExamItem
from marketplace.brokers.training_models import CourseCreate, SessionCreate, TrainingMode
from marketplace.db import unit_of_work

OWN, OTHER = "own", "other"


async def make_training_scene(scene: Any, client: AsyncTestClient[Litestar]) -> None:
    sessions = scene.sessions
    media_dir = client.app.state.settings.media_dir
    async with unit_of_work(sessions) as session:
        await questions.load_starter(session=session, actor=SYSTEM)
        listed, _ = await questions.list_questions(session=session, actor=SYSTEM, limit=1)
        scene.question = listed[0].id
        for scope in (OWN, OTHER):
            made = await training.create_session(
                session=session,
                actor=SYSTEM,
                data=SessionCreate(
                    title="矩阵培训班",
                    region_code=scene.township[scope],
                    starts_on=date(2026, 1, 5),
                    days=2,
                    mode=TrainingMode.offline,
                ),
            )
            course = await training_courses.create_course(
                session=session,
                actor=SYSTEM,
                data=CourseCreate(title="矩阵课程", region_code=scene.district[scope]),
            )
            assert made.id is not None
            assert course.id is not None
            material = await training_courses.add_file_material(
                session=session,
                actor=SYSTEM,
                course_id=course.id,
                title="讲义",
                file_name="讲义.pdf",
                stream=io.BytesIO(b"%PDF-1.4 matrix"),
                media_dir=media_dir,
            )
            assert material.id is not None
            scene.training[scope] = made.id
            scene.course[scope] = course.id
            scene.material[scope] = material.id
        candidates = {
            OWN: scene.callers[Role.broker].user_id,
            OTHER: scene.target_user[OTHER],
        }
        for scope, user_id in candidates.items():
            user = await session.get(User, user_id)
            assert user is not None
            attempt = await exams.start_for_broker(session=session, actor=accounts.actor_for(user))
            assert attempt.id is not None
            scene.exam[scope] = attempt.id
        first = (
            await session.execute(
                select(col(ExamItem.question_version_id)).where(
                    col(ExamItem.attempt_id) == scene.exam[OWN], col(ExamItem.position) == 1
                )
            )
        ).scalar_one()
        scene.exam_question = int(first)


def question_body(n: int) -> dict[str, Any]:
    return {
        "code": f"MX-{n}",
        "kind": "single",
        "category": "业务知识",
        "difficulty": "easy",
        "stem": f"矩阵题目{n}",
        "options": ["甲", "乙"],
        "correct": [0],
        "explanation": "解析",
    }
