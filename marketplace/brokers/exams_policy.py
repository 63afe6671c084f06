"""The exam policy the city sets: blueprint, time limit, pass mark, attempts
(docs/training.md, "Exams"). One row; absent means the defaults."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, require
from marketplace.brokers import exams_rules
from marketplace.brokers.exams_models import (
    DEFAULT_BLUEPRINT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PASS_MARK,
    DEFAULT_TIME_LIMIT_MINUTES,
    ExamPolicy,
    ExamPolicyInput,
    ExamPolicyPublic,
)
from marketplace.brokers.questions_models import Question, QuestionVersion
from marketplace.clock import utcnow
from marketplace.errors import Invalid

POLICY_ID = 1


@dataclass(frozen=True)
class Policy:
    blueprint: dict[str, dict[str, int]]
    time_limit_minutes: int
    pass_mark: int
    max_attempts: int


async def current_policy(session: AsyncSession) -> Policy:
    row = await session.get(ExamPolicy, POLICY_ID)
    if row is None:
        return Policy(
            blueprint=DEFAULT_BLUEPRINT,
            time_limit_minutes=DEFAULT_TIME_LIMIT_MINUTES,
            pass_mark=DEFAULT_PASS_MARK,
            max_attempts=DEFAULT_MAX_ATTEMPTS,
        )
    return Policy(
        blueprint={k: dict(v) for k, v in row.blueprint.items()},
        time_limit_minutes=row.time_limit_minutes,
        pass_mark=row.pass_mark,
        max_attempts=row.max_attempts,
    )


def policy_public(policy: Policy) -> ExamPolicyPublic:
    return ExamPolicyPublic(
        blueprint=policy.blueprint,
        time_limit_minutes=policy.time_limit_minutes,
        pass_mark=policy.pass_mark,
        max_attempts=policy.max_attempts,
        questions=exams_rules.paper_size(policy.blueprint),
    )


async def pool(session: AsyncSession) -> list[exams_rules.Candidate]:
    rows = await session.execute(
        select(QuestionVersion)
        .join(Question, col(Question.id) == col(QuestionVersion.question_id))
        .where(
            col(Question.active).is_(True),
            col(QuestionVersion.version) == col(Question.current_version),
        )
    )
    return [
        exams_rules.Candidate(
            version_id=v.id,
            kind=v.kind,
            category=v.category,
            difficulty=v.difficulty,
            option_count=len(v.options),
        )
        for v in rows.scalars()
        if v.id is not None
    ]


async def set_policy(
    *, session: AsyncSession, actor: Actor, data: ExamPolicyInput
) -> ExamPolicyPublic:
    """The city sets the blueprint, time limit, pass mark and attempts; a blueprint the
    bank cannot fill is refused. Attempts already started keep what they started with."""
    require(actor, "exam.policy")
    blueprint = exams_rules.check_blueprint(data.blueprint)
    problems = exams_rules.shortfalls(blueprint, await pool(session))
    if problems:
        raise Invalid("blueprint", "题库题目不足：" + "；".join(problems))
    row = await session.get(ExamPolicy, POLICY_ID) or ExamPolicy(id=POLICY_ID)
    row.blueprint = blueprint
    row.time_limit_minutes = data.time_limit_minutes
    row.pass_mark = data.pass_mark
    row.max_attempts = data.max_attempts
    row.updated_by = actor.user_id
    row.updated_at = utcnow()
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="exam.policy",
        object_type="exam_policy",
        object_id=POLICY_ID,
        region_code="50",
        detail={"pass_mark": data.pass_mark, "max_attempts": data.max_attempts},
    )
    return policy_public(await current_policy(session))
