"""A journey over HTTP: a broker of 渝中区 keeps the register of two villages, a
broker of 巫溪县 runs into a person already registered, officers read, a likely
duplicate is merged and a record deleted at the person's request."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.audit.models import AuditEntry
from marketplace.brokers.models import Broker, BrokerVillage
from marketplace.db import unit_of_work
from marketplace.events import OutboxEvent
from tests.marketplace.test_workers_rules import make_id

Client = AsyncTestClient[Litestar]
HOME, ASSIGNED = "500103001003", "500103001006"
WUXI_VILLAGE = "500238001001"


async def headers_for(
    client: Client, login: Any, make_account: Any, role: str, region: str
) -> dict[str, str]:
    return dict(await login(await make_account(role, region)))


async def test_worker_register_journey(
    client: Client, login: Any, make_account: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    broker_account = await make_account("broker", HOME)
    broker = await login(broker_account)
    wuxi_broker = await headers_for(client, login, make_account, "broker", WUXI_VILLAGE)
    township = await headers_for(client, login, make_account, "township_officer", "500103001")
    employer = await headers_for(client, login, make_account, "employer", "500103")

    # A village assigned on top of the home village.
    async with unit_of_work(sessions) as session:
        row = (
            await session.execute(select(Broker).where(col(Broker.user_id) == broker_account.id))
        ).scalar_one()
        homes = (
            (
                await session.execute(
                    select(BrokerVillage).where(col(BrokerVillage.broker_id) == row.id)
                )
            )
            .scalars()
            .all()
        )
        assert [h.village_code for h in homes] == [HOME]  # made with the account
        session.add(BrokerVillage(broker_id=row.id or 0, village_code=ASSIGNED))

    born = date(1976, 9, 9)
    people = {
        "chen": {"name": "陈大勇", "id_number": make_id(born, 135), "phone": "13500001111", "hukou_village_code": HOME},
        "chen2": {"name": "陈 大勇", "id_number": make_id(born, 137), "phone": "13500001111", "hukou_village_code": HOME, "skills": ["木工"]},
        "liu": {"name": "刘芳", "id_number": make_id(date(1992, 3, 3), 246), "hukou_village_code": ASSIGNED,
                "consent_to_recommend": True, "consent_method": "口头"},
    }  # fmt: skip
    ids = {}
    for key, person in people.items():
        response = await client.post("/api/v1/workers", json=person, headers=broker)
        assert response.status_code == 201, response.text
        ids[key] = response.json()["id"]

    # 巫溪县's broker meets 陈大勇, who moved: refused, and told who keeps him.
    clash = await client.post(
        "/api/v1/workers",
        json={**people["chen"], "hukou_village_code": WUXI_VILLAGE},
        headers=wuxi_broker,
    )
    assert clash.status_code == 409
    assert f"劳动者编号 {ids['chen']}" in clash.json()["detail"]
    assert people["chen"]["id_number"] not in clash.text

    # The township reads both villages; the employer sees nothing.
    listing = await client.get(
        "/api/v1/workers", params={"village_code": "500103001"}, headers=township
    )
    assert listing.json()["total"] == 3
    assert (await client.get("/api/v1/workers", headers=employer)).status_code == 403
    revealed = await client.get(
        f"/api/v1/workers/{ids['liu']}", params={"reveal": "true"}, headers=township
    )
    assert revealed.json()["id_number"] == people["liu"]["id_number"]

    # The broker merges the likely duplicate.
    pairs = (await client.get("/api/v1/workers/duplicates", headers=broker)).json()
    assert [(p["a"]["id"], p["b"]["id"]) for p in pairs["items"]] == [(ids["chen"], ids["chen2"])]
    merged = await client.post(
        f"/api/v1/workers/{ids['chen']}/merge", json={"other_id": ids["chen2"]}, headers=broker
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["skills"] == ["木工"]
    history = (await client.get(f"/api/v1/workers/{ids['chen']}/history", headers=broker)).json()[
        "items"
    ]
    assert {h["origin_worker_id"] for h in history} == {ids["chen"], ids["chen2"]}
    assert (await client.get("/api/v1/workers/duplicates", headers=broker)).json()["total"] == 0
    assert (await client.get(f"/api/v1/workers/{ids['chen2']}", headers=broker)).status_code == 404

    # 刘芳 asks to be removed; counts per village still see a tombstone.
    verify = await client.post(f"/api/v1/workers/{ids['liu']}/verify", headers=broker)
    assert verify.json()["last_verified_at"] is not None
    gone = await client.request(
        "DELETE", f"/api/v1/workers/{ids['liu']}", json={"reason": "person_request"}, headers=broker
    )
    assert gone.status_code == 204
    assert (await client.get(f"/api/v1/workers/{ids['liu']}", headers=township)).status_code == 404
    assert (await client.get("/api/v1/workers", headers=broker)).json()["total"] == 1

    async with sessions() as session:
        events = (
            (
                await session.execute(
                    select(OutboxEvent)
                    .where(col(OutboxEvent.name) == "worker.changed")
                    .order_by(col(OutboxEvent.id))
                )
            )
            .scalars()
            .all()
        )
        actions = [(e.payload["worker_id"], e.payload["action"]) for e in events]
        reveals = (
            (
                await session.execute(
                    select(AuditEntry).where(col(AuditEntry.action) == "worker.reveal")
                )
            )
            .scalars()
            .all()
        )
    assert actions == [
        (ids["chen"], "create"), (ids["chen2"], "create"), (ids["liu"], "create"),
        (ids["chen2"], "merge"), (ids["chen"], "merge"), (ids["liu"], "verify"), (ids["liu"], "delete"),
    ]  # fmt: skip
    assert len(reveals) == 1
