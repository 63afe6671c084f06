"""Worker and job search over HTTP: scope, filters, masking, index sync through the
outbox, deleted workers and closed jobs, and any input without a 500."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.events import emit
from marketplace.jobs.models import Job
from marketplace.organizations.models import Organization
from matching.search import JOBS
from tests.conftest import WUXI, YUZHONG
from tests.marketplace.test_workers_rules import make_id
from tests.web.test_workers_api import body, first_village


async def deliver(app: Litestar) -> None:
    await drain(app.state.sessions, app.state.registry)


@pytest.fixture
async def scene(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    login: Any,
) -> dict[str, Any]:
    own = await first_village(sessions, YUZHONG)
    other = await first_village(sessions, WUXI)
    accounts = {
        "broker": await make_account("broker", own),
        "broker_wuxi": await make_account("broker", other),
        "district": await make_account("district_admin", YUZHONG),
        "district_wuxi": await make_account("district_admin", WUXI),
        "employer": await make_account("employer", YUZHONG),
    }
    h = {key: await login(acc) for key, acc in accounts.items()}
    people = [
        ("broker", own, "王建国", ["电焊工"], "seeking", "2026-12-01", 1),
        ("broker", own, "李明", ["钢筋工", "普工"], "employed_away", None, 3),
        ("broker", own, "赵小红", ["保洁"], "seeking", "2027-03-01", 5),
        ("broker_wuxi", other, "陈焊", ["焊工"], "seeking", None, 7),
    ]
    ids: dict[str, int] = {}
    for who, village, name, skills, status, available, serial in people:
        response = await client.post(
            "/api/v1/workers",
            headers=h[who],
            json=body(
                village,
                name=name,
                id_number=make_id(date(1980, 1, 1), serial),
                phone=None,
                skills=skills,
                employment_status=status,
                available_from=available,
                certificates=[],
            ),
        )
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    await deliver(app)
    return {"own": own, "other": other, "h": h, "ids": ids}


async def found(client: AsyncTestClient[Litestar], headers: dict[str, str], **params: Any) -> Any:
    response = await client.get("/api/v1/workers/search", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def names(
    client: AsyncTestClient[Litestar], headers: dict[str, str], **params: Any
) -> set[str]:
    return {w["name"] for w in (await found(client, headers, **params))["items"]}


async def test_worker_search_by_scope_filters_and_masking(
    client: AsyncTestClient[Litestar], scene: dict[str, Any]
) -> None:
    h = scene["h"]
    # 焊工 finds 电焊工 too, but only in the searcher's own villages or region.
    assert await names(client, h["broker"], q="焊工") == {"王建国"}
    assert await names(client, h["broker_wuxi"], q="焊工") == {"陈焊"}
    assert await names(client, h["district"], q="焊") == {"王建国"}
    assert await names(client, h["district_wuxi"], q="焊") == {"陈焊"}
    assert await names(client, h["broker"], q="普工") == {"李明"}
    assert await names(client, h["broker"], q="渝中") == {"王建国", "李明", "赵小红"}
    assert await names(client, h["broker"], occupation="焊工") == {"王建国"}
    assert await names(client, h["broker"], employment_status="seeking") == {"王建国", "赵小红"}
    # No date on record counts as available now.
    assert await names(client, h["broker"], available_by="2027-01-01") == {"王建国", "李明"}
    page = await found(client, h["broker"], limit=2, offset=0, sort="updated")
    assert page["total"] == 3
    assert len(page["items"]) == 2
    item = (await found(client, h["broker"], q="王建国"))["items"][0]
    assert item["id_number"] is None
    assert "*" in item["id_number_masked"]
    assert await names(client, h["district"], village_code=scene["own"]) == {
        "王建国",
        "李明",
        "赵小红",
    }


async def test_worker_search_refuses_out_of_scope(
    client: AsyncTestClient[Litestar], scene: dict[str, Any]
) -> None:
    h = scene["h"]
    response = await client.get(
        "/api/v1/workers/search", headers=h["broker"], params={"village_code": scene["other"]}
    )
    assert response.status_code == 403
    response = await client.get(
        "/api/v1/workers/search", headers=h["district"], params={"village_code": WUXI}
    )
    assert response.status_code == 403
    response = await client.get("/api/v1/workers/search", headers=h["employer"], params={"q": "焊"})
    assert response.status_code == 403
    response = await client.get(
        "/api/v1/workers/search", headers=h["broker"], params={"occupation": "宇航员驾驶"}
    )
    assert response.status_code == 422
    assert "occupation" in response.text


async def test_deleted_worker_disappears_even_before_the_index_catches_up(
    app: Litestar, client: AsyncTestClient[Litestar], scene: dict[str, Any]
) -> None:
    h, worker_id = scene["h"], scene["ids"]["王建国"]
    response = await client.request(
        "DELETE", f"/api/v1/workers/{worker_id}", headers=h["broker"], json={"reason": "other"}
    )
    assert response.status_code == 204
    assert await names(client, h["broker"], q="焊工") == set()  # re-checked in the database
    await deliver(app)
    assert (await found(client, h["broker"], q="焊工"))["total"] == 0
    response = await client.patch(
        f"/api/v1/workers/{scene['ids']['李明']}", headers=h["broker"], json={"skills": ["木工"]}
    )
    assert response.status_code == 200
    await deliver(app)
    assert await names(client, h["broker"], q="木工") == {"李明"}
    assert await names(client, h["broker"], q="钢筋") == set()


async def _job(session: AsyncSession, org_id: int, **values: Any) -> int:
    data: dict[str, Any] = {
        "organization_id": org_id,
        "title": "钢筋工",
        "occupation_code": "rebar_worker",
        "description": "工地扎钢筋，包吃住",
        "headcount": 5,
        "wage_min_fen": 30000,
        "wage_max_fen": 40000,
        "wage_unit": "day",
        "work_region_code": "500101",
        "starts_on": date(2027, 3, 1),
        "status": "published",
        "review_district_code": "500101",
        "board": True,
        "lodging": True,
    }
    data.update(values)
    job = Job(**data)
    session.add(job)
    await session.flush()
    assert job.id is not None
    await emit(session, "job.changed", {"job_id": job.id, "action": "publish"})
    return job.id


async def test_job_search_finds_published_jobs_only(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    scene: dict[str, Any],
) -> None:
    async with unit_of_work(sessions) as session:
        org = Organization(
            kind="employer",
            name="重庆建工集团",
            credit_code="91500000202825449J",
            contact_name="张三",
            contact_phone="023-12345678",
            address="重庆市渝中区",
            region_code=YUZHONG,
            status="verified",
        )
        session.add(org)
        await session.flush()
        assert org.id is not None
        rebar = await _job(session, org.id)
        welder = await _job(
            session,
            org.id,
            title="电焊工（二保焊）",
            occupation_code="welder",
            description="",
            wage_min_fen=600000,
            wage_max_fen=800000,
            wage_unit="month",
            work_region_code="500103",
            starts_on=date(2027, 1, 10),
            board=False,
            lodging=True,
        )
        await _job(session, org.id, title="焊工学徒", status="draft")
    await deliver(app)
    h = scene["h"]

    async def titles(**params: Any) -> set[str]:
        response = await client.get("/api/v1/jobs/search", headers=h["employer"], params=params)
        assert response.status_code == 200, response.text
        return {j["title"] for j in response.json()["items"]}

    assert await titles(q="焊工") == {"电焊工（二保焊）"}  # the draft is not searchable
    assert await titles(q="万州") == {"钢筋工"}
    assert await titles(q="重庆建工") == {"钢筋工", "电焊工（二保焊）"}
    assert await titles(region_code="500103") == {"电焊工（二保焊）"}
    assert await titles(wage_min_fen=700000, wage_unit="month") == {"电焊工（二保焊）"}
    assert await titles(board=True) == {"钢筋工"}
    assert await titles(lodging=True) == {"钢筋工", "电焊工（二保焊）"}
    assert await titles(starts_from="2027-02-01") == {"钢筋工"}
    assert await titles(starts_until="2027-02-01") == {"电焊工（二保焊）"}
    assert await titles(occupation="扎钢筋") == {"钢筋工"}
    bad = await client.get(
        "/api/v1/jobs/search",
        headers=h["employer"],
        params={"starts_from": "2027-05-01", "starts_until": "2027-01-01"},
    )
    assert bad.status_code == 422
    assert "starts_until" in bad.text
    assert (await client.get("/api/v1/jobs/search", params={"q": "焊工"})).status_code == 401

    # Closed: gone from results at once (database re-check), and from the index after delivery.
    async with unit_of_work(sessions) as session:
        await session.execute(update(Job).where(col(Job.id) == welder).values(status="closed"))
        await emit(session, "job.changed", {"job_id": welder, "action": "close"})
    assert await titles(q="焊工") == set()
    await deliver(app)
    assert await app.state.search.count(JOBS) == 1
    assert (await client.get("/api/v1/jobs/search?q=钢筋", headers=h["broker"])).json()["items"][0][
        "id"
    ] == rebar


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    q=st.one_of(
        st.text(max_size=80),
        st.sampled_from(
            ["", "a" * 10_000, "焊" * 3000, "' OR 1=1 --", '"焊工" AND NOT', "*:*", "🙂👷‍♂️", "\x00"]
        ),
    ),
    village=st.one_of(st.none(), st.text(max_size=14), st.sampled_from(["50", "5001", "9" * 12])),
    available=st.one_of(
        st.none(), st.text(max_size=12), st.sampled_from(["2026-02-30", "0001-01-01"])
    ),
    limit=st.integers(min_value=-5, max_value=1000),
    offset=st.integers(min_value=-5, max_value=20_000_000),
)
async def test_any_search_input_gets_a_clear_answer(
    client: AsyncTestClient[Litestar],
    scene: dict[str, Any],
    q: str,
    village: str | None,
    available: str | None,
    limit: int,
    offset: int,
) -> None:
    params: dict[str, Any] = {"q": q, "limit": limit, "offset": offset}
    if village is not None:
        params["village_code"] = village
    if available is not None:
        params["available_by"] = available
    for path, headers in (
        ("/api/v1/workers/search", scene["h"]["district"]),
        ("/api/v1/jobs/search", scene["h"]["broker"]),
    ):
        response = await client.get(path, headers=headers, params=params)
        assert response.status_code in (200, 403, 422), (path, params, response.text)
        if response.status_code != 200:
            assert response.json()["detail"]
