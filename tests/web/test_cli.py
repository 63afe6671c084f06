"""The ``laowu`` command, run in-process through click and once as the installed script."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, text
from sqlmodel import col

from marketplace import dispatcher
from marketplace.accounts.models import User
from marketplace.audit.models import AuditEntry
from marketplace.brokers.models import ApplicationStatus, Broker, BrokerApplication
from marketplace.db import create_engine, session_factory
from marketplace.notifications.models import Notification
from marketplace.regions.models import Region
from tests.conftest import PG_ENV, TEST_DATA_KEY, _pg_admin, _with_database
from web import cli
from web.migrate import current_revision, head_revision
from web.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
VILLAGE = "500103001003"
GOOD_PASSWORD = "long-enough-pass-42"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Point the CLI at a fresh SQLite file under a temporary var dir."""
    values = {
        "LAOWU_ENV": "development",
        "LAOWU_VAR_DIR": str(tmp_path / "var"),
        "LAOWU_DATA_KEY": TEST_DATA_KEY,
    }
    for name in list(os.environ):
        if name.startswith("LAOWU_") and name != "LAOWU_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


@pytest.fixture
def db_env(env: dict[str, str], db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI against the migrated test database (SQLite and PostgreSQL)."""
    monkeypatch.setenv("LAOWU_DATABASE_URL", db_url)
    get_settings.cache_clear()
    return db_url


def run(*args: str, stdin: str | None = None) -> Result:
    get_settings.cache_clear()
    return CliRunner().invoke(cli.main, list(args), input=stdin, catch_exceptions=False)


def query(url: str, statement: Any) -> Any:
    async def go() -> Any:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                return (await session.execute(statement)).all()
        finally:
            await engine.dispose()

    return asyncio.run(go())


def scalar(url: str, statement: Any) -> Any:
    return query(url, statement)[0][0]


def one_error_line(result: Result) -> str:
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("错误：")
    assert "Traceback" not in result.output
    return lines[0]


# --- db and regions -------------------------------------------------------------------


def test_fresh_install_upgrade_and_load_regions(env: dict[str, str]) -> None:
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "数据库已是最新版本" in result.stdout
    database = Path(env["LAOWU_VAR_DIR"]) / "laowu.db"
    assert database.exists()
    assert run("db", "upgrade").exit_code == 0  # again: nothing to do

    # Its speed target (< 5 s) is bench/bench_foundation.py's, not a timed assertion here.
    loaded = run("regions", "load")
    assert loaded.exit_code == 0, loaded.output
    assert "已载入 12340 个区划" in loaded.stdout

    again = run("regions", "load")
    assert again.exit_code == 0
    url = f"sqlite+aiosqlite:///{database}"
    assert scalar(url, select(func.count()).select_from(Region)) == 12_340


def test_regions_load_keeps_populations(db_env: str) -> None:
    async def set_population() -> None:
        engine = create_engine(db_env)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE region SET population = 6000 WHERE code = :c"), {"c": VILLAGE}
                )
        finally:
            await engine.dispose()

    asyncio.run(set_population())
    result = run("regions", "load")
    assert result.exit_code == 0, result.output
    assert "12340" in result.stdout
    assert scalar(db_env, select(col(Region.population)).where(col(Region.code) == VILLAGE)) == 6000
    assert scalar(db_env, select(func.count()).select_from(Region)) == 12_340


def test_regions_load_refuses_a_bad_file(db_env: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,level,parent_code,kind\n5001,坏,district,50,\n", encoding="utf-8")
    line = one_error_line(run("regions", "load", "--file", str(bad)))
    assert "第 2 行" in line
    assert "code" in line


# --- users ----------------------------------------------------------------------------


def test_users_create_broker(db_env: str) -> None:
    result = run(
        "users", "create", "--username", "wang_wu", "--role", "broker", "--region", VILLAGE,
        "--name", "王五", stdin=GOOD_PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "已创建账号 wang_wu" in result.stdout
    assert "otpauth://" not in result.stdout
    user_id, name, role = query(
        db_env,
        select(col(User.id), col(User.display_name), col(User.role)).where(
            col(User.username) == "wang_wu"
        ),
    )[0]
    assert (name, role) == ("王五", "broker")
    broker = query(db_env, select(col(Broker.village_code), col(Broker.status)))
    assert broker == [(VILLAGE, "active")]
    assert scalar(db_env, select(func.count()).select_from(AuditEntry)) == 1
    assert user_id is not None


def test_users_create_totp_role_prints_the_uri_once(db_env: str) -> None:
    result = run(
        "users", "create", "--username", "city_boss", "--role", "city_admin", "--region", "50",
        stdin=GOOD_PASSWORD + "\r\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    uris = [line for line in result.stdout.splitlines() if line.startswith("otpauth://")]
    assert len(uris) == 1
    assert result.stdout.count("otpauth://") == 1
    totp = pyotp.parse_uri(uris[0])
    assert isinstance(totp, pyotp.TOTP)
    assert totp.name == "city_boss"
    assert len(totp.secret) >= 16
    stored = scalar(
        db_env, select(col(User.totp_secret_enc)).where(col(User.username) == "city_boss")
    )
    assert totp.secret not in stored  # kept encrypted


@pytest.mark.parametrize(
    ("args", "password", "words"),
    [
        (["--username", "u_role", "--role", "mayor", "--region", "50"], GOOD_PASSWORD, "未知角色"),
        (["--username", "u_region", "--role", "broker", "--region", "500103999999"], GOOD_PASSWORD,
         "500103999999"),
        (["--username", "u_short", "--role", "district_admin", "--region", "500103"], "short-pw",
         "至少 12 个字符"),
        (["--username", "u_scope", "--role", "broker", "--region", "500103"], GOOD_PASSWORD,
         "管辖范围"),
        (["--username", "ab", "--role", "broker", "--region", VILLAGE], GOOD_PASSWORD,
         "--username 至少 3 个字符"),
        (["--username", "u_empty", "--role", "broker", "--region", VILLAGE], "", "密码"),
    ],
    ids=["unknown-role", "bad-region", "short-password", "wrong-level", "short-username", "no-pw"],
)  # fmt: skip
def test_users_create_errors_are_one_clear_line(
    db_env: str, args: list[str], password: str, words: str
) -> None:
    line = one_error_line(run("users", "create", *args, stdin=password + "\n"))
    assert words in line
    assert scalar(db_env, select(func.count()).select_from(User)) == 0


def test_users_create_duplicate_username(db_env: str) -> None:
    args = ["users", "create", "--username", "dup_user", "--role", "employer", "--region", "500103"]
    assert run(*args, stdin=GOOD_PASSWORD + "\n").exit_code == 0
    line = one_error_line(run(*args, stdin=GOOD_PASSWORD + "\n"))
    assert "dup_user" in line
    assert "已被使用" in line
    assert scalar(db_env, select(func.count()).select_from(User)) == 1


def test_database_unreachable_is_one_line(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAOWU_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:9/none")
    one_error_line(run("db", "upgrade"))


def test_bad_settings_are_one_line(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAOWU_DATA_KEY", "not-a-key")
    line = one_error_line(run("db", "upgrade"))
    assert "LAOWU_DATA_KEY" in line


# --- audit, worker --------------------------------------------------------------------


def test_audit_verify(db_env: str) -> None:
    for name in ("user_one", "user_two", "user_three"):
        created = run(
            "users", "create", "--username", name, "--role", "employer", "--region", "500103",
            stdin=GOOD_PASSWORD + "\n",
        )  # fmt: skip
        assert created.exit_code == 0, created.output
    good = run("audit", "verify")
    assert good.exit_code == 0, good.output
    assert "已校验 3 条" in good.stdout

    async def tamper() -> None:
        engine = create_engine(db_env)
        try:
            async with engine.begin() as conn:
                if db_env.startswith("sqlite"):
                    await conn.execute(text("DROP TRIGGER audit_log_no_update"))
                else:
                    await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
                await conn.execute(text("UPDATE audit_log SET outcome = 'denied' WHERE id = 2"))
        finally:
            await engine.dispose()

    asyncio.run(tamper())
    line = one_error_line(run("audit", "verify"))
    assert "第 2 条" in line


def test_worker_once_delivers_the_outbox(db_env: str) -> None:
    created = run(
        "users", "create", "--username", "new_hire", "--role", "agency", "--region", "500103",
        stdin=GOOD_PASSWORD + "\n",
    )  # fmt: skip
    assert created.exit_code == 0
    result = run("worker", "--once")
    assert result.exit_code == 0, result.output
    assert "已投递 1" in result.stdout
    assert scalar(db_env, select(func.count()).select_from(Notification)) == 1
    assert run("worker", "--once").stdout == ""  # nothing left


# --- demo -----------------------------------------------------------------------------


def _demo_state(url: str) -> tuple[int, int, list[tuple[str, int | None]]]:
    users = scalar(url, select(func.count()).select_from(User))
    brokers = scalar(url, select(func.count()).select_from(Broker))
    populations = query(
        url,
        select(col(Region.code), col(Region.population))
        .where(col(Region.population).is_not(None))
        .order_by(col(Region.code)),
    )
    return users, brokers, [tuple(row) for row in populations]


def test_demo_twice_is_idempotent_and_prints_logins(
    env: dict[str, str], sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    var = Path(env["LAOWU_VAR_DIR"])
    var.mkdir(parents=True)
    shutil.copyfile(sqlite_template, var / "laowu.db")
    url = f"sqlite+aiosqlite:///{var / 'laowu.db'}"

    first = run("demo")
    assert first.exit_code == 0, first.output
    state = _demo_state(url)
    second = run("demo")
    assert second.exit_code == 0, second.output
    assert _demo_state(url) == state
    assert first.stdout == second.stdout

    users, brokers, populations = state
    # city accounts, every role in three districts, two certified applicants in each;
    # the demo's other brokers get placeholder accounts that cannot log in (scoring
    # counts activity by account), so every active broker has one.
    can_log_in = scalar(
        url, select(func.count()).select_from(User).where(col(User.password_hash) != "!")
    )
    assert can_log_in == 3 + 3 * 8 + 3 * 2
    assert users > can_log_in
    without_account = scalar(
        url,
        select(func.count())
        .select_from(Broker)
        .where(col(Broker.user_id).is_(None), col(Broker.status) == "active"),
    )
    assert without_account == 0
    assert brokers > 100
    districts = {code[:6] for code, _ in populations}
    assert districts == {"500103", "500238", "500101"}
    out = first.stdout
    assert "演示账号（密码均为" in out
    for username in ("city_admin", "yuzhong_admin", "wuxi_broker", "wanzhou_finance"):
        assert username in out
    assert out.count("动态验证码密钥") == 3 + 3 * 3  # admin, finance, auditor
    assert run("audit", "verify").exit_code == 0
    # Broker applications at every step in every district, and villages still uncovered.
    steps = query(
        url,
        select(
            func.substr(col(BrokerApplication.village_code), 1, 6), col(BrokerApplication.status)
        ).distinct(),
    )
    for district in districts:
        assert {s for d, s in steps if d == district} == set(ApplicationStatus)
    numbered = scalar(url, select(func.count()).where(col(Broker.broker_no).is_not(None)))
    assert numbered == brokers


# --- the installed script -------------------------------------------------------------


def _script() -> Path:
    script = ROOT / ".venv" / "bin" / "laowu"
    return script if script.exists() else Path(shutil.which("laowu") or "laowu")


def test_installed_script_errors_without_traceback(tmp_path: Path) -> None:
    script = _script()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAOWU_")}
    clean |= {"LAOWU_VAR_DIR": str(tmp_path / "var"), "LAOWU_DATA_KEY": TEST_DATA_KEY}
    done = subprocess.run(
        [
            str(script),
            "users",
            "create",
            "--username",
            "x_user",
            "--role",
            "mayor",
            "--region",
            "50",
        ],
        input=GOOD_PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=clean,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("错误：")
    assert "未知角色" in done.stderr
    assert "Traceback" not in done.stderr


# --- concurrent upgrades --------------------------------------------------------------


def _upgrade_twice_at_once(url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAOWU_")}
    env |= {"LAOWU_VAR_DIR": str(tmp_path), "LAOWU_DATA_KEY": TEST_DATA_KEY}
    env["LAOWU_DATABASE_URL"] = url
    procs = [
        subprocess.Popen(
            [str(_script()), "db", "upgrade"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        assert "数据库已是最新版本" in out

    async def revision() -> str | None:
        engine = create_engine(url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(revision()) == head_revision()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_processes_upgrading_at_once(tmp_path: Path, backend: str) -> None:
    """Replicas starting together (``laowu serve`` upgrades first) must not trip over
    each other creating the same tables."""
    if backend == "sqlite":
        _upgrade_twice_at_once(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}", tmp_path)
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"needs {PG_ENV}")
    name = f"laowu_up_{os.getpid()}"
    asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"'))
    try:
        _upgrade_twice_at_once(_with_database(base, name), tmp_path)
    finally:
        asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_worker_survives_a_failed_pass(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-running worker logs a failed drain (database restarting) and carries on."""
    calls: list[int] = []

    async def flaky_drain(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("connection refused")
        raise KeyboardInterrupt  # stop the loop: the operator presses Ctrl-C

    monkeypatch.setattr(dispatcher, "drain", flaky_drain)
    result = run("worker", "--interval", "0")
    assert len(calls) == 2
    assert result.exit_code != 0
    assert "Traceback" not in result.output
