"""workers: background import jobs (progress on the page) and indexes for the list

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import marketplace.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_import_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broker_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("file_format", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=True),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("error_rows", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["broker_id"], ["broker.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("worker_import_job", schema=None) as batch_op:
        batch_op.create_index("ix_worker_import_job_broker", ["broker_id", "id"], unique=False)
    with op.batch_alter_table("worker", schema=None) as batch_op:
        batch_op.create_index(
            "ix_worker_status_village",
            ["employment_status", "hukou_village_code", "deleted_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_worker_village_name",
            ["hukou_village_code", "deleted_at", "name", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("worker", schema=None) as batch_op:
        batch_op.drop_index("ix_worker_village_name")
        batch_op.drop_index("ix_worker_status_village")
    with op.batch_alter_table("worker_import_job", schema=None) as batch_op:
        batch_op.drop_index("ix_worker_import_job_broker")
    op.drop_table("worker_import_job")
