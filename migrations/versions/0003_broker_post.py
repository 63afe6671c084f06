"""broker: number, certification time, key broker and public-welfare post

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broker", schema=None) as batch_op:
        batch_op.add_column(sa.Column("broker_no", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("certified_at", marketplace.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("key_broker", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("welfare_post", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("welfare_post_task_types", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("welfare_post_monthly_fen", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("status_reason", sa.String(length=500), nullable=True))
        batch_op.create_unique_constraint("uq_broker_broker_no", ["broker_no"])


def downgrade() -> None:
    with op.batch_alter_table("broker", schema=None) as batch_op:
        batch_op.drop_constraint("uq_broker_broker_no", type_="unique")
        for column in (
            "status_reason",
            "welfare_post_monthly_fen",
            "welfare_post_task_types",
            "welfare_post",
            "key_broker",
            "certified_at",
            "broker_no",
        ):
            batch_op.drop_column(column)
