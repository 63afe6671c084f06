"""``laowu keys rotate``: old key → new key, everything still readable, hashes still
find duplicates, a second run changes nothing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.crypto import DataCipher, decode_key, new_data_key
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.errors import Conflict
from marketplace.workers import service
from marketplace.workers.models import Worker, WorkerChange, WorkerCreate, WorkerUpdate
from tests.conftest import TEST_DATA_KEY, YUZHONG
from tests.marketplace.test_workers_rules import make_id
from tests.marketplace.test_workers_service import _villages
from web import cli
from web.settings import get_settings

NUMBER = make_id(date(1982, 8, 8), 618)
PHONE = "13612345678"


@pytest.fixture
def new_key_env(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[str]:
    """The CLI's environment after an operator rotated: new key, old key kept as old."""
    key = new_data_key()
    for name in list(os.environ):
        if name.startswith("LAOWU_") and name != "LAOWU_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("LAOWU_ENV", "test")
    monkeypatch.setenv("LAOWU_DATABASE_URL", db_url)
    monkeypatch.setenv("LAOWU_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("LAOWU_DATA_KEY", key)
    monkeypatch.setenv("LAOWU_OLD_DATA_KEYS", TEST_DATA_KEY)
    get_settings.cache_clear()
    yield key
    get_settings.cache_clear()


async def _seed(
    sessions: async_sessionmaker[AsyncSession], make_account: Any, cipher: DataCipher
) -> int:
    async with sessions() as session:
        village = (await _villages(session, YUZHONG, 1))[0]
    broker = await make_account("broker", village)
    await make_account("district_admin", YUZHONG)  # a TOTP secret to rotate
    actor = accounts.actor_for(broker.user)
    async with unit_of_work(sessions) as session:
        worker = await service.register(
            session=session,
            actor=actor,
            cipher=cipher,
            data=WorkerCreate(
                name="周师傅",
                id_number=NUMBER,
                phone=PHONE,
                hukou_village_code=village,
                certificates=[{"type": "电工证", "number": "E-1234567", "expires_on": None}],
            ),
        )
        assert worker.id is not None
        await service.update_worker(
            session=session,
            actor=actor,
            cipher=cipher,
            worker_id=worker.id,
            data=WorkerUpdate(phone="13612340000"),
        )
        return worker.id


def test_rotate_reencrypts_everything_and_is_idempotent(
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    cipher: DataCipher,
    db_url: str,
    new_key_env: str,
) -> None:
    worker_id = asyncio.run(_seed(sessions, make_account, cipher))
    new = DataCipher(decode_key(new_key_env), old_keys=(decode_key(TEST_DATA_KEY),))

    async def old_hash_still_found() -> None:
        # Before rotation, a reader with the new key finds the number by an old hash.
        async with sessions() as session:
            found = await service.find_by_id_number(session, new, NUMBER)
            assert found is not None
            assert found.id == worker_id

    asyncio.run(old_hash_still_found())

    result = CliRunner().invoke(
        cli.main, ["keys", "rotate", "--batch-size", "2"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "劳动者 1 条" in result.stdout
    # The creation's one row of initial values, and the phone update.
    assert "变更历史 2 条" in result.stdout
    assert "账号动态验证码密钥 1 个" in result.stdout

    asyncio.run(_check_rotated(db_url, new_key_env, worker_id))

    again = CliRunner().invoke(cli.main, ["keys", "rotate"], catch_exceptions=False)
    assert again.exit_code == 0
    assert "劳动者 0 条，变更历史 0 条，账号动态验证码密钥 0 个" in again.stdout


async def _check_rotated(db_url: str, key: str, worker_id: int) -> None:
    new = DataCipher(decode_key(key))
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            worker = await session.get(Worker, worker_id)
            assert worker is not None
            tokens = [
                worker.id_number_enc,
                worker.phone_enc,
                *(c["number_enc"] for c in worker.certificates),
            ]
            changes = (
                (await session.execute(select(WorkerChange).where(col(WorkerChange.sensitive))))
                .scalars()
                .all()
            )
            tokens += [v for r in changes for v in (r.old_value, r.new_value) if v]
            users = (
                (await session.execute(select(User).where(col(User.totp_secret_enc).is_not(None))))
                .scalars()
                .all()
            )
            tokens += [u.totp_secret_enc for u in users]
            assert all(t and new.is_current(t) for t in tokens)
            # Only the new key is needed now, and the hashes are the new key's.
            alone = new
            shown = await service.get_worker(
                session=session,
                actor=SYSTEM,
                cipher=alone,
                worker_id=worker_id,
                reveal=True,
            )
            assert shown.id_number == NUMBER
            assert shown.phone == "13612340000"
            assert shown.certificates[0].number == "E-1234567"
            assert worker.id_number_hash == alone.lookup_hash(NUMBER)
            history = await service.history(
                session=session, actor=SYSTEM, cipher=alone, worker_id=worker_id
            )
            assert any(r.field == "phone" and r.new_value == "136****0000" for r in history)
        # The same number is still refused under the new key.
        async with unit_of_work(session_factory(engine)) as session:
            with pytest.raises(Conflict):
                await service.register(
                    session=session,
                    actor=SYSTEM,
                    cipher=alone,
                    broker_id=worker.broker_id,
                    data=WorkerCreate(
                        name="周师傅",
                        id_number=NUMBER,
                        hukou_village_code=worker.hukou_village_code,
                    ),
                )
    finally:
        await engine.dispose()


def test_rotate_without_the_old_key_fails_clearly(
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    cipher: DataCipher,
    monkeypatch: pytest.MonkeyPatch,
    new_key_env: str,
) -> None:
    asyncio.run(_seed(sessions, make_account, cipher))
    monkeypatch.delenv("LAOWU_OLD_DATA_KEYS")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli.main, ["keys", "rotate"])
    assert result.exit_code == 1
    assert "LAOWU_OLD_DATA_KEYS" in result.stderr

    async def unchanged() -> None:  # nothing was half-rotated
        async with sessions() as session:
            worker = (await session.execute(select(Worker))).scalar_one()
            assert cipher.is_current(worker.id_number_enc or "")
            assert cipher.decrypt(worker.id_number_enc or "", context="worker.id_number") == NUMBER

    asyncio.run(unchanged())
