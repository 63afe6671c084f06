"""Shared fixtures: a migrated database with the region tree, per test, on SQLite
and (when ``LAOWU_TEST_DATABASE_URL`` is set and answers) on PostgreSQL.

SQLite tests get a copy of a template file; PostgreSQL tests get a fresh database
cloned from a template database, so every test starts from the same state.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pyotp
import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User, UserCreate
from marketplace.crypto import DataCipher, decode_key, new_data_key
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.regions import service as regions
from web.app import create_app
from web.migrate import upgrade
from web.settings import DatabaseSettings, SecuritySettings, Settings

PG_ENV = "LAOWU_TEST_DATABASE_URL"
TEST_DATA_KEY = new_data_key()
PASSWORD = "correct-horse-battery-9"

# Codes used across tests: two districts, and a township and village in each.
YUZHONG = "500103"  # 渝中区 (urban)
WUXI = "500238"  # 巫溪县 (rural)
WANZHOU = "500101"  # 万州区


async def _build_template(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with unit_of_work(session_factory(engine)) as session:
            await regions.load(session=session, rows=regions.read_csv(regions.bundled_csv()))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_build_template(f"sqlite+aiosqlite:///{path}"))
    return path


def _pg_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://"))
    path = f"/{database}" if database else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


async def _pg_admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    url = _pg_url()
    if url is None:
        yield None
        return
    name = f"laowu_tpl_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_admin(url, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL at {PG_ENV} is not reachable: {exc}")
    try:
        asyncio.run(_build_template(_with_database(url, name)))
        yield name
    finally:
        asyncio.run(_pg_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


_counter = itertools.count()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at minimal cost: tests check the rules around the hash, and at the
    production cost account set-up would dominate the suite's time."""
    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A migrated database holding the Chongqing region tree, fresh for each test."""
    if request.param == "sqlite":
        path = tmp_path / "laowu.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = _pg_url()
    if url is None:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
        )
    template = request.getfixturevalue("pg_template")
    name = f"laowu_t_{os.getpid()}_{next(_counter)}"
    asyncio.run(_pg_admin(url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _with_database(url, name)
    finally:
        asyncio.run(_pg_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        db=DatabaseSettings(url=db_url, pooled=False),
        security=SecuritySettings(secret_key="test-secret-" + "x" * 32, data_key=TEST_DATA_KEY),
        media_dir=tmp_path / "media",
        var_dir=tmp_path,
        outbox_in_process=False,
    )


@pytest.fixture
def cipher() -> DataCipher:
    return DataCipher(decode_key(TEST_DATA_KEY))


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
def sessions(app: Litestar) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = app.state.sessions
    return factory


@dataclass
class Account:
    user: User
    username: str
    password: str
    totp_secret: str | None

    @property
    def id(self) -> int:
        assert self.user.id is not None
        return self.user.id

    def otp(self) -> str | None:
        return pyotp.TOTP(self.totp_secret).now() if self.totp_secret else None


_names = itertools.count(1)


@pytest.fixture
def make_account(sessions: async_sessionmaker[AsyncSession], cipher: DataCipher):  # type: ignore[no-untyped-def]
    """Create an account the way ``laowu users create`` does."""

    async def make(
        role: str, region_code: str, *, username: str | None = None, password: str = PASSWORD
    ) -> Account:
        name = username or f"{role}_{next(_names)}"
        async with unit_of_work(sessions) as session:
            user, uri = await accounts.create_user(
                session=session,
                actor=SYSTEM,
                cipher=cipher,
                data=UserCreate(
                    username=name,
                    display_name=name,
                    role=role,
                    region_code=region_code,
                    password=password,
                ),
            )
        secret = pyotp.parse_uri(uri).secret if uri else None
        return Account(user=user, username=name, password=password, totp_secret=secret)

    return make


@pytest.fixture
def login(client: AsyncTestClient[Litestar]):  # type: ignore[no-untyped-def]
    """Log an account in over the API; returns the Authorization header."""

    used_steps: dict[str, int] = {}  # per test: ids repeat across per-test databases

    async def do(account: Account) -> dict[str, str]:
        body = {"username": account.username, "password": account.password}
        if account.totp_secret:
            # A code may be used once; step forward if this one was used already.
            body["otp"] = fresh_code(account, used_steps)
        response = await client.post("/api/v1/auth/login", json=body)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return do


def fresh_code(account: Account, used_steps: dict[str, int]) -> str:
    """A TOTP code the server has not seen yet for this account (it refuses reuse)."""
    import time

    totp = pyotp.TOTP(account.totp_secret or "")
    step = int(time.time()) // totp.interval
    last = used_steps.get(account.username, -1)
    if step <= last:
        step = last + 1  # the server accepts one step ahead for clock drift
    if step > int(time.time()) // totp.interval + 1:
        time.sleep(totp.interval - time.time() % totp.interval + 0.1)
        step = int(time.time()) // totp.interval
    used_steps[account.username] = step
    return totp.at(step * totp.interval)
