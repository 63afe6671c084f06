"""The audit log: hash-chained, append-only, and tampering shows."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace import audit
from marketplace.access import SYSTEM, Actor
from marketplace.audit.models import AuditEntry, AuditHead
from marketplace.audit.service import GENESIS_HASH, _hashed_fields, entry_hash
from marketplace.db import unit_of_work
from tests.conftest import PASSWORD, YUZHONG

Sessions = async_sessionmaker[AsyncSession]
CLERK = Actor(
    user_id=42, username="clerk", role="district_admin", region_code=YUZHONG, ip="10.0.0.9"
)


async def _write(sessions: Sessions, n: int) -> list[AuditEntry]:
    entries = []
    for i in range(n):
        async with unit_of_work(sessions) as session:
            entries.append(
                await audit.record(
                    session=session,
                    actor=CLERK,
                    action="thing.update",
                    object_type="thing",
                    object_id=i,
                    region_code=YUZHONG,
                    detail={"changed": ["name"], "n": i},
                )
            )
    return entries


async def _verify(sessions: Sessions) -> audit.service.VerifyResult:
    async with sessions() as session:
        return await audit.verify(session=session)


async def _tamper(sessions: Sessions, sql: str) -> None:
    """Change the log behind the application's back: lift the append-only guard first."""
    async with unit_of_work(sessions) as session:
        if session.bind is not None and session.bind.dialect.name == "sqlite":
            await session.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            await session.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        else:
            await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await session.execute(text(sql))


async def test_entries_chain_and_verify(sessions: Sessions) -> None:
    assert (await _verify(sessions)).checked == 0  # empty log is fine
    entries = await _write(sessions, 4)
    assert [e.id for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in entries}) == 4
    result = await _verify(sessions)
    assert (result.ok, result.checked, result.broken_at) == (True, 4, None)
    async with sessions() as session:
        head = await session.get(AuditHead, 1)
    assert head is not None
    assert (head.last_id, head.last_hash) == (4, entries[-1].hash)


async def test_verify_walks_past_a_batch(sessions: Sessions) -> None:
    await _write(sessions, 5)
    async with sessions() as session:
        result = await audit.verify(session=session, batch=2)
    assert (result.ok, result.checked) == (True, 5)


async def test_entry_rolled_back_with_its_transaction_leaves_no_gap(sessions: Sessions) -> None:
    await _write(sessions, 1)

    async def failed_write() -> None:
        async with unit_of_work(sessions) as session:
            await audit.record(session=session, actor=SYSTEM, action="x", object_type="y")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await failed_write()
    await _write(sessions, 1)
    result = await _verify(sessions)
    assert (result.ok, result.checked) == (True, 2)


@pytest.mark.parametrize(
    "sql",
    [
        'UPDATE audit_log SET detail = \'{"changed": ["password"], "n": 1}\' WHERE id = 2',
        "UPDATE audit_log SET outcome = 'denied' WHERE id = 2",
        "UPDATE audit_log SET actor_user_id = 1 WHERE id = 2",
    ],
    ids=["detail", "outcome", "actor"],
)
async def test_changing_a_row_is_detected_at_that_row(sessions: Sessions, sql: str) -> None:
    await _write(sessions, 3)
    await _tamper(sessions, sql)
    result = await _verify(sessions)
    assert (result.ok, result.broken_at, result.checked) == (False, 2, 1)
    assert result.reason is not None
    assert "哈希" in result.reason


async def test_rehashing_a_changed_row_breaks_the_next_link(sessions: Sessions) -> None:
    """Someone who rewrites row 2 and recomputes its hash is caught at row 3."""
    entries = await _write(sessions, 3)
    forged = entries[1].model_copy(update={"detail": {"changed": [], "n": 1}})
    forged_hash = entry_hash(forged.prev_hash, _hashed_fields(forged))
    await _tamper(
        sessions,
        'UPDATE audit_log SET detail = \'{"changed": [], "n": 1}\', '
        f"hash = '{forged_hash}' WHERE id = 2",
    )
    result = await _verify(sessions)
    assert (result.ok, result.broken_at, result.checked) == (False, 3, 2)
    assert result.reason is not None
    assert "链接" in result.reason


async def test_deleting_a_middle_row_is_detected(sessions: Sessions) -> None:
    await _write(sessions, 4)
    await _tamper(sessions, "DELETE FROM audit_log WHERE id = 2")
    result = await _verify(sessions)
    assert (result.ok, result.broken_at, result.checked) == (False, 2, 1)
    assert result.reason is not None
    assert "缺失" in result.reason


async def test_deleting_the_last_row_is_detected(sessions: Sessions) -> None:
    await _write(sessions, 3)
    await _tamper(sessions, "DELETE FROM audit_log WHERE id = 3")
    result = await _verify(sessions)
    assert (result.ok, result.broken_at, result.checked) == (False, 3, 2)


async def test_deleting_everything_is_detected(sessions: Sessions) -> None:
    await _write(sessions, 2)
    await _tamper(sessions, "DELETE FROM audit_log")
    result = await _verify(sessions)
    assert (result.ok, result.broken_at) == (False, 1)


async def test_deleting_the_tail_and_the_head_is_detected(sessions: Sessions) -> None:
    await _write(sessions, 3)
    await _tamper(sessions, "DELETE FROM audit_log WHERE id = 3")
    await _tamper(sessions, "DELETE FROM audit_head")
    result = await _verify(sessions)
    assert (result.ok, result.broken_at, result.checked) == (False, 3, 2)


@pytest.mark.parametrize(
    "sql",
    ["UPDATE audit_log SET outcome = 'denied' WHERE id = 1", "DELETE FROM audit_log WHERE id = 1"],
    ids=["update", "delete"],
)
async def test_database_refuses_changes_to_the_log(sessions: Sessions, sql: str) -> None:
    await _write(sessions, 1)

    async def attempt() -> None:
        async with unit_of_work(sessions) as session:
            await session.execute(text(sql))

    with pytest.raises(DBAPIError, match="append-only"):
        await attempt()
    assert (await _verify(sessions)).ok


async def test_postgres_refuses_truncate(sessions: Sessions, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no TRUNCATE")
    await _write(sessions, 1)

    async def attempt() -> None:
        async with unit_of_work(sessions) as session:
            await session.execute(text("TRUNCATE audit_log"))

    with pytest.raises(DBAPIError, match="append-only"):
        await attempt()
    assert (await _verify(sessions)).checked == 1


async def test_user_create_entry_holds_no_personal_data(
    sessions: Sessions,
    make_account,
) -> None:
    account = await make_account("broker", "500103001003", username="zhang_san_1990")
    async with sessions() as session:
        entry = (
            await session.execute(select(AuditEntry).where(col(AuditEntry.action) == "user.create"))
        ).scalar_one()
    assert entry.detail == {"role": "broker"}
    assert (entry.object_type, entry.object_id) == ("user", str(account.id))
    assert (entry.actor_role, entry.actor_user_id, entry.region_code) == (
        "system",
        None,
        "500103001003",
    )
    dumped = entry.model_dump_json()
    assert "zhang_san_1990" not in dumped
    assert PASSWORD not in dumped
    assert "argon2" not in dumped
