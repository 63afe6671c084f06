"""brokers: training (courses, materials, sessions, attendance), question bank, exams

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import marketplace.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTC = marketplace.db.UTCDateTime


def _training() -> None:
    op.create_table(
        "training_course",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", AutoString(length=100), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("refresher", sa.Boolean(), nullable=False),
        sa.Column("region_code", AutoString(length=12), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["user_account.id"]),
        sa.ForeignKeyConstraint(["region_code"], ["region.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_training_course_region_code", "training_course", ["region_code"])
    op.create_table(
        "training_material",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("title", AutoString(length=100), nullable=False),
        sa.Column("kind", AutoString(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("file_name", AutoString(length=200), nullable=True),
        sa.Column("stored_name", AutoString(length=80), nullable=True),
        sa.Column("media_type", AutoString(length=100), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["training_course.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_training_material_course_id", "training_material", ["course_id"])
    op.create_table(
        "training_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("title", AutoString(length=100), nullable=False),
        sa.Column("region_code", AutoString(length=12), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("mode", AutoString(length=16), nullable=False),
        sa.Column("location", AutoString(length=200), nullable=True),
        sa.Column("refresher", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.CheckConstraint("days >= 1 AND days <= 30", name="ck_training_days"),
        sa.ForeignKeyConstraint(["course_id"], ["training_course.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["user_account.id"]),
        sa.ForeignKeyConstraint(["region_code"], ["region.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_training_session_region_starts", "training_session", ["region_code", "starts_on"]
    )
    op.create_table(
        "training_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("broker_id", sa.Integer(), nullable=True),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("name", AutoString(length=64), nullable=False),
        sa.Column("village_code", AutoString(length=12), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("recorded_at", UTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(broker_id IS NULL) <> (application_id IS NULL)", name="ck_attendance_one_trainee"
        ),
        sa.CheckConstraint("days >= 1", name="ck_attendance_days"),
        sa.ForeignKeyConstraint(["session_id"], ["training_session.id"]),
        sa.ForeignKeyConstraint(["broker_id"], ["broker.id"]),
        sa.ForeignKeyConstraint(["application_id"], ["broker_application.id"]),
        sa.ForeignKeyConstraint(["village_code"], ["region.code"]),
        sa.ForeignKeyConstraint(["recorded_by"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "broker_id"),
        sa.UniqueConstraint("session_id", "application_id"),
    )
    for column in ("session_id", "broker_id", "application_id"):
        op.create_index(f"ix_training_attendance_{column}", "training_attendance", [column])


def _questions() -> None:
    op.create_table(
        "question",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", AutoString(length=32), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("kind", AutoString(length=16), nullable=False),
        sa.Column("category", AutoString(length=16), nullable=False),
        sa.Column("difficulty", AutoString(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_question_draw", "question", ["active", "category", "difficulty"])
    op.create_table(
        "question_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", AutoString(length=16), nullable=False),
        sa.Column("category", AutoString(length=16), nullable=False),
        sa.Column("difficulty", AutoString(length=8), nullable=False),
        sa.Column("stem", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("correct", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("source", AutoString(length=200), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["question_id"], ["question.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("question_id", "version"),
    )
    op.create_index("ix_question_version_question_id", "question_version", ["question_id"])


def _exams() -> None:
    op.create_table(
        "exam_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("blueprint", sa.JSON(), nullable=False),
        sa.Column("time_limit_minutes", sa.Integer(), nullable=False),
        sa.Column("pass_mark", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["updated_by"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "exam_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("broker_id", sa.Integer(), nullable=True),
        sa.Column("candidate_name", AutoString(length=64), nullable=False),
        sa.Column("village_code", AutoString(length=12), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("status", AutoString(length=16), nullable=False),
        sa.Column("blueprint", sa.JSON(), nullable=False),
        sa.Column("time_limit_minutes", sa.Integer(), nullable=False),
        sa.Column("pass_mark", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC(timezone=True), nullable=False),
        sa.Column("deadline_at", UTC(timezone=True), nullable=False),
        sa.Column("submitted_at", UTC(timezone=True), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("breakdown", sa.JSON(), nullable=True),
        sa.Column("token_hash", AutoString(length=64), nullable=True),
        sa.CheckConstraint(
            "(broker_id IS NULL) <> (application_id IS NULL)", name="ck_exam_one_candidate"
        ),
        sa.ForeignKeyConstraint(["application_id"], ["broker_application.id"]),
        sa.ForeignKeyConstraint(["broker_id"], ["broker.id"]),
        sa.ForeignKeyConstraint(["village_code"], ["region.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_id", "attempt_no"),
        sa.UniqueConstraint("broker_id", "attempt_no"),
        sa.UniqueConstraint("token_hash"),
    )
    for column in ("application_id", "broker_id", "village_code"):
        op.create_index(f"ix_exam_attempt_{column}", "exam_attempt", [column])
    op.create_table(
        "exam_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("question_version_id", sa.Integer(), nullable=False),
        sa.Column("category", AutoString(length=16), nullable=False),
        sa.Column("option_order", sa.JSON(), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("answered_at", UTC(timezone=True), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(["attempt_id"], ["exam_attempt.id"]),
        sa.ForeignKeyConstraint(["question_version_id"], ["question_version.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("attempt_id", "position"),
        sa.UniqueConstraint("attempt_id", "question_version_id"),
    )
    op.create_index("ix_exam_item_attempt_id", "exam_item", ["attempt_id"])


def upgrade() -> None:
    _training()
    _questions()
    _exams()


def downgrade() -> None:
    for table in (
        "exam_item",
        "exam_attempt",
        "exam_policy",
        "question_version",
        "question",
        "training_attendance",
        "training_session",
        "training_material",
        "training_course",
    ):
        op.drop_table(table)
