"""``laowu tasks generate`` and ``laowu tasks sweep``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from marketplace.tasks.models import ServiceTask
from tests.tasks.support import VILLAGE, add_workers
from tests.web.test_cli import db_env, env, one_error_line, run, scalar  # noqa: F401

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_generate_is_idempotent_per_period(
    db_env: str,  # noqa: F811
    make_account: Any,
    sessions: Any,
    cipher: Any,
) -> None:
    async def prepare() -> None:
        broker = await make_account("broker", VILLAGE)
        await add_workers(sessions, cipher, broker, VILLAGE, 2)

    asyncio.run(prepare())
    first = run("tasks", "generate", "--period", "2026-12")
    assert first.exit_code == 0, first.output
    assert "新生成 1 个任务" in first.stdout
    again = run("tasks", "generate", "--period", "2026-12")
    assert "新生成 0 个任务，已有 1 个" in again.stdout
    assert scalar(db_env, select(func.count()).select_from(ServiceTask)) == 1
    swept = run("tasks", "sweep")
    assert swept.exit_code == 0
    assert "已过期 0 个" in swept.stdout


def test_generate_refuses_a_bad_period(db_env: str) -> None:  # noqa: F811
    assert "YYYY-MM" in one_error_line(run("tasks", "generate", "--period", "2026-13"))
