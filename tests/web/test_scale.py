"""``laowu demo --scale``: the generated data is what the platform would have written —
the ledger balances, the accounts log in, the API serves it (tiny scale, both DBs)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlmodel import col

from billing.models import FundPool, PayoutBatch, Subsidy
from billing.reconciliation import report
from marketplace.access import SYSTEM
from marketplace.accounts.models import User
from marketplace.brokers.models import Broker
from marketplace.crypto import DataCipher
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.demo import DEMO_PASSWORD
from marketplace.jobs.models import Job
from marketplace.organizations.credit_code import parse_credit_code
from marketplace.organizations.models import Organization
from marketplace.placements.models import Placement, Recommendation
from marketplace.tasks.models import ServiceTask
from marketplace.workers.identity import parse_resident_id
from marketplace.workers.models import Worker
from marketplace.workers.records import CTX_ID
from tests.web.test_cli import db_env, env, run  # noqa: F401  (fixtures)
from web import cli
from web.scale.check import check_ledger
from web.scale.generate import Others, broker_village_plan, generate, resident_id
from web.scale.plan import SCALES

TINY = SCALES["tiny"]


async def _count(url: str, model: object) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def test_tiny_scale_has_every_part_and_balanced_books(
    db_url: str, cipher: DataCipher
) -> None:
    report_ = await generate(db_url, TINY, cipher)
    assert [p.name for p in report_.parts] == [
        "prepare", "accounts", "workers", "organizations", "jobs", "placements", "tasks",
        "analyze",
    ]  # fmt: skip
    assert all(p.peak_rss_mb > 0 and p.seconds >= 0 for p in report_.parts)
    assert await _count(db_url, Broker) == TINY.brokers
    assert await _count(db_url, Worker) == TINY.workers
    assert await _count(db_url, Organization) == TINY.organizations
    assert await _count(db_url, Job) == TINY.jobs
    assert await _count(db_url, ServiceTask) == TINY.tasks
    assert await _count(db_url, Recommendation) == TINY.workers // 10
    assert 0 < await _count(db_url, Placement) < TINY.workers // 10

    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            books = await check_ledger(conn)
        assert books.ok, books.problems()
        assert books.entries > TINY.tasks // 2
        assert books.debits_fen == books.credits_fen
        async with unit_of_work(session_factory(engine), write=False) as session:
            statuses = dict(
                (
                    await session.execute(
                        select(col(Subsidy.status), func.count()).group_by(col(Subsidy.status))
                    )
                ).all()
            )
            # Paid through monthly batches; November's still reserved; a few voided.
            assert statuses["paid"] > statuses["pending"] > 0
            assert statuses.get("voided", 0) + statuses.get("reversed", 0) > 0
            assert await session.scalar(select(func.count()).select_from(PayoutBatch)) > 0
            pools = await session.scalar(select(func.count()).select_from(FundPool))
            assert pools == 38 * 5  # every district and funding source
            # Billing's own reconciliation agrees with the ledger for a paid month.
            for period in ("2026-03", "2026-11"):
                rep = await report(session, actor=SYSTEM, period=period)
                assert rep.balanced
                assert rep.lines
                assert sum(line.paid_fen for line in rep.lines) > 0 or period == "2026-11"
            # Workers carry valid, unique, decryptable ID numbers, like a registration.
            first = (
                await session.execute(select(Worker).order_by(col(Worker.id)).limit(1))
            ).scalar_one()
            number = cipher.decrypt(first.id_number_enc or "", context=CTX_ID)
            parsed = parse_resident_id(number, today=date(2026, 11, 27))
            assert number == resident_id(first.hukou_village_code[:6], 0)[0]
            assert first.id_number_hash == cipher.lookup_hash(number)
            assert parsed.birth_date == first.birth_date
            assert parsed.gender == first.gender
            code = (await session.execute(select(col(Organization.credit_code)).limit(1))).scalar()
            assert parse_credit_code(str(code)) == code
    finally:
        await engine.dispose()

    # Running again adds nothing: every part is already there.
    again = await generate(db_url, TINY, cipher)
    assert all(p.skipped for p in again.parts if p.name not in ("prepare", "analyze"))
    assert await _count(db_url, Worker) == TINY.workers
    assert await _count(db_url, ServiceTask) == TINY.tasks


def test_resident_ids_are_unique_and_valid() -> None:
    numbers = [resident_id("500101", i)[0] for i in range(50_000)]
    assert len(set(numbers)) == len(numbers)
    for n in numbers[:500]:
        parse_resident_id(n, today=date(2026, 11, 27))


def test_brokers_cover_every_village_before_any_gets_a_second() -> None:
    villages = [f"v{i:05d}" for i in range(100)]
    assert sorted(broker_village_plan(villages, 100)) == villages
    plan = broker_village_plan(villages, 130)
    assert set(plan) == set(villages)
    assert len(plan) == 130
    assert len(set(broker_village_plan(villages, 10))) == 10


async def test_generated_accounts_use_the_api(
    db_url: str, cipher: DataCipher, client: AsyncTestClient[Litestar]
) -> None:
    await generate(db_url, TINY, cipher)
    response = await client.post(
        "/api/v1/auth/login", json={"username": "b00001", "password": DEMO_PASSWORD}
    )
    assert response.status_code == 200, response.text
    broker = {"Authorization": f"Bearer {response.json()['access_token']}"}
    listed = await client.get("/api/v1/workers", headers=broker)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            own = (
                await conn.execute(
                    select(func.count())
                    .select_from(Worker)
                    .join(Broker, col(Broker.id) == col(Worker.broker_id))
                    .join(User, col(User.id) == col(Broker.user_id))
                    .where(col(User.username) == "b00001")
                )
            ).scalar_one()
            secret_enc = (
                await conn.execute(
                    select(col(User.totp_secret_enc)).where(col(User.username) == "city_admin")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert page["total"] == own > 0
    # The encrypted ID number decrypts to a Chongqing number, masked in the list.
    assert page["items"][0]["id_number_masked"].startswith("50")
    assert "*" in page["items"][0]["id_number_masked"]
    assert page["items"][0]["id_number"] is None

    otp = pyotp.TOTP(cipher.decrypt(secret_enc or "", context="totp")).now()
    response = await client.post(
        "/api/v1/auth/login",
        json={"username": "city_admin", "password": DEMO_PASSWORD, "otp": otp},
    )
    assert response.status_code == 200, response.text
    admin = {"Authorization": f"Bearer {response.json()['access_token']}"}
    coverage = await client.get("/api/v1/regions/50/coverage", headers=admin)
    assert coverage.status_code == 200, coverage.text
    assert coverage.json()["villages"] == 11_270
    assert coverage.json()["villages_covered"] == TINY.brokers


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_laowu_demo_scale_reports_parts_and_checks_the_ledger(db_env: str) -> None:  # noqa: F811
    result = run("demo", "--scale", "tiny", "--scale-factor", "0.5")
    assert result.exit_code == 0, result.output
    assert "生成 tiny×0.5 规模数据：经纪人 30，劳动者 1,500" in result.stdout
    for part in ("accounts", "workers", "organizations", "jobs", "placements", "tasks"):
        assert f"{part}: " in result.stdout
    assert "内存峰值" in result.stdout
    assert "账本核对通过" in result.stdout
    assert asyncio.run(_count(db_env, Worker)) == 1_500
    assert asyncio.run(_count(db_env, ServiceTask)) == 1_500


def test_scale_factor_needs_a_scale(env: dict[str, str]) -> None:  # noqa: F811
    result = CliRunner().invoke(cli.main, ["demo", "--scale-factor", "2"])
    assert result.exit_code != 0
    assert "--scale-factor 需要与 --scale 一起使用" in result.output


async def test_generating_beside_other_workers_skips_registered_id_numbers(
    db_url: str, cipher: DataCipher
) -> None:
    """bench_load loads the demo first, then generates past the demo's rows: an ID
    number the register already holds is skipped, and a second run adds nobody."""
    parts = ("accounts", "workers")
    await generate(db_url, TINY, cipher, parts=parts)
    first = await _count(db_url, Worker)
    # Another seed draws other villages for the same ID-number slots: some numbers
    # (the same district and slot) are already registered.
    other = dataclasses.replace(TINY, name="tiny-other", seed=TINY.seed + 1)
    await generate(db_url, other, cipher, parts=parts, others=Others(workers=first))
    second = await _count(db_url, Worker)
    assert first < second < first + other.workers
    await generate(db_url, other, cipher, parts=parts, others=Others(workers=first))
    assert await _count(db_url, Worker) == second


async def test_bench_load_fills_a_new_empty_database_and_reuses_a_filled_one(
    db_url: str, cipher: DataCipher, tmp_path: Path
) -> None:
    """``bench_load.py --database-url`` builds its data set in a database that is new
    (no tables yet: it once failed there on "user_account does not exist") and uses
    one that holds accounts as it is."""
    from bench.bench_load import _has_accounts

    assert not await _has_accounts(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    assert not await _has_accounts(db_url)  # migrated, regions only
    await generate(db_url, TINY, cipher, parts=("accounts",))
    assert await _has_accounts(db_url)
