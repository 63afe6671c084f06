"""The worker register over HTTP: masking, reveal, scope, duplicates, bad input."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.audit.models import AuditEntry
from marketplace.regions.models import Region
from marketplace.workers.models import Worker, WorkerChange
from tests.conftest import WUXI, YUZHONG
from tests.marketplace.test_workers_rules import make_id

ID_A = make_id(date(1985, 4, 12), 242)  # 17th digit even: female
PHONE_A = "13912345678"


async def first_village(sessions: async_sessionmaker[AsyncSession], district: str) -> str:
    async with sessions() as session:
        code = (
            await session.execute(
                select(col(Region.code))
                .where(col(Region.level) == "village", col(Region.code).startswith(district))
                .order_by(col(Region.code))
                .limit(1)
            )
        ).scalar_one()
    return str(code)


def body(village: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "王建国",
        "id_number": ID_A,
        "phone": PHONE_A,
        "hukou_village_code": village,
        "current_location_text": "广东省东莞市",
        "employment_status": "employed_away",
        "skills": ["电焊", "钢筋工"],
        "certificates": [{"type": "焊工证", "number": "T500103198504", "expires_on": "2028-06-30"}],
        "wage_min_fen": 25000,
        "wage_max_fen": 35000,
        "wage_unit": "day",
        "available_from": "2026-12-01",
        "mobility": "anywhere",
        "consent_to_recommend": True,
        "consent_method": "书面",
        "note": "春节后可出门",
    }
    data.update(overrides)
    return data


@pytest.fixture
async def scene(
    sessions: async_sessionmaker[AsyncSession], make_account: Any, login: Any
) -> dict[str, Any]:
    own = await first_village(sessions, YUZHONG)
    other = await first_village(sessions, WUXI)
    accounts = {
        "broker": await make_account("broker", own),
        "broker_wuxi": await make_account("broker", other),
        "district": await make_account("district_admin", YUZHONG),
        "district_wuxi": await make_account("district_admin", WUXI),
        "employer": await make_account("employer", YUZHONG),
        "village": await make_account("village_officer", own),
    }
    headers = {key: await login(acc) for key, acc in accounts.items()}
    return {"own": own, "other": other, "h": headers, "accounts": accounts}


async def count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def assert_masked(payload: Any) -> None:
    text = str(payload)
    assert ID_A not in text
    assert PHONE_A not in text
    assert "T500103198504" not in text


async def test_register_read_list_masked_and_reveal_audited(
    client: AsyncTestClient[Litestar],
    scene: dict[str, Any],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    h = scene["h"]
    created = await client.post(
        "/api/v1/workers",
        json={**body(scene["own"]), "gender": "male", "broker_id": 999, "id": 7},
        headers=h["broker"],
    )
    assert created.status_code == 201, created.text
    worker = created.json()
    assert_masked(worker)
    assert worker["id_number_masked"] == ID_A[:3] + "*" * 11 + ID_A[-4:]
    assert worker["phone_masked"] == "139****5678"
    assert worker["gender"] == "female"  # derived from the number, not the request's "male"
    assert worker["birth_date"] == "1985-04-12"
    # Skills as entered are kept; the taxonomy maps them (电焊 → welder).
    assert worker["skills"] == ["电焊", "钢筋工"]
    assert worker["occupation_codes"] == ["welder", "rebar_worker"]
    assert worker["broker_id"] != 999
    assert worker["consent_at"] is not None
    assert worker["certificates"][0]["number"].startswith("T50")
    wid = worker["id"]

    for who in ("broker", "district"):
        detail = await client.get(f"/api/v1/workers/{wid}", headers=h[who])
        assert detail.status_code == 200
        assert_masked(detail.json())
        listed = await client.get("/api/v1/workers", params={"q": "建国"}, headers=h[who])
        assert listed.json()["total"] == 1
        wildcard = await client.get("/api/v1/workers", params={"q": "%"}, headers=h[who])
        assert wildcard.json()["total"] == 0  # a search term, not a LIKE pattern
        assert_masked(listed.json())
    history = await client.get(f"/api/v1/workers/{wid}/history", headers=h["broker"])
    assert history.status_code == 200
    assert {row["field"] for row in history.json()["items"]} >= {"name", "id_number", "phone"}
    assert_masked(history.json())

    before = await count(sessions, AuditEntry)
    revealed = await client.get(
        f"/api/v1/workers/{wid}", params={"reveal": "true"}, headers=h["broker"]
    )
    assert revealed.json()["id_number"] == ID_A
    assert revealed.json()["phone"] == PHONE_A
    assert revealed.json()["certificates"][0]["number"] == "T500103198504"
    officer = await client.get(
        f"/api/v1/workers/{wid}", params={"reveal": "true"}, headers=h["district"]
    )
    assert officer.json()["id_number"] == ID_A
    async with sessions() as session:
        entries = (
            (
                await session.execute(
                    select(AuditEntry).where(col(AuditEntry.action) == "worker.reveal")
                )
            )
            .scalars()
            .all()
        )
    assert len(entries) == 2
    assert await count(sessions, AuditEntry) == before + 2
    assert all(ID_A not in str(e.detail) and PHONE_A not in str(e.detail) for e in entries)


async def test_scope_other_village_officers_read_only_and_others_refused(
    client: AsyncTestClient[Litestar], scene: dict[str, Any]
) -> None:
    h = scene["h"]
    wid = (
        await client.post("/api/v1/workers", json=body(scene["own"]), headers=h["broker"])
    ).json()["id"]

    # A broker of 巫溪县 cannot see or touch it, and cannot register into 渝中区.
    assert (await client.get(f"/api/v1/workers/{wid}", headers=h["broker_wuxi"])).status_code == 404
    patched = await client.patch(
        f"/api/v1/workers/{wid}", json={"note": "x"}, headers=h["broker_wuxi"]
    )
    assert patched.status_code == 404
    assert (await client.get("/api/v1/workers", headers=h["broker_wuxi"])).json()["total"] == 0
    foreign = await client.post(
        "/api/v1/workers",
        json=body(scene["own"], id_number=make_id(date(1990, 1, 1))),
        headers=h["broker_wuxi"],
    )
    assert foreign.status_code == 403
    assert foreign.json()["field"] == "hukou_village_code"

    # Officers read their region only, and never write.
    assert (
        await client.get(f"/api/v1/workers/{wid}", headers=h["district_wuxi"])
    ).status_code == 404
    assert (
        await client.patch(f"/api/v1/workers/{wid}", json={"note": "x"}, headers=h["district"])
    ).status_code == 403
    assert (
        await client.post(f"/api/v1/workers/{wid}/verify", headers=h["district"])
    ).status_code == 403
    listing = await client.get(
        "/api/v1/workers", params={"village_code": WUXI}, headers=h["district"]
    )
    assert listing.status_code == 403

    # The keeping broker only unmasks; an employer and a village officer see nothing.
    for who in ("employer", "village"):
        assert (await client.get(f"/api/v1/workers/{wid}", headers=h[who])).status_code == 403
        assert (await client.get("/api/v1/workers", headers=h[who])).status_code == 403


async def test_same_id_number_is_409_across_districts(
    client: AsyncTestClient[Litestar],
    scene: dict[str, Any],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    h = scene["h"]
    first = await client.post("/api/v1/workers", json=body(scene["own"]), headers=h["broker"])
    wid = first.json()["id"]
    again = await client.post(
        "/api/v1/workers",
        json=body(
            scene["other"], id_number=ID_A.lower() if ID_A.endswith("X") else ID_A, name="王 建国"
        ),
        headers=h["broker_wuxi"],
    )
    assert again.status_code == 409
    detail = again.json()["detail"]
    keeper = scene["accounts"]["broker"].username
    assert str(wid) in detail
    assert f"{keeper[0]}{'*' * (len(keeper) - 1)}" in detail
    assert keeper not in detail
    assert_masked(again.json())
    assert await count(sessions, Worker) == 1


BAD_INPUT = [
    ({"id_number": ID_A[:-1] + ("0" if ID_A[-1] != "0" else "1")}, "id_number"),  # check digit
    ({"id_number": "50010319850230123X"}, "id_number"),  # 30 February
    ({"id_number": make_id(date(2015, 1, 1))}, "id_number"),  # eleven years old
    ({"id_number": "5001031985"}, "id_number"),
    ({"hukou_village_code": "500103999999"}, "hukou_village_code"),
    ({"hukou_village_code": YUZHONG}, "hukou_village_code"),  # a district, not a village
    ({"current_region_code": "110101", "current_location_text": None}, "current_region_code"),
    ({"phone": "1391234567"}, "phone"),
    ({"phone": "23912345678"}, "phone"),
    ({"wage_min_fen": 40000, "wage_max_fen": 30000}, "wage_min_fen"),
    ({"wage_min_fen": -100}, "wage_min_fen"),
    ({"wage_max_fen": 900_000_000}, "wage_max_fen"),
    ({"employment_status": "retired"}, "employment_status"),
    ({"name": "   "}, "name"),
]


async def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    client: AsyncTestClient[Litestar],
    scene: dict[str, Any],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    h = scene["h"]
    for override, field in BAD_INPUT:
        response = await client.post(
            "/api/v1/workers", json=body(scene["own"], **override), headers=h["broker"]
        )
        assert response.status_code == 422, (override, response.text)
        assert response.json()["field"] == field, (override, response.text)
        assert response.json()["detail"]
        assert_masked(response.json())
    assert await count(sessions, Worker) == 0
    assert await count(sessions, WorkerChange) == 0

    # An update with bad input changes nothing either.
    wid = (
        await client.post("/api/v1/workers", json=body(scene["own"]), headers=h["broker"])
    ).json()["id"]
    for override, field in BAD_INPUT:
        response = await client.patch(f"/api/v1/workers/{wid}", json=override, headers=h["broker"])
        assert response.status_code == 422, (override, response.text)
        assert response.json()["field"] == field, (override, response.text)
    after = await client.get(
        f"/api/v1/workers/{wid}", params={"reveal": "true"}, headers=h["broker"]
    )
    assert after.json()["id_number"] == ID_A
    assert after.json()["wage_min_fen"] == 25000
    async with sessions() as session:
        changes = await session.execute(
            select(func.count())
            .select_from(WorkerChange)
            .where(col(WorkerChange.action) != "create")
        )
    assert changes.scalar_one() == 0
