"""Over HTTP, from ranking to the first wage: a broker sees the jobs for a worker and
the workers for a job with reasons, recommends; a second broker is held off by the
attribution window; the employer sees the worker masked until recommended, then
shortlists and hires; the broker confirms onboarding (placement.confirmed) and, a
month on, reports an unpaid first wage (an arrears case)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.crypto import DataCipher
from marketplace.dispatcher import drain
from marketplace.events import OutboxEvent
from marketplace.placements.models import ArrearsCase
from matching.rank import WEIGHTS
from tests.marketplace import placements_scene

Client = AsyncTestClient[Litestar]


async def test_recommendation_to_wage_report(
    client: Client,
    login: Any,
    make_account: Any,
    sessions: async_sessionmaker[AsyncSession],
    cipher: DataCipher,
) -> None:
    s = await placements_scene.build(sessions, make_account, cipher)
    await drain(sessions, client.app.state.registry)  # the candidate prefilter follows
    a = await login(s.accounts["a"])
    b = await login(s.accounts["b"])
    employer = await login(s.accounts["employer"])
    other_employer = await login(s.accounts["other_employer"])

    matches = await client.get(f"/api/v1/workers/{s.worker_id}/matches", headers=a)
    assert matches.status_code == 200, matches.text
    best = matches.json()["items"][0]
    assert best["job"]["id"] == s.job_id
    assert [c["name"] for c in best["components"]] == list(WEIGHTS)
    assert best["components"][0]["reason"]  # each says why, in Chinese

    mine = await client.get(f"/api/v1/jobs/{s.job_id}/candidates", headers=a)
    assert mine.status_code == 200, mine.text
    by_id = {c["worker"]["id"]: c for c in mine.json()["items"]}
    assert set(by_id) == {s.worker_id, s.silent_worker_id}  # the broker's own, named
    assert by_id[s.worker_id]["worker"]["name"] == "张一"
    assert by_id[s.silent_worker_id]["worker"]["consent"] is False

    seen = await client.get(f"/api/v1/jobs/{s.job_id}/candidates", headers=employer)
    assert seen.status_code == 200, seen.text
    [masked] = seen.json()["items"]  # consenting workers only
    assert masked["worker"]["name"] == "张*"
    assert masked["worker"]["phone"] is None
    assert masked["worker"]["masked"] is True
    not_theirs = await client.get(f"/api/v1/jobs/{s.job_id}/candidates", headers=other_employer)
    assert not_theirs.status_code == 404

    body = {"job_id": s.job_id, "worker_id": s.worker_id, "note": "焊工证齐全，能吃苦"}
    made = await client.post("/api/v1/recommendations", json=body, headers=a)
    assert made.status_code == 201, made.text
    rec = made.json()
    assert rec["status"] == "recommended"
    late = await client.post("/api/v1/recommendations", json=body, headers=b)
    assert late.status_code == 409
    assert "归属保留至" in late.json()["detail"]
    silent = await client.post(
        "/api/v1/recommendations", json={**body, "worker_id": s.silent_worker_id}, headers=a
    )
    assert silent.status_code == 409
    assert "未同意" in silent.json()["detail"]

    seen = await client.get(f"/api/v1/jobs/{s.job_id}/candidates", headers=employer)
    [named] = seen.json()["items"]
    assert named["worker"]["name"] == "张一"  # recommended: name and phone
    assert named["worker"]["phone"] == "13800000001"
    listed = await client.get("/api/v1/recommendations", headers=employer)
    assert listed.json()["total"] == 1

    url = f"/api/v1/recommendations/{rec['id']}/status"
    start = date.today() - timedelta(days=35)
    early = await client.post(
        url, json={"status": "hired", "starts_on": str(start)}, headers=employer
    )
    assert early.status_code == 409  # not shortlisted yet
    assert (
        await client.post(url, json={"status": "shortlisted"}, headers=employer)
    ).status_code == 200
    hired = await client.post(
        url, json={"status": "hired", "starts_on": str(start)}, headers=employer
    )
    assert hired.status_code == 200, hired.text
    assert hired.json()["status_label"] == "已录用"
    onboarded = await client.post(url, json={"status": "onboarded"}, headers=a)
    assert onboarded.status_code == 200, onboarded.text
    placement_id = onboarded.json()["placement_id"]
    assert placement_id

    report = {"paid_in_full": False, "paid_on_time": False, "owed_fen": 3_000_00, "note": "拖欠"}
    wage = await client.post(
        f"/api/v1/placements/{placement_id}/wage-reports", json=report, headers=a
    )
    assert wage.status_code == 201, wage.text
    assert wage.json()["wage_report"]["arrears_case_id"]
    again = await client.post(
        f"/api/v1/placements/{placement_id}/wage-reports", json=report, headers=a
    )
    assert again.status_code == 409

    async with sessions() as session:
        names = (
            await session.execute(
                select(col(OutboxEvent.name)).where(
                    col(OutboxEvent.name).in_(["placement.confirmed", "arrears.opened"])
                )
            )
        ).scalars()
        assert sorted(names) == ["arrears.opened", "placement.confirmed"]

    # The worker's district closes the case once the wage is paid; it counts as a
    # resolved arrears case for the broker's points that month.
    case_region = (await client.get(f"/api/v1/placements/{placement_id}", headers=a)).json()
    assert case_region
    async with sessions() as session:
        village = (
            await session.execute(
                select(col(ArrearsCase.region_code)).where(
                    col(ArrearsCase.placement_id) == placement_id
                )
            )
        ).scalar_one()
    officer = await login(await make_account("district_admin", village[:6]))
    resolve = f"/api/v1/placements/{placement_id}/arrears/resolve"
    assert (await client.post(resolve, json={"note": "已补发"}, headers=a)).status_code == 403
    blank = await client.post(resolve, json={"note": " "}, headers=officer)
    assert blank.status_code == 422
    assert blank.json()["field"] == "note"
    done = await client.post(resolve, json={"note": "经调解已足额补发"}, headers=officer)
    assert done.status_code == 200, done.text
    assert (await client.post(resolve, json={"note": "再次"}, headers=officer)).status_code == 409
    async with sessions() as session:
        case = (
            await session.execute(
                select(ArrearsCase).where(col(ArrearsCase.placement_id) == placement_id)
            )
        ).scalar_one()
        assert case.status == "resolved"
        assert case.resolved_at is not None
