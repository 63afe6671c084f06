"""A broker's account on the users page and the broker's status history
(marketplace/accounts/service.py ``_set_broker_duty``): disabling the account suspends
the broker with a history line; enabling undoes only that; a broker suspended on the
broker page for a reason is reinstated there, not on the users page."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.brokers.models import Broker
from tests.web.test_auth import YUZHONG, YZ_VILLAGE, api_login, bearer

Client = AsyncTestClient[Litestar]


async def _broker_id(sessions: async_sessionmaker[AsyncSession], user_id: int) -> int:
    async with sessions() as session:
        broker = (
            await session.execute(select(Broker).where(col(Broker.user_id) == user_id))
        ).scalar_one()
    assert broker.id is not None
    return broker.id


async def _history(client: Client, broker_id: int, headers: dict[str, str]) -> list[Any]:
    response = await client.get(f"/api/v1/brokers/{broker_id}/status-history", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return list(body["items"] if isinstance(body, dict) else body)


async def test_disabling_and_enabling_a_broker_account_is_in_its_status_history(
    client: Client, make_account: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await bearer(client, await make_account("district_admin", YUZHONG))
    broker = await make_account("broker", YZ_VILLAGE)
    broker_id = await _broker_id(sessions, broker.id)

    off = await client.patch(f"/api/v1/users/{broker.id}", json={"is_active": False}, headers=admin)
    assert off.status_code == 200, off.text
    shown = (await client.get(f"/api/v1/brokers/{broker_id}", headers=admin)).json()
    assert shown["status"] == "suspended"
    assert (await api_login(client, broker)).status_code == 403

    on = await client.patch(f"/api/v1/users/{broker.id}", json={"is_active": True}, headers=admin)
    assert on.status_code == 200, on.text
    assert (await client.get(f"/api/v1/brokers/{broker_id}", headers=admin)).json()[
        "status"
    ] == "active"
    assert (await api_login(client, broker)).status_code == 200
    moves = [(h["old_status"], h["new_status"]) for h in await _history(client, broker_id, admin)]
    assert ("active", "suspended") in moves
    assert ("suspended", "active") in moves


async def test_a_broker_suspended_on_the_broker_page_is_not_reinstated_from_the_users_page(
    client: Client, make_account: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await bearer(client, await make_account("district_admin", YUZHONG))
    broker = await make_account("broker", YZ_VILLAGE)
    broker_id = await _broker_id(sessions, broker.id)
    suspended = await client.post(
        f"/api/v1/brokers/{broker_id}/status",
        json={"action": "suspend", "reason": "服务对象投诉，核查中"},
        headers=admin,
    )
    assert suspended.status_code == 200, suspended.text

    refused = await client.patch(
        f"/api/v1/users/{broker.id}", json={"is_active": True}, headers=admin
    )
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["field"] == "is_active"
    assert "服务对象投诉" in body["detail"]
    assert f"/brokers/{broker_id}" in body["detail"]
    # Nothing changed: still suspended, still no login, one line of history.
    assert (await client.get(f"/api/v1/brokers/{broker_id}", headers=admin)).json()[
        "status"
    ] == "suspended"
    assert (await api_login(client, broker)).status_code == 403
    assert len(await _history(client, broker_id, admin)) == 1

    # Reinstated where it was suspended, the account is enabled with it.
    back = await client.post(
        f"/api/v1/brokers/{broker_id}/status",
        json={"action": "reinstate", "reason": "核查无误"},
        headers=admin,
    )
    assert back.status_code == 200, back.text
    assert (await api_login(client, broker)).status_code == 200


async def test_a_retired_broker_account_cannot_be_enabled_from_the_users_page(
    client: Client, make_account: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await bearer(client, await make_account("district_admin", YUZHONG))
    broker = await make_account("broker", YZ_VILLAGE)
    broker_id = await _broker_id(sessions, broker.id)
    retired = await client.post(
        f"/api/v1/brokers/{broker_id}/status",
        json={"action": "retire", "reason": "本人申请退出"},
        headers=admin,
    )
    assert retired.status_code == 200, retired.text
    refused = await client.patch(
        f"/api/v1/users/{broker.id}", json={"is_active": True}, headers=admin
    )
    assert refused.status_code == 409
    assert "退出" in refused.json()["detail"]
    assert (await api_login(client, broker)).status_code == 403
