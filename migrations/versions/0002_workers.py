"""workers: the register, its history, dismissed duplicates; broker villages

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 18:24:18.451764
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import marketplace.db  # noqa: F401  (column types)


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('broker_village',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('broker_id', sa.Integer(), nullable=False),
    sa.Column('village_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('created_at', marketplace.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['broker_id'], ['broker.id'], ),
    sa.ForeignKeyConstraint(['village_code'], ['region.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('broker_id', 'village_code')
    )
    with op.batch_alter_table('broker_village', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_broker_village_broker_id'), ['broker_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_broker_village_village_code'), ['village_code'], unique=False)

    # Every existing broker serves its home village.
    op.execute(
        'INSERT INTO broker_village (broker_id, village_code, created_at) '
        'SELECT id, village_code, created_at FROM broker'
    )

    op.create_table('worker',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('broker_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('id_number_enc', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('id_number_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('gender', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('phone_enc', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('phone_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('current_region_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
    sa.Column('current_location_text', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('skills', sa.JSON(), nullable=False),
    sa.Column('occupation_codes', sa.JSON(), nullable=False),
    sa.Column('certificates', sa.JSON(), nullable=False),
    sa.Column('wage_min_fen', sa.Integer(), nullable=True),
    sa.Column('wage_max_fen', sa.Integer(), nullable=True),
    sa.Column('wage_unit', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('available_from', sa.Date(), nullable=True),
    sa.Column('mobility', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('training_wishes', sa.JSON(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('consent_to_recommend', sa.Boolean(), nullable=False),
    sa.Column('consent_at', marketplace.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('consent_method', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('consent_recorded_by', sa.Integer(), nullable=True),
    sa.Column('hukou_village_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('employment_status', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('last_verified_at', marketplace.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', marketplace.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', marketplace.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', marketplace.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted_reason', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('merged_into_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['broker_id'], ['broker.id'], ),
    sa.ForeignKeyConstraint(['consent_recorded_by'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['current_region_code'], ['region.code'], ),
    sa.ForeignKeyConstraint(['hukou_village_code'], ['region.code'], ),
    sa.ForeignKeyConstraint(['merged_into_id'], ['worker.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('id_number_hash')
    )
    with op.batch_alter_table('worker', schema=None) as batch_op:
        batch_op.create_index('ix_worker_broker_live', ['broker_id', 'deleted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_worker_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_worker_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_index('ix_worker_village_birth', ['hukou_village_code', 'birth_date'], unique=False)
        batch_op.create_index('ix_worker_village_live', ['hukou_village_code', 'deleted_at'], unique=False)

    op.create_table('worker_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=False),
    sa.Column('origin_worker_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('sensitive', sa.Boolean(), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('at', marketplace.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_user_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['origin_worker_id'], ['worker.id'], ),
    sa.ForeignKeyConstraint(['worker_id'], ['worker.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('worker_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worker_change_at'), ['at'], unique=False)
        batch_op.create_index('ix_worker_change_worker_at', ['worker_id', 'at'], unique=False)

    op.create_table('worker_duplicate_dismissal',
    sa.Column('worker_a_id', sa.Integer(), nullable=False),
    sa.Column('worker_b_id', sa.Integer(), nullable=False),
    sa.Column('dismissed_by', sa.Integer(), nullable=True),
    sa.Column('dismissed_at', marketplace.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dismissed_by'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['worker_a_id'], ['worker.id'], ),
    sa.ForeignKeyConstraint(['worker_b_id'], ['worker.id'], ),
    sa.PrimaryKeyConstraint('worker_a_id', 'worker_b_id')
    )


def downgrade() -> None:
    op.drop_table('worker_duplicate_dismissal')
    with op.batch_alter_table('worker_change', schema=None) as batch_op:
        batch_op.drop_index('ix_worker_change_worker_at')
        batch_op.drop_index(batch_op.f('ix_worker_change_at'))

    op.drop_table('worker_change')
    with op.batch_alter_table('worker', schema=None) as batch_op:
        batch_op.drop_index('ix_worker_village_live')
        batch_op.drop_index('ix_worker_village_birth')
        batch_op.drop_index(batch_op.f('ix_worker_phone_hash'))
        batch_op.drop_index(batch_op.f('ix_worker_name'))
        batch_op.drop_index('ix_worker_broker_live')

    op.drop_table('worker')
    with op.batch_alter_table('broker_village', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_broker_village_village_code'))
        batch_op.drop_index(batch_op.f('ix_broker_village_broker_id'))

    op.drop_table('broker_village')
