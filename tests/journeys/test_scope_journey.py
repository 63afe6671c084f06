"""A journey over HTTP: people of 渝中区 and 巫溪县 log in, each in their role, and
each sees only what their scope allows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyotp
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import WUXI, YUZHONG

Client = AsyncTestClient[Litestar]
DISTRICTS = {"渝中区": YUZHONG, "巫溪县": WUXI}
TOWNSHIP = {YUZHONG: "500103001", WUXI: "500238001"}
VILLAGE = {YUZHONG: "500103001003", WUXI: "500238001001"}


@dataclass
class Person:
    role: str
    region: str
    district: str
    headers: dict[str, str]


def region_for(role: str, district: str) -> str:
    if role == "township_officer":
        return TOWNSHIP[district]
    if role in ("village_officer", "broker"):
        return VILLAGE[district]
    return district


async def log_in(client: Client, make_account: Any, role: str, district: str) -> Person:
    region = "50" if role == "city_admin" else region_for(role, district)
    account = await make_account(role, region)
    body = {"username": account.username, "password": account.password}
    if account.totp_secret:
        body["otp"] = pyotp.TOTP(account.totp_secret).now()
    response = await client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert (me["role"], me["region_code"]) == (role, region)
    return Person(role, region, district, headers)


DISTRICT_ROLES = (
    "district_admin",
    "township_officer",
    "village_officer",
    "broker",
    "employer",
    "agency",
    "finance",
    "auditor",
)
STAFF = {"district_admin", "township_officer", "village_officer", "finance", "auditor"}


async def test_everyone_sees_only_their_own_scope(client: Client, make_account: Any) -> None:
    city = await log_in(client, make_account, "city_admin", YUZHONG)
    people = [
        await log_in(client, make_account, role, district)
        for district in DISTRICTS.values()
        for role in DISTRICT_ROLES
    ]

    # Each district admin sets a population in its own district: audited writes there.
    for admin in (p for p in people if p.role == "district_admin"):
        other = WUXI if admin.district == YUZHONG else YUZHONG
        own = await client.patch(
            f"/api/v1/regions/{VILLAGE[admin.district]}",
            json={"population": 5000},
            headers=admin.headers,
        )
        assert own.status_code == 200, own.text
        assert own.json()["required_brokers"] == 2
        assert (
            await client.patch(
                f"/api/v1/regions/{VILLAGE[other]}", json={"population": 1}, headers=admin.headers
            )
        ).status_code == 403

    for person in people:
        other = WUXI if person.district == YUZHONG else YUZHONG

        async def get(url: str, person: Person = person, **params: Any) -> Any:
            return await client.get(url, params=params, headers=person.headers)

        # The region tree is reference data: everyone may read all of it.
        for district in (person.district, other):
            region = await get(f"/api/v1/regions/{district}")
            assert region.status_code == 200
            assert region.json()["level"] == "district"
        children = (await get("/api/v1/regions", parent_code=other)).json()
        assert children["total"] > 0

        # Coverage: staff see their own scope only; the market roles see none.
        own_cov = await get(f"/api/v1/regions/{person.region}/coverage")
        other_cov = await get(f"/api/v1/regions/{other}/coverage")
        assert own_cov.status_code == (200 if person.role in STAFF else 403), person
        assert other_cov.status_code == 403, person

        # Accounts: only a district admin lists them, and only its own district's.
        users = await get("/api/v1/users", limit=500)
        if person.role == "district_admin":
            assert users.status_code == 200
            codes = {u["region_code"] for u in users.json()["items"]}
            assert codes
            assert all(code.startswith(person.district) for code in codes)
            # Every account of the district is there: its eight people.
            assert users.json()["total"] == len(DISTRICT_ROLES)
        else:
            assert users.status_code == 403, person

        # The audit log: auditors only, and only their district's entries.
        audit = await get("/api/v1/audit", limit=500)
        if person.role == "auditor":
            assert audit.status_code == 200
            entries = audit.json()["items"]
            actions = {e["action"] for e in entries}
            assert {"auth.login", "region.set_population"} <= actions
            assert all((e["region_code"] or "").startswith(person.district) for e in entries)
        else:
            assert audit.status_code == 403, person

    # The city admin sees both districts, everywhere.
    users = (await client.get("/api/v1/users", params={"limit": 500}, headers=city.headers)).json()
    assert {u["region_code"][:6] for u in users["items"]} >= {YUZHONG, WUXI}
    for district in DISTRICTS.values():
        coverage = await client.get(f"/api/v1/regions/{district}/coverage", headers=city.headers)
        assert coverage.status_code == 200
        assert coverage.json()["brokers_active"] == 1  # the one broker logged in there
