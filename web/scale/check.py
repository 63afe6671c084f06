"""The ledger's invariants over a whole database, in a few grouped queries (fast at
Chongqing scale): what ``laowu demo --scale`` checks after generating, and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class LedgerCheck:
    entries: int
    postings: int
    debits_fen: int
    credits_fen: int
    unbalanced_entries: int
    open_entries: int
    balance_mismatches: int  # accounts whose balance is not the sum of their postings
    overdrawn: int  # no-overdraft accounts below zero
    reserved_mismatches: int  # pools whose reserved balance != their unpaid subsidies
    paid_mismatches: int  # pools whose paid balance != their paid (and recovered) subsidies

    @property
    def ok(self) -> bool:
        return (
            self.debits_fen == self.credits_fen
            and self.unbalanced_entries == 0
            and self.open_entries == 0
            and self.balance_mismatches == 0
            and self.overdrawn == 0
            and self.reserved_mismatches == 0
            and self.paid_mismatches == 0
        )

    def problems(self) -> list[str]:
        found = []
        if self.debits_fen != self.credits_fen:
            found.append(f"借方合计 {self.debits_fen} ≠ 贷方合计 {self.credits_fen}")
        for name, value in (
            ("不平衡的分录", self.unbalanced_entries),
            ("未过账的分录", self.open_entries),
            ("余额与过账不符的账户", self.balance_mismatches),
            ("透支的账户", self.overdrawn),
            ("预留余额与未付补贴不符的资金池", self.reserved_mismatches),
            ("已付余额与已付补贴不符的资金池", self.paid_mismatches),
        ):
            if value:
                found.append(f"{name}：{value} 个")
        return found


async def _one(conn: AsyncConnection, sql: str) -> int:
    return int((await conn.execute(text(sql))).scalar() or 0)


async def check_ledger(conn: AsyncConnection) -> LedgerCheck:
    signed = "CASE p.side WHEN 'debit' THEN p.amount_fen ELSE -p.amount_fen END"
    normal = "CASE WHEN p.side = a.normal_side THEN p.amount_fen ELSE -p.amount_fen END"
    return LedgerCheck(
        entries=await _one(conn, "SELECT COUNT(*) FROM ledger_entry"),
        postings=await _one(conn, "SELECT COUNT(*) FROM ledger_posting"),
        debits_fen=await _one(
            conn, "SELECT SUM(amount_fen) FROM ledger_posting WHERE side = 'debit'"
        ),
        credits_fen=await _one(
            conn, "SELECT SUM(amount_fen) FROM ledger_posting WHERE side = 'credit'"
        ),
        unbalanced_entries=await _one(
            conn,
            f"SELECT COUNT(*) FROM (SELECT p.entry_id FROM ledger_posting p "
            f"GROUP BY p.entry_id HAVING SUM({signed}) <> 0) u",
        ),
        open_entries=await _one(conn, "SELECT COUNT(*) FROM ledger_entry WHERE status <> 'posted'"),
        balance_mismatches=await _one(
            conn,
            f"SELECT COUNT(*) FROM ledger_account a LEFT JOIN "
            f"(SELECT p.account_id, SUM({normal}) AS total FROM ledger_posting p "
            f"JOIN ledger_account a ON a.id = p.account_id GROUP BY p.account_id) s "
            f"ON s.account_id = a.id WHERE a.balance_fen <> COALESCE(s.total, 0)",
        ),
        overdrawn=await _one(
            conn, "SELECT COUNT(*) FROM ledger_account WHERE no_overdraft AND balance_fen < 0"
        ),
        reserved_mismatches=await _one(
            conn,
            "SELECT COUNT(*) FROM fund_pool f JOIN ledger_account r "
            "ON r.id = f.reserved_account_id LEFT JOIN "
            "(SELECT pool_id, SUM(amount_fen) AS total FROM subsidy "
            "WHERE status IN ('pending', 'payable') AND reserve_entry_id IS NOT NULL "
            "GROUP BY pool_id) s ON s.pool_id = f.id "
            "WHERE r.balance_fen <> COALESCE(s.total, 0)",
        ),
        paid_mismatches=await _one(
            conn,
            "SELECT COUNT(*) FROM fund_pool f JOIN ledger_account r "
            "ON r.id = f.paid_account_id LEFT JOIN "
            "(SELECT pool_id, SUM(amount_fen) AS total FROM subsidy "
            "WHERE status IN ('paid', 'reversed') GROUP BY pool_id) s ON s.pool_id = f.id "
            "WHERE r.balance_fen <> COALESCE(s.total, 0)",
        ),
    )
