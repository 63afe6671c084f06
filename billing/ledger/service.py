"""Posting to the ledger: balanced entries, idempotent by key, reversals, balances.

``post`` inserts an open entry and its postings and closes it in the caller's
transaction; the database checks the balance and the no-overdraft rule when the entry
closes (``ddl.py``). Callers that must decide from a balance (reserve a subsidy if
the pool has the money) first ``lock_accounts``: ``SELECT … FOR UPDATE`` on
PostgreSQL, while SQLite writers are already serialised by ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import col

from billing.ledger.models import EntryStatus, LedgerAccount, LedgerEntry, LedgerPosting, Side
from marketplace.clock import utcnow
from marketplace.db import UTCDateTime
from marketplace.errors import Conflict, Invalid, NotFound


class Overdraft(Conflict):
    """A no-overdraft account would go below zero."""


@dataclass(frozen=True)
class Line:
    account_id: int
    side: Side | str
    amount_fen: int


def content_hash(ledger: str, kind: str, lines: Sequence[Line], reversal_of: int | None) -> str:
    """What an idempotency key promises: same key, same money movement."""
    body = {
        "ledger": ledger,
        "kind": kind,
        "reversal_of": reversal_of,
        "lines": sorted((ln.account_id, str(ln.side), ln.amount_fen) for ln in lines),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _check_lines(lines: Sequence[Line]) -> None:
    if len(lines) < 2:
        raise Invalid("lines", "一笔分录至少要有两行")
    debit = credit = 0
    for line in lines:
        if not isinstance(line.amount_fen, int) or isinstance(line.amount_fen, bool):
            raise Invalid("amount_fen", "金额必须是整数（分）")
        if line.amount_fen <= 0:
            raise Invalid("amount_fen", "金额必须大于 0")
        if str(line.side) == Side.debit:
            debit += line.amount_fen
        elif str(line.side) == Side.credit:
            credit += line.amount_fen
        else:
            raise Invalid("side", "借贷方向只能是 debit 或 credit")
    if debit != credit:
        raise Invalid("lines", f"借方合计 {debit} 分与贷方合计 {credit} 分不相等")


def _is_pg(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


async def lock_accounts(session: AsyncSession, account_ids: Iterable[int]) -> dict[int, int]:
    """Lock the accounts (in id order, so two writers never deadlock) and return their
    balances. On SQLite the transaction is already the only writer."""
    ids = sorted(set(account_ids))
    stmt = select(col(LedgerAccount.id), col(LedgerAccount.balance_fen)).where(
        col(LedgerAccount.id).in_(ids)
    )
    if _is_pg(session):
        stmt = stmt.order_by(col(LedgerAccount.id)).with_for_update()
    rows = (await session.execute(stmt)).all()
    return {int(r[0] or 0): int(r[1]) for r in rows}


async def find_entry(session: AsyncSession, key: str) -> LedgerEntry | None:
    return (
        await session.execute(select(LedgerEntry).where(col(LedgerEntry.idempotency_key) == key))
    ).scalar_one_or_none()


async def post(
    session: AsyncSession,
    *,
    key: str,
    ledger: str,
    kind: str,
    lines: Sequence[Line],
    memo: str = "",
    effective_at: datetime | None = None,
    reversal_of: int | None = None,
    created_by: int | None = None,
) -> LedgerEntry:
    """Post a balanced entry once per ``key``; a replay returns the first entry, the
    same key with different content is a Conflict. Raises Overdraft when a
    no-overdraft account would go below zero (nothing of the entry remains, and the
    caller's transaction stays usable).

    One round trip to the database (migration 0012a, ``ddl.POST_*``): the database
    inserts the entry open, its postings, and closes it, so its triggers check the
    ledger of every account, the balance and the overdraft rule as before. The
    returned entry is a plain object, not attached to the session."""
    _check_lines(lines)
    request = _Request(
        key=key,
        content_hash=content_hash(ledger, kind, lines, reversal_of),
        ledger=ledger,
        kind=kind,
        memo=memo[:500],
        reversal_of=reversal_of,
        effective_at=effective_at or utcnow(),
        created_at=utcnow(),
        created_by=created_by,
        lines=lines,
    )
    if session.new or session.dirty or session.deleted:
        await session.flush()  # what the ORM's autoflush would have done before a query
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        entry_id = await _post_postgresql(session, conn, request)
    else:
        entry_id = await _post_sqlite(session, conn, request)
    if isinstance(entry_id, LedgerEntry):
        return entry_id  # a replay
    entry = LedgerEntry(
        id=entry_id,
        idempotency_key=key,
        content_hash=request.content_hash,
        ledger=ledger,
        kind=kind,
        memo=request.memo,
        reversal_of_id=reversal_of,
        status=EntryStatus.posted,
        effective_at=request.effective_at,
        created_at=request.created_at,
        created_by=created_by,
    )
    make_transient_to_detached(entry)
    return entry


@dataclass(frozen=True)
class _Request:
    key: str
    content_hash: str
    ledger: str
    kind: str
    memo: str
    reversal_of: int | None
    effective_at: datetime
    created_at: datetime
    created_by: int | None
    lines: Sequence[Line]


_SQLITE_POST = (
    "INSERT INTO ledger_post_request (idempotency_key, content_hash, ledger, kind, memo, "
    "reversal_of_id, effective_at, created_at, created_by, lines) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_ID = "SELECT id FROM ledger_entry WHERE idempotency_key = ?"
_PG_POST = (
    "SELECT outcome, entry_id, entry_hash, sqlstate, message, constraint_name "
    "FROM ledger_post($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)


async def _post_sqlite(
    session: AsyncSession, conn: AsyncConnection, r: _Request
) -> int | LedgerEntry:
    """One INSERT into the ``ledger_post_request`` view: refused, SQLite backs out the
    whole statement (trigger effects included) and the transaction goes on. Spoken
    to the driver directly (same connection, same transaction): SQLAlchemy's
    aiosqlite adapter costs three thread hops a statement, the driver one."""
    driver = await _driver_in_transaction(conn)
    when = _sqlite_time(conn, r.effective_at)
    lines = json.dumps([[ln.account_id, str(ln.side), ln.amount_fen] for ln in r.lines])
    params = (
        r.key, r.content_hash, r.ledger, r.kind, r.memo, r.reversal_of, when,
        _sqlite_time(conn, r.created_at), r.created_by, lines,
    )  # fmt: skip
    try:
        await driver.execute(_SQLITE_POST, params)
    except sqlite3.IntegrityError as exc:
        return await _refused(session, r, str(exc), exc)
    rows = await driver.execute_fetchall(_SQLITE_ID, (r.key,))
    return int(next(iter(rows))[0])


async def _post_postgresql(
    session: AsyncSession, conn: AsyncConnection, r: _Request
) -> int | LedgerEntry:
    """``ledger_post(…)``: refused, the function has rolled back its own block and
    says why; the caller's transaction goes on. Spoken to asyncpg directly (same
    connection, same transaction; asyncpg caches the prepared statement)."""
    params = (
        r.key, r.content_hash, r.ledger, r.kind, r.memo, r.reversal_of, r.effective_at,
        r.created_at, r.created_by, [ln.account_id for ln in r.lines],
        [str(ln.side) for ln in r.lines], [ln.amount_fen for ln in r.lines],
    )  # fmt: skip
    driver = await _driver_in_transaction(conn)
    outcome, entry_id, entry_hash, state, message, constraint = await driver.fetchrow(
        _PG_POST, *params
    )
    if outcome == "posted":
        return int(entry_id)
    if outcome == "replay":
        if entry_hash != r.content_hash:
            raise Conflict(f"幂等键 {r.key} 已用于另一笔内容不同的分录", field="idempotency_key")
        existing = await find_entry(session, r.key)
        assert existing is not None
        return existing
    return await _refused(session, r, f"{state} {constraint or ''} {message}", None)


async def _driver_in_transaction(conn: AsyncConnection) -> Any:
    """The driver's connection, inside the session's transaction. SQLAlchemy's asyncpg
    adapter sends BEGIN only with its first statement: until then, a statement sent
    to asyncpg directly would commit on its own. (On SQLite our engine's begin hook
    has already sent BEGIN IMMEDIATE or BEGIN.)"""
    driver: Any = (await conn.get_raw_connection()).driver_connection
    if conn.dialect.name == "postgresql":
        if not driver.is_in_transaction():
            await conn.exec_driver_sql("SELECT 1")
        in_transaction = driver.is_in_transaction()
    else:
        in_transaction = driver.in_transaction
    if not in_transaction:
        raise RuntimeError("ledger.post needs the session's transaction to have begun")
    return driver


async def _refused(
    session: AsyncSession, r: _Request, text: str, exc: Exception | None
) -> LedgerEntry:
    """Name what the database refused; the entry left nothing behind."""
    if "mixes ledgers" in text:
        raise Invalid("lines", "一笔分录不能同时涉及补贴账和市场账，且账户必须存在") from exc
    if "overdraft" in text:
        raise Overdraft("余额不足：资金池不能透支", field="amount_fen") from exc
    if "idempotency_key" in text:  # SQLite: the key is taken (PostgreSQL says replay)
        existing = await find_entry(session, r.key)
        if existing is not None:
            return _replayed(existing, r.content_hash, r.key)
    if "reversal_of_id" in text:
        raise Conflict("这笔分录已经冲正过", field="reversal_of") from exc
    raise LedgerRefused(f"ledger: the database refused entry {r.key}: {text}") from exc


class LedgerRefused(RuntimeError):
    """The database refused an entry for a reason the code does not foresee."""


_TIME_PROCESSORS: dict[str, Any] = {}


def _sqlite_time(conn: AsyncConnection, value: datetime) -> Any:
    """The datetime as SQLAlchemy stores it on SQLite (talking to the driver
    directly bypasses the column type)."""
    dialect = conn.dialect
    process = _TIME_PROCESSORS.get(dialect.name)
    if process is None:
        process = _TIME_PROCESSORS[dialect.name] = UTCDateTime().bind_processor(dialect)
    assert process is not None
    return process(value)


def _replayed(existing: LedgerEntry, digest: str, key: str) -> LedgerEntry:
    if existing.content_hash != digest:
        raise Conflict(f"幂等键 {key} 已用于另一笔内容不同的分录", field="idempotency_key")
    return existing


async def postings_of(session: AsyncSession, entry_id: int) -> list[LedgerPosting]:
    rows = await session.execute(
        select(LedgerPosting)
        .where(col(LedgerPosting.entry_id) == entry_id)
        .order_by(col(LedgerPosting.id))
    )
    return list(rows.scalars())


async def reverse(
    session: AsyncSession,
    *,
    entry_id: int,
    key: str,
    memo: str = "",
    kind: str | None = None,
    created_by: int | None = None,
    effective_at: datetime | None = None,
) -> LedgerEntry:
    """The correcting entry: every posting of ``entry_id`` with its side swapped."""
    original = await session.get(LedgerEntry, entry_id)
    if original is None:
        raise NotFound("分录不存在", field="entry_id")
    lines = [
        Line(
            account_id=p.account_id,
            side=Side.credit if p.side == Side.debit else Side.debit,
            amount_fen=p.amount_fen,
        )
        for p in await postings_of(session, entry_id)
    ]
    return await post(
        session,
        key=key,
        ledger=original.ledger,
        kind=kind or f"reverse_{original.kind}"[:32],
        lines=lines,
        memo=memo or f"冲正分录 {entry_id}",
        reversal_of=entry_id,
        created_by=created_by,
        effective_at=effective_at,
    )


async def get_account(session: AsyncSession, code: str) -> LedgerAccount | None:
    return (
        await session.execute(select(LedgerAccount).where(col(LedgerAccount.code) == code))
    ).scalar_one_or_none()


async def ensure_account(
    session: AsyncSession,
    *,
    code: str,
    ledger: str,
    kind: str,
    name: str,
    normal_side: Side,
    no_overdraft: bool = False,
    district_code: str | None = None,
    source: str | None = None,
    broker_id: int | None = None,
) -> LedgerAccount:
    found = await get_account(session, code)
    if found is not None:
        return found
    account = LedgerAccount(
        code=code,
        ledger=ledger,
        kind=kind,
        name=name,
        normal_side=normal_side,
        no_overdraft=no_overdraft,
        district_code=district_code,
        source=source,
        broker_id=broker_id,
    )
    savepoint = await session.begin_nested()
    session.add(account)
    try:
        await session.flush()
    except IntegrityError:
        await savepoint.rollback()  # created concurrently: take theirs
        found = await get_account(session, code)
        assert found is not None
        return found
    await savepoint.commit()
    return account


async def current_balance(session: AsyncSession, account_id: int) -> int:
    value = (
        await session.execute(
            select(col(LedgerAccount.balance_fen)).where(col(LedgerAccount.id) == account_id)
        )
    ).scalar_one()
    return int(value)


def _signed(normal_side: str) -> Any:
    return case(
        (col(LedgerPosting.side) == normal_side, col(LedgerPosting.amount_fen)),
        else_=-col(LedgerPosting.amount_fen),
    )


async def balance_as_of(session: AsyncSession, account_id: int, as_of: datetime | None) -> int:
    """The balance from the postings of posted entries effective up to ``as_of``
    (inclusive); ``None`` means all of them."""
    account = await session.get(LedgerAccount, account_id)
    if account is None:
        raise NotFound("账户不存在", field="account_id")
    stmt = (
        select(func.coalesce(func.sum(_signed(account.normal_side)), 0))
        .select_from(LedgerPosting)
        .join(LedgerEntry, col(LedgerEntry.id) == col(LedgerPosting.entry_id))
        .where(
            col(LedgerPosting.account_id) == account_id,
            col(LedgerEntry.status) == EntryStatus.posted,
        )
    )
    if as_of is not None:
        stmt = stmt.where(col(LedgerPosting.effective_at) <= as_of)
    return int((await session.execute(stmt)).scalar_one())


async def list_postings(
    session: AsyncSession, account_id: int, *, limit: int, offset: int
) -> tuple[list[tuple[LedgerPosting, LedgerEntry]], int]:
    where = [
        col(LedgerPosting.account_id) == account_id,
        col(LedgerEntry.status) == EntryStatus.posted,
    ]
    base = select(LedgerPosting, LedgerEntry).join(
        LedgerEntry, col(LedgerEntry.id) == col(LedgerPosting.entry_id)
    )
    total = (
        await session.execute(
            select(func.count())
            .select_from(LedgerPosting)
            .join(LedgerEntry, col(LedgerEntry.id) == col(LedgerPosting.entry_id))
            .where(*where)
        )
    ).scalar_one()
    rows = await session.execute(
        base.where(*where)
        .order_by(col(LedgerPosting.effective_at).desc(), col(LedgerPosting.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return [(p, e) for p, e in rows.all()], int(total)


@dataclass(frozen=True)
class NewEntry:
    key: str
    ledger: str
    kind: str
    lines: Sequence[Line]
    memo: str = ""
    effective_at: datetime | None = None


async def post_many(session: AsyncSession, entries: Sequence[NewEntry]) -> list[int]:
    """Post many entries in a handful of statements (bulk jobs: payout execution,
    imports, benchmarks). Same rules as ``post`` — the database checks each entry as it
    closes — and the same replay semantics; if any entry would overdraw, the batch is
    rolled back and posted one by one so the error names the entry."""
    for e in entries:
        _check_lines(e.lines)
    digests = {e.key: content_hash(e.ledger, e.kind, e.lines, None) for e in entries}
    if len(digests) != len(entries):
        raise Invalid("idempotency_key", "同一批中有重复的幂等键")
    existing = {
        row[0]: (int(row[1] or 0), row[2])
        for row in (
            await session.execute(
                select(
                    col(LedgerEntry.idempotency_key),
                    col(LedgerEntry.id),
                    col(LedgerEntry.content_hash),
                ).where(col(LedgerEntry.idempotency_key).in_(list(digests)))
            )
        ).all()
    }
    for key, (_, digest) in existing.items():
        if digest != digests[key]:
            raise Conflict(f"幂等键 {key} 已用于另一笔内容不同的分录", field="idempotency_key")
    fresh = [e for e in entries if e.key not in existing]
    ids_by_key = {k: v[0] for k, v in existing.items()}
    if fresh:
        account_ids = {ln.account_id for e in fresh for ln in e.lines}
        ledgers = dict(
            (
                await session.execute(
                    select(col(LedgerAccount.id), col(LedgerAccount.ledger)).where(
                        col(LedgerAccount.id).in_(account_ids)
                    )
                )
            ).all()
        )
        for e in fresh:
            if {ledgers.get(ln.account_id) for ln in e.lines} != {e.ledger}:
                raise Invalid("lines", "一笔分录不能同时涉及补贴账和市场账，且账户必须存在")
        now = utcnow()
        savepoint = await session.begin_nested()
        try:
            rows = await session.execute(
                insert(LedgerEntry).returning(
                    col(LedgerEntry.idempotency_key),
                    col(LedgerEntry.id),
                    sort_by_parameter_order=True,
                ),
                [
                    {
                        "idempotency_key": e.key,
                        "content_hash": digests[e.key],
                        "ledger": e.ledger,
                        "kind": e.kind,
                        "memo": e.memo[:500],
                        "reversal_of_id": None,
                        "status": EntryStatus.open,
                        "effective_at": e.effective_at or now,
                        "created_at": now,
                        "created_by": None,
                    }
                    for e in fresh
                ],
            )
            new_ids = {k: int(i or 0) for k, i in rows.all()}
            await session.execute(
                insert(LedgerPosting),
                [
                    {
                        "entry_id": new_ids[e.key],
                        "account_id": ln.account_id,
                        "side": str(ln.side),
                        "amount_fen": ln.amount_fen,
                        "effective_at": e.effective_at or now,
                    }
                    for e in fresh
                    for ln in e.lines
                ],
            )
            await session.execute(
                update(LedgerEntry)
                .where(col(LedgerEntry.id).in_(list(new_ids.values())))
                .values(status=EntryStatus.posted)
            )
        except IntegrityError as exc:
            await savepoint.rollback()
            if "overdraft" not in str(exc.orig):
                raise
            for e in fresh:  # find and name the entry that overdraws
                one = await post(
                    session, key=e.key, ledger=e.ledger, kind=e.kind, lines=e.lines,
                    memo=e.memo, effective_at=e.effective_at,
                )  # fmt: skip
                ids_by_key[e.key] = one.id or 0
            return [ids_by_key[e.key] for e in entries]
        await savepoint.commit()
        ids_by_key.update(new_ids)
    return [ids_by_key[e.key] for e in entries]
