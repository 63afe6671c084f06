"""``laowu questions load``: the starter bank, idempotent; a bad file changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from marketplace.brokers.questions_models import Question, QuestionVersion
from marketplace.db import create_engine, session_factory
from tests.web.test_cli import db_env, env  # noqa: F401 - fixtures
from web import cli


async def counts(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            questions = (
                await session.execute(select(func.count()).select_from(Question))
            ).scalar_one()
            versions = (
                await session.execute(select(func.count()).select_from(QuestionVersion))
            ).scalar_one()
    finally:
        await engine.dispose()
    return int(questions), int(versions)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_questions_load_is_idempotent_and_refuses_a_bad_file_whole(
    db_env: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    first = runner.invoke(cli.main, ["questions", "load"])
    assert first.exit_code == 0, first.output
    assert "新增 138 题" in first.output
    again = runner.invoke(cli.main, ["questions", "load"])
    assert again.exit_code == 0, again.output
    assert "新增 0 题，更新 0 题（新版本），未变 138 题" in again.output
    assert asyncio.run(counts(db_env)) == (138, 138)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "编号,题型,分类,难度,题干,选项A,选项B,答案,解析\n"
        "LC-01,判断,政策法规,易,改过的题干,,,错,解析\n"
        "Z-1,单选,政策法规,易,题,甲,乙,,解析\n",
        encoding="utf-8",
    )
    refused = runner.invoke(cli.main, ["questions", "load", "--file", str(bad)])
    assert refused.exit_code == 1
    assert "第 3 行（答案）：没有正确答案" in refused.output
    assert asyncio.run(counts(db_env)) == (138, 138)
    good = tmp_path / "good.csv"
    good.write_text(
        "编号,题型,分类,难度,题干,选项A,选项B,答案,解析\n"
        "LC-01,判断,政策法规,易,用人单位自用工之日起即与劳动者建立劳动关系（修订）。,,,对,解析\n"
        "NEW-1,单选,业务知识,易,新题,甲,乙,B,解析\n",
        encoding="utf-8",
    )
    changed = runner.invoke(cli.main, ["questions", "load", "--file", str(good)])
    assert changed.exit_code == 0, changed.output
    assert "新增 1 题，更新 1 题（新版本），未变 0 题" in changed.output
    assert asyncio.run(counts(db_env)) == (139, 140)
