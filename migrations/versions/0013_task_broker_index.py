"""tasks: index a broker's own tasks by (broker_id, id), so "my tasks" newest first is
an index range and not a scan of every task (found by the HTTP load test)

Revision ID: 0013
Revises: 0012c
Create Date: 2026-11-28 03:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_service_task_broker_id", "service_task", ["broker_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_service_task_broker_id", table_name="service_task")
