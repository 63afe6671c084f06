"""Exams (考试): the policy, attempts and the items of each paper (docs/training.md).

An attempt copies the policy it started under (blueprint, time limit, pass mark), so
changing the policy never changes a running or past attempt. Its items point at
question versions, and its seed is recorded, so a paper can be rebuilt and audited.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime

DEFAULT_TIME_LIMIT_MINUTES = 30
DEFAULT_PASS_MARK = 60
DEFAULT_MAX_ATTEMPTS = 3
# category -> difficulty -> how many questions. 20 questions, 5 points each.
DEFAULT_BLUEPRINT: dict[str, dict[str, int]] = {
    "政策法规": {"easy": 3, "medium": 6, "hard": 3},
    "业务知识": {"easy": 1, "medium": 2, "hard": 1},
    "职业道德": {"easy": 2, "medium": 2},
}


class AttemptStatus(StrEnum):
    open = "open"
    submitted = "submitted"  # handed in by the candidate
    timed_out = "timed_out"  # graded by the server after the time limit


class ExamPolicy(SQLModel, table=True):
    """One row (id 1) set by the city; absent means the defaults above."""

    __tablename__ = "exam_policy"

    id: int | None = Field(default=None, primary_key=True)
    blueprint: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    time_limit_minutes: int = DEFAULT_TIME_LIMIT_MINUTES
    pass_mark: int = DEFAULT_PASS_MARK
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    updated_by: int | None = Field(default=None, foreign_key="user_account.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExamAttempt(SQLModel, table=True):
    __tablename__ = "exam_attempt"
    __table_args__ = (
        UniqueConstraint("application_id", "attempt_no"),
        UniqueConstraint("broker_id", "attempt_no"),
        CheckConstraint(
            "(broker_id IS NULL) <> (application_id IS NULL)", name="ck_exam_one_candidate"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    application_id: int | None = Field(
        default=None, foreign_key="broker_application.id", index=True
    )
    broker_id: int | None = Field(default=None, foreign_key="broker.id", index=True)
    candidate_name: str = Field(max_length=64)
    village_code: str = Field(foreign_key="region.code", max_length=12, index=True)
    attempt_no: int
    seed: int
    status: str = Field(default=AttemptStatus.open, max_length=16)
    blueprint: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    time_limit_minutes: int
    pass_mark: int
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deadline_at: datetime = Field(sa_type=UTCDateTime)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    score: int | None = None
    passed: bool | None = None
    breakdown: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # An applicant's exam session: sha256 of the token handed out with tracking code + phone.
    token_hash: str | None = Field(default=None, max_length=64, unique=True)


class ExamItem(SQLModel, table=True):
    __tablename__ = "exam_item"
    __table_args__ = (
        UniqueConstraint("attempt_id", "position"),
        UniqueConstraint("attempt_id", "question_version_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="exam_attempt.id", index=True)
    position: int
    question_version_id: int = Field(foreign_key="question_version.id")
    category: str = Field(max_length=16)
    # Displayed option i is the version's option option_order[i].
    option_order: list[int] = Field(default_factory=list, sa_type=JSON)
    answer: list[int] | None = Field(default=None, sa_type=JSON)  # version option indices
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    correct: bool | None = None


# --- request and response schemas --------------------------------------------------------


class ExamStart(SQLModel):
    """An applicant opens an exam session with the tracking code and the phone on file;
    a logged-in broker sends an empty body."""

    tracking_code: str | None = Field(default=None, max_length=32)
    phone: str | None = Field(default=None, max_length=20)


class AnswerInput(SQLModel):
    question_id: int = Field(ge=1, le=2_147_483_647, description="试卷上的题目编号")
    choices: list[int] = Field(max_length=8, description="所选选项在试卷上的序号，从 0 开始")


class PaperQuestion(SQLModel):
    question_id: int
    position: int
    kind: str
    category: str
    stem: str
    options: list[str]
    choices: list[int] | None  # the saved answer, in displayed option numbers


class CategoryResult(SQLModel):
    category: str
    questions: int
    correct: int
    score: int


class ReviewItem(SQLModel):
    question_id: int
    position: int
    stem: str
    options: list[str]
    choices: list[int] | None
    correct_choices: list[int]
    correct: bool
    explanation: str


class ExamPublic(SQLModel):
    id: int
    candidate_name: str
    attempt_no: int
    status: str
    started_at: datetime
    deadline_at: datetime
    submitted_at: datetime | None
    seconds_left: int
    time_limit_minutes: int
    pass_mark: int
    score: int | None
    passed: bool | None
    answered: int
    total: int
    questions: list[PaperQuestion] = []
    breakdown: list[CategoryResult] = []
    review: list[ReviewItem] = []
    token: str | None = None  # only when an applicant's exam session is opened


class ExamPolicyInput(SQLModel):
    blueprint: dict[str, dict[str, int]]
    time_limit_minutes: int = Field(ge=5, le=240)
    pass_mark: int = Field(ge=1, le=100)
    max_attempts: int = Field(ge=1, le=20)


class ExamPolicyPublic(ExamPolicyInput):
    questions: int


class ExamSummary(SQLModel):
    id: int
    candidate: str
    candidate_name: str
    village_code: str
    attempt_no: int
    status: str
    started_at: datetime
    score: int | None
    passed: bool | None
