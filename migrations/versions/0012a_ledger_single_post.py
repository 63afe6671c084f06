"""ledger: one round trip for a single post (SQLite view + INSTEAD OF trigger,
PostgreSQL function, see billing/ledger/ddl.py); a covering index for the
reconciliation's pass over the postings; on SQLite a partial index on open entries

Revision ID: 0012a
Revises: 0011
Create Date: 2026-11-27 23:40:00
"""

from collections.abc import Sequence

from alembic import op

from billing.ledger import ddl

revision: str = "0012a"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in ddl.post_statements(dialect):
        op.execute(statement)
    # Reconciliation reads (account, time) ranges and needs side, amount and entry:
    # all in the index, so the postings table itself is never visited.
    op.create_index(
        "ix_ledger_posting_account_at_cover",
        "ledger_posting",
        ["account_id", "effective_at", "side", "amount_fen", "entry_id"],
    )
    op.drop_index("ix_ledger_posting_account_at", table_name="ledger_posting")
    if dialect == "sqlite":
        # SQLite may hold an entry left open (no deferred triggers); reports ask
        # whether any exists, which this index answers without a scan.
        op.execute("CREATE INDEX ix_ledger_entry_open ON ledger_entry (id) WHERE status = 'open'")
        # The closing trigger, kept off the new index (ddl.APPLY_SQLITE_0012A).
        for statement in ddl.APPLY_SQLITE_0012A:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP INDEX IF EXISTS ix_ledger_entry_open")
        for statement in ddl.APPLY_SQLITE_0010:
            op.execute(statement)
    op.create_index(
        "ix_ledger_posting_account_at", "ledger_posting", ["account_id", "effective_at"]
    )
    op.drop_index("ix_ledger_posting_account_at_cover", table_name="ledger_posting")
    for statement in ddl.post_statements(dialect, drop=True):
        op.execute(statement)
