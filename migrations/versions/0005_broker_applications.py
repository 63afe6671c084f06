"""brokers: applications, their decisions, broker status history

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import marketplace.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTC = marketplace.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "broker_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracking_code", AutoString(length=16), nullable=False),
        sa.Column("name", AutoString(length=32), nullable=False),
        sa.Column("id_number_enc", AutoString(length=255), nullable=False),
        sa.Column("id_number_hash", AutoString(length=64), nullable=False),
        sa.Column("open_id_hash", AutoString(length=64), nullable=True),
        sa.Column("phone_enc", AutoString(length=255), nullable=False),
        sa.Column("phone_hash", AutoString(length=64), nullable=False),
        sa.Column("village_code", AutoString(length=12), nullable=False),
        sa.Column("background", AutoString(length=32), nullable=False),
        sa.Column("computer_skills", sa.Boolean(), nullable=False),
        sa.Column("smartphone_skills", sa.Boolean(), nullable=False),
        sa.Column("enough_time", sa.Boolean(), nullable=False),
        sa.Column("not_on_public_payroll", sa.Boolean(), nullable=False),
        sa.Column("note", AutoString(length=500), nullable=True),
        sa.Column("status", AutoString(length=24), nullable=False),
        sa.Column("status_since", UTC(timezone=True), nullable=False),
        sa.Column("returned_from", AutoString(length=24), nullable=True),
        sa.Column("status_reason", AutoString(length=500), nullable=True),
        sa.Column("exam_attempt_id", sa.Integer(), nullable=True),
        sa.Column("exam_score", sa.Integer(), nullable=True),
        sa.Column("broker_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["broker_id"], ["broker.id"]),
        sa.ForeignKeyConstraint(["village_code"], ["region.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tracking_code"),
        sa.UniqueConstraint("open_id_hash"),
    )
    with op.batch_alter_table("broker_application", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_broker_application_id_number_hash"), ["id_number_hash"], unique=False
        )
        batch_op.create_index(
            "ix_broker_application_status_village",
            ["status", "village_code", "status_since"],
            unique=False,
        )

    op.create_table(
        "broker_application_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("action", AutoString(length=16), nullable=False),
        sa.Column("from_status", AutoString(length=24), nullable=True),
        sa.Column("to_status", AutoString(length=24), nullable=False),
        sa.Column("comment", AutoString(length=500), nullable=True),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", AutoString(length=32), nullable=False),
        sa.Column("at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["broker_application.id"]),
        sa.ForeignKeyConstraint(["actor_user_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("broker_application_decision", schema=None) as batch_op:
        batch_op.create_index(
            "ix_broker_application_decision_app_at", ["application_id", "at"], unique=False
        )

    op.create_table(
        "broker_status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broker_id", sa.Integer(), nullable=False),
        sa.Column("old_status", AutoString(length=16), nullable=True),
        sa.Column("new_status", AutoString(length=16), nullable=False),
        sa.Column("reason", AutoString(length=500), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["broker_id"], ["broker.id"]),
        sa.ForeignKeyConstraint(["actor_user_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("broker_status_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_broker_status_change_broker_id"), ["broker_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("broker_status_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broker_status_change_broker_id"))
    op.drop_table("broker_status_change")
    with op.batch_alter_table("broker_application_decision", schema=None) as batch_op:
        batch_op.drop_index("ix_broker_application_decision_app_at")
    op.drop_table("broker_application_decision")
    with op.batch_alter_table("broker_application", schema=None) as batch_op:
        batch_op.drop_index("ix_broker_application_status_village")
        batch_op.drop_index(batch_op.f("ix_broker_application_id_number_hash"))
    op.drop_table("broker_application")
