"""``laowu matching rebuild``: the candidate prefilter from the register."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from marketplace.placements.models import WorkerOccupation
from tests.web.test_cli import db_env, env, query, run

__all__ = ["db_env", "env"]  # fixtures used by name below


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_matching_rebuild_on_an_empty_register(db_env: str) -> None:
    result = run("matching", "rebuild")
    assert result.exit_code == 0, result.output
    assert "候选人预筛表已重建：0 行" in result.output
    assert query(db_env, select(func.count()).select_from(WorkerOccupation)) == [(0,)]
