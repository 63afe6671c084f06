"""organisations: members, agency authorisations; jobs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 20:17:52.796794
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import marketplace.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organization",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("credit_code", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
        sa.Column("contact_name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("contact_phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("licence_no", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("region_code", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("verified_by", sa.Integer(), nullable=True),
        sa.Column("verified_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["region_code"],
            ["region.code"],
        ),
        sa.ForeignKeyConstraint(
            ["verified_by"],
            ["user_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credit_code"),
    )
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_organization_name"), ["name"], unique=False)
        batch_op.create_index(
            "ix_organization_region_status", ["region_code", "status"], unique=False
        )

    op.create_table(
        "agency_authorization",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employer_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("document_ref", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["organization.id"],
        ),
        sa.ForeignKeyConstraint(
            ["employer_id"],
            ["organization.id"],
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["user_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("employer_id", "agency_id", "document_ref"),
    )
    with op.batch_alter_table("agency_authorization", schema=None) as batch_op:
        batch_op.create_index(
            "ix_agency_authorization_pair", ["agency_id", "employer_id"], unique=False
        )

    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("occupation_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("headcount", sa.Integer(), nullable=False),
        sa.Column("wage_min_fen", sa.Integer(), nullable=False),
        sa.Column("wage_max_fen", sa.Integer(), nullable=False),
        sa.Column("wage_unit", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("pay_day", sa.Integer(), nullable=True),
        sa.Column("work_region_code", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column(
            "work_location_text", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True
        ),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("certificates_required", sa.JSON(), nullable=False),
        sa.Column("age_min", sa.Integer(), nullable=True),
        sa.Column("age_max", sa.Integer(), nullable=True),
        sa.Column("board", sa.Boolean(), nullable=False),
        sa.Column("lodging", sa.Boolean(), nullable=False),
        sa.Column("social_insurance", sa.Boolean(), nullable=False),
        sa.Column("contact", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("fee_fixed_fen", sa.Integer(), nullable=True),
        sa.Column("fee_share_bp", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column(
            "review_district_code", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False
        ),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("submitted_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reviewed_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("published_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["organization.id"],
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"],
            ["user_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_job_occupation_code"), ["occupation_code"], unique=False
        )
        batch_op.create_index("ix_job_org_status", ["organization_id", "status"], unique=False)
        batch_op.create_index("ix_job_region_status", ["work_region_code", "status"], unique=False)
        batch_op.create_index(
            "ix_job_review_queue", ["review_district_code", "status"], unique=False
        )
        batch_op.create_index("ix_job_status_ends", ["status", "ends_on"], unique=False)

    op.create_table(
        "organization_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.Integer(), nullable=True),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by"],
            ["user_account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
    )
    with op.batch_alter_table("organization_member", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_organization_member_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("organization_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organization_member_organization_id"))

    op.drop_table("organization_member")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_status_ends")
        batch_op.drop_index("ix_job_review_queue")
        batch_op.drop_index("ix_job_region_status")
        batch_op.drop_index("ix_job_org_status")
        batch_op.drop_index(batch_op.f("ix_job_occupation_code"))
        batch_op.drop_index(batch_op.f("ix_job_agency_id"))

    op.drop_table("job")
    with op.batch_alter_table("agency_authorization", schema=None) as batch_op:
        batch_op.drop_index("ix_agency_authorization_pair")

    op.drop_table("agency_authorization")
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.drop_index("ix_organization_region_status")
        batch_op.drop_index(batch_op.f("ix_organization_name"))

    op.drop_table("organization")
