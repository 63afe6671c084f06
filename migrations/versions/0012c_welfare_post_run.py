"""billing: one row per month whose public-welfare post subsidies the scheduled duty
booked (docs/billing.md)

Revision ID: 0012c
Revises: 0011
Create Date: 2026-11-27 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision: str = "0012c"
down_revision: str | None = "0012a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "welfare_post_run",
        sa.Column("period", sa.String(length=7), primary_key=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.Column("ran_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("welfare_post_run")
