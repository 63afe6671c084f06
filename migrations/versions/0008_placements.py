"""recommendations, placements, first-wage reports, arrears cases; candidate prefilter

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "status IN ('recommended', 'shortlisted', 'hired', 'onboarded')"


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, marketplace.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "recommendation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("job.id"), nullable=False),
        sa.Column("worker_id", sa.Integer(), sa.ForeignKey("worker.id"), nullable=False),
        sa.Column("broker_id", sa.Integer(), sa.ForeignKey("broker.id"), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("attribution_until"),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=True),
        _at("created_at"),
        _at("decided_at", nullable=True),
        _at("hired_at", nullable=True),
        _at("updated_at"),
    )
    with op.batch_alter_table("recommendation", schema=None) as batch_op:
        batch_op.create_index(
            "uq_recommendation_active",
            ["job_id", "worker_id"],
            unique=True,
            sqlite_where=sa.text(ACTIVE),
            postgresql_where=sa.text(ACTIVE),
        )
        batch_op.create_index("ix_recommendation_broker_created", ["broker_id", "created_at"])
        batch_op.create_index("ix_recommendation_job_status", ["job_id", "status"])
        batch_op.create_index("ix_recommendation_worker", ["worker_id"])

    op.create_table(
        "placement",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "recommendation_id",
            sa.Integer(),
            sa.ForeignKey("recommendation.id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("job.id"), nullable=False),
        sa.Column(
            "organization_id", sa.Integer(), sa.ForeignKey("organization.id"), nullable=False
        ),
        sa.Column("broker_id", sa.Integer(), sa.ForeignKey("broker.id"), nullable=False),
        sa.Column("worker_id", sa.Integer(), sa.ForeignKey("worker.id"), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("wage_min_fen", sa.Integer(), nullable=False),
        sa.Column("wage_max_fen", sa.Integer(), nullable=False),
        sa.Column("wage_unit", sa.String(length=8), nullable=False),
        sa.Column("fee_fixed_fen", sa.Integer(), nullable=True),
        sa.Column("fee_share_bp", sa.Integer(), nullable=True),
        sa.Column("confirmed_by", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=True),
        _at("confirmed_at"),
    )
    with op.batch_alter_table("placement", schema=None) as batch_op:
        for column in ("job_id", "organization_id", "broker_id", "worker_id"):
            batch_op.create_index(f"ix_placement_{column}", [column])

    op.create_table(
        "wage_report",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "placement_id", sa.Integer(), sa.ForeignKey("placement.id"), nullable=False, unique=True
        ),
        sa.Column("paid_in_full", sa.Boolean(), nullable=False),
        sa.Column("paid_on_time", sa.Boolean(), nullable=False),
        sa.Column("amount_paid_fen", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("reported_by", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=True),
        _at("reported_at"),
    )

    op.create_table(
        "arrears_case",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "placement_id", sa.Integer(), sa.ForeignKey("placement.id"), nullable=False, unique=True
        ),
        sa.Column("wage_report_id", sa.Integer(), sa.ForeignKey("wage_report.id"), nullable=False),
        sa.Column(
            "organization_id", sa.Integer(), sa.ForeignKey("organization.id"), nullable=False
        ),
        sa.Column("broker_id", sa.Integer(), sa.ForeignKey("broker.id"), nullable=False),
        sa.Column("worker_id", sa.Integer(), sa.ForeignKey("worker.id"), nullable=False),
        sa.Column(
            "region_code", sa.String(length=12), sa.ForeignKey("region.code"), nullable=False
        ),
        sa.Column("owed_fen", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("opened_at"),
        _at("resolved_at", nullable=True),
    )
    with op.batch_alter_table("arrears_case", schema=None) as batch_op:
        batch_op.create_index("ix_arrears_org_status", ["organization_id", "status"])

    op.create_table(
        "worker_occupation",
        sa.Column("worker_id", sa.Integer(), sa.ForeignKey("worker.id"), primary_key=True),
        sa.Column("occupation_key", sa.String(length=32), primary_key=True),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        _at("verified_at"),
    )
    with op.batch_alter_table("worker_occupation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_worker_occupation_pick", ["occupation_key", "consent", "verified_at"]
        )
        batch_op.create_index("ix_worker_occupation_recent", ["occupation_key", "verified_at"])
        batch_op.create_index("ix_worker_occupation_village", ["occupation_key", "village_code"])


def downgrade() -> None:
    for table in ("worker_occupation", "arrears_case", "wage_report", "placement"):
        op.drop_table(table)
    with op.batch_alter_table("recommendation", schema=None) as batch_op:
        for index in (
            "ix_recommendation_worker",
            "ix_recommendation_job_status",
            "ix_recommendation_broker_created",
            "uq_recommendation_active",
        ):
            batch_op.drop_index(index)
    op.drop_table("recommendation")
