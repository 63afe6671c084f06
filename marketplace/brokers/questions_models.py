"""The question bank (题库): questions and their immutable versions (docs/training.md).

A ``Question`` is the stable identity (and its current category, difficulty and kind,
kept in step for drawing papers); every edit adds a ``QuestionVersion``. An exam paper
points at versions, so editing a question never changes a past attempt.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class QuestionKind(StrEnum):
    single = "single"  # 单选
    multiple = "multiple"  # 多选
    true_false = "true_false"  # 判断


class Difficulty(StrEnum):
    easy = "easy"
    medium = "medium"
    hard = "hard"


KIND_LABELS = {
    QuestionKind.single: "单选",
    QuestionKind.multiple: "多选",
    QuestionKind.true_false: "判断",
}
DIFFICULTY_LABELS = {Difficulty.easy: "易", Difficulty.medium: "中", Difficulty.hard: "难"}
CATEGORIES = ("业务知识", "政策法规", "职业道德")
TRUE_FALSE_OPTIONS = ("正确", "错误")
MAX_OPTIONS = 6


class Question(SQLModel, table=True):
    __tablename__ = "question"
    __table_args__ = (Index("ix_question_draw", "active", "category", "difficulty"),)

    id: int | None = Field(default=None, primary_key=True)
    # A stable external key (the CSV's 编号): loading the same file again updates, never duplicates.
    code: str = Field(max_length=32, unique=True)
    current_version: int = 1
    kind: str = Field(max_length=16)
    category: str = Field(max_length=16)
    difficulty: str = Field(max_length=8)
    active: bool = True  # retired questions are kept for past papers but never drawn
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class QuestionVersion(SQLModel, table=True):
    __tablename__ = "question_version"
    __table_args__ = (UniqueConstraint("question_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="question.id", index=True)
    version: int
    kind: str = Field(max_length=16)
    category: str = Field(max_length=16)
    difficulty: str = Field(max_length=8)
    stem: str = Field(sa_type=Text)
    options: list[str] = Field(default_factory=list, sa_type=JSON)
    correct: list[int] = Field(default_factory=list, sa_type=JSON)  # option indices
    explanation: str = Field(sa_type=Text)
    source: str | None = Field(default=None, max_length=200)  # 依据: the law or policy
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- request and response schemas --------------------------------------------------------


class QuestionInput(SQLModel):
    """A question as written by an editor. ``correct`` holds option indices (0-based);
    true/false questions take no options (正确/错误 are implied) and ``correct`` [0] or [1]."""

    code: str | None = Field(default=None, max_length=32)
    kind: QuestionKind
    category: str = Field(max_length=16)
    difficulty: Difficulty
    stem: str = Field(max_length=1000)
    options: list[str] = Field(default_factory=list, max_length=MAX_OPTIONS)
    correct: list[int] = Field(default_factory=list, max_length=MAX_OPTIONS)
    explanation: str = Field(max_length=2000)
    source: str | None = Field(default=None, max_length=200)


class QuestionPublic(SQLModel):
    id: int
    code: str
    version: int
    version_id: int
    kind: str
    category: str
    difficulty: str
    stem: str
    options: list[str]
    correct: list[int]
    explanation: str
    source: str | None
    active: bool
    updated_at: datetime


class QuestionVersionPublic(SQLModel):
    version_id: int
    version: int
    kind: str
    category: str
    difficulty: str
    stem: str
    options: list[str]
    correct: list[int]
    explanation: str
    source: str | None
    created_at: datetime


class QuestionImportError(SQLModel):
    row: int
    column: str
    message: str


class QuestionImportReport(SQLModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[QuestionImportError] = []
