"""scoring: activity days, score models, runs, scores, decisions, appeals, annual reviews

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 20:40:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.db
from marketplace.scoring.rules import DEFAULT_MODEL

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = marketplace.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "user_activity_day",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user_account.id"), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
    )
    op.create_index("ix_user_activity_day_day", "user_activity_day", ["day"])
    op.create_table(
        "score_model",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False, unique=True),
        sa.Column("effective_from", sa.String(length=7), nullable=False, index=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_table(
        "score_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("period", sa.String(length=7), nullable=False, index=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("score_model.id"), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("inputs_digest", sa.String(length=64), nullable=False),
        sa.Column("broker_count", sa.Integer(), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=True),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
    )
    op.create_table(
        "broker_score",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column(
            "broker_id", sa.Integer(), sa.ForeignKey("broker.id"), nullable=False, index=True
        ),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("score_model.id"), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("score_run.id"), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(length=16), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("assessment_rule", sa.String(length=200), nullable=False),
        sa.Column("rank_district", sa.Integer(), nullable=False),
        sa.Column("rank_city", sa.Integer(), nullable=False),
        sa.Column("district_count", sa.Integer(), nullable=False),
        sa.Column("city_count", sa.Integer(), nullable=False),
        sa.Column("in_top", sa.Boolean(), nullable=False),
        sa.Column("in_bottom", sa.Boolean(), nullable=False),
        sa.Column("promotion_candidate", sa.Boolean(), nullable=False),
        sa.Column("elimination_candidate", sa.Boolean(), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("computed_at", UTC, nullable=False),
        sa.UniqueConstraint("period", "broker_id"),
    )
    op.create_index(
        "ix_broker_score_period_district", "broker_score", ["period", "district_code", "score"]
    )
    op.create_table(
        "score_decision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("score_id", sa.Integer(), sa.ForeignKey("broker_score.id"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("decided_by", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=False),
        sa.Column("decided_at", UTC, nullable=False),
        sa.UniqueConstraint("score_id", "kind"),
    )
    op.create_table(
        "score_appeal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "score_id", sa.Integer(), sa.ForeignKey("broker_score.id"), nullable=False, unique=True
        ),
        sa.Column(
            "broker_id", sa.Integer(), sa.ForeignKey("broker.id"), nullable=False, index=True
        ),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decision_reason", sa.String(length=1000), nullable=True),
        sa.Column("decided_by", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=True),
        sa.Column("decided_at", UTC, nullable=True),
        sa.Column("recompute_run_id", sa.Integer(), sa.ForeignKey("score_run.id"), nullable=True),
        sa.Column("score_before", sa.Float(), nullable=True),
        sa.Column("score_after", sa.Float(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_table(
        "annual_review",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("broker_id", sa.Integer(), sa.ForeignKey("broker.id"), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False, index=True),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("targets_set_by", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=True),
        sa.Column("average_score", sa.Float(), nullable=True),
        sa.Column("months_scored", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column("decided_by", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=True),
        sa.Column("decided_at", UTC, nullable=True),
        sa.UniqueConstraint("broker_id", "year"),
    )
    # Version 1 of the score model, in force from the start (docs/scoring.md).
    score_model = sa.table(
        "score_model",
        sa.column("version", sa.Integer()),
        sa.column("effective_from", sa.String()),
        sa.column("rules", sa.JSON()),
        sa.column("note", sa.String()),
        sa.column("created_at", UTC),
    )
    from marketplace.clock import utcnow

    op.bulk_insert(
        score_model,
        [
            {
                "version": 1,
                "effective_from": "2000-01",
                "rules": json.loads(json.dumps(DEFAULT_MODEL)),
                "note": "初始积分规则",
                "created_at": utcnow(),
            }
        ],
    )


def downgrade() -> None:
    for table in (
        "annual_review",
        "score_appeal",
        "score_decision",
        "broker_score",
        "score_run",
        "score_model",
        "user_activity_day",
    ):
        op.drop_table(table)
