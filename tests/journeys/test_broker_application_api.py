"""A broker application through the HTTP API, on both databases: public submission
and tracking (code AND phone), the one-open-application rule, each officer's step
with 409 out of turn and 403 out of region, bulk decisions, certification (the login
returned once works), coverage, the broker record and its status, and the public
endpoints' rate limit."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from marketplace.brokers import applications
from marketplace.db import unit_of_work
from tests.conftest import WUXI, YUZHONG
from tests.marketplace.test_broker_applications import make_id
from web import ratelimit

Client = AsyncTestClient[Litestar]
TOWNSHIP = "500103001"
VILLAGE = "500103001003"


def body(n: int, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "陈大勇",
        "id_number": make_id(n),
        "phone": f"1370000{n:04d}",
        "village_code": VILLAGE,
        "background": "labour_broker",
        "computer_skills": True,
        "smartphone_skills": True,
        "enough_time": True,
        "not_on_public_payroll": True,
        "note": "在外务工十年，熟悉建筑行业",
    }
    data.update(changes)
    return data


async def test_application_journey_over_http(
    client: Client, make_account: Any, login: Any, sessions: Any
) -> None:
    created = await client.post("/api/v1/broker-applications", json=body(1))
    assert created.status_code == 201, created.text
    app = created.json()
    assert app["status"] == "submitted"
    assert set(app) == {"id", "tracking_code", "status"}
    again = await client.post("/api/v1/broker-applications", json=body(1, phone="13700009999"))
    assert again.status_code == 409
    assert again.json()["field"] == "id_number"
    bad = await client.post(
        "/api/v1/broker-applications", json=body(2, not_on_public_payroll=False)
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "not_on_public_payroll"

    track = {"code": app["tracking_code"], "phone": "13700000001"}
    tracked = await client.get("/api/v1/broker-applications/track", params=track)
    assert tracked.status_code == 200
    assert tracked.json()["status_label"] == "待村（社区）推荐"
    assert "*" in tracked.json()["id_number"]
    for probe in ({**track, "phone": "13700000002"}, {**track, "code": "ABCDEFGHJK"}):
        miss = await client.get("/api/v1/broker-applications/track", params=probe)
        assert miss.status_code == 404

    village = await login(await make_account("village_officer", VILLAGE))
    township = await login(await make_account("township_officer", TOWNSHIP))
    district = await login(await make_account("district_admin", YUZHONG))
    other = await login(await make_account("district_admin", WUXI))
    url = f"/api/v1/broker-applications/{app['id']}/decisions"

    async def decide(
        headers: dict[str, str], decision: str = "approve", comment: str | None = None
    ) -> Any:
        return await client.post(
            url, json={"decision": decision, "comment": comment}, headers=headers
        )

    assert (await decide(district)).status_code == 409  # out of turn
    assert (await decide(other, "reject", "越权")).status_code == 403  # out of region
    queue = await client.get(
        "/api/v1/broker-applications", params={"status": "submitted"}, headers=village
    )
    assert [a["id"] for a in queue.json()["items"]] == [app["id"]]
    assert queue.json()["items"][0]["phone"] == "137****0001"
    assert (await decide(village)).json()["application"]["status"] == "recommended"
    returned = await decide(township, "return", "请补充带动就业情况")
    assert returned.json()["application"]["status"] == "returned"
    resubmitted = await client.post(
        "/api/v1/broker-applications/track/resubmit",
        json={
            **{"tracking_code": app["tracking_code"], "phone": "13700000001"},
            "application": body(1, note="带动 35 人"),
        },
    )
    assert resubmitted.status_code == 200, resubmitted.text
    assert resubmitted.json()["status"] == "recommended"
    assert [h["action"] for h in resubmitted.json()["history"]] == [
        "submit",
        "approve",
        "return",
        "resubmit",
    ]
    assert resubmitted.json()["history"][2]["comment"] == "请补充带动就业情况"

    # Bulk: the township approves this one and another still waiting for the village.
    second = (await client.post("/api/v1/broker-applications", json=body(3))).json()
    bulk = await client.post(
        "/api/v1/broker-applications/decisions",
        json={"ids": [app["id"], second["id"]], "decision": "approve"},
        headers=township,
    )
    assert [(r["id"], r["ok"]) for r in bulk.json()] == [(app["id"], True), (second["id"], False)]
    counts = await client.get("/api/v1/broker-applications/counts", headers=district)
    assert counts.json()["township_reviewed"] == 1
    assert counts.json()["submitted"] == 1

    assert (await decide(district)).json()["application"]["status"] == "district_approved"
    assert (await decide(district)).json()["application"]["status"] == "in_training"
    assert (await decide(district)).status_code == 409  # the exam decides this step
    async with unit_of_work(sessions) as session:
        await applications.record_exam_passed(session, app["id"], attempt_id=3, score=81)
    coverage_before = (
        await client.get(f"/api/v1/regions/{VILLAGE}/coverage", headers=district)
    ).json()
    certified = await decide(district)
    assert certified.status_code == 200
    result = certified.json()
    assert result["application"]["status"] == "certified"
    credentials = result["credentials"]
    coverage_after = (
        await client.get(f"/api/v1/regions/{VILLAGE}/coverage", headers=district)
    ).json()
    assert coverage_after["brokers_active"] == coverage_before["brokers_active"] + 1
    assert coverage_after["villages_covered"] == 1

    # The new broker logs in with the login shown once and sees their own record.
    new_login = await client.post(
        "/api/v1/auth/login",
        json={"username": credentials["username"], "password": credentials["initial_password"]},
    )
    assert new_login.status_code == 200
    broker_headers = {"Authorization": f"Bearer {new_login.json()['access_token']}"}
    broker_id = result["application"]["broker_id"]
    mine = await client.get(f"/api/v1/brokers/{broker_id}", headers=broker_headers)
    assert mine.json()["broker_no"] == f"JJ{YUZHONG}{app['id']:06d}"
    assert mine.json()["villages"] == [VILLAGE]

    patched = await client.patch(
        f"/api/v1/brokers/{broker_id}",
        json={
            "key_broker": True,
            "welfare_post": True,
            "welfare_post_task_types": ["政策宣传"],
            "welfare_post_monthly_fen": 80000,
        },
        headers=district,
    )
    assert patched.json()["key_broker"] is True
    assert patched.json()["welfare_post_monthly_fen"] == 80000
    listed = await client.get("/api/v1/brokers", params={"region_code": VILLAGE}, headers=district)
    assert broker_id in [b["id"] for b in listed.json()["items"]]

    retired = await client.post(
        f"/api/v1/brokers/{broker_id}/status",
        json={"action": "retire", "reason": "外出务工，本人申请退出"},
        headers=district,
    )
    assert retired.json()["status"] == "retired"
    gone = (await client.get(f"/api/v1/regions/{VILLAGE}/coverage", headers=district)).json()
    assert gone["brokers_active"] == coverage_before["brokers_active"]
    gaps = await client.get("/api/v1/brokers/gaps", headers=district)
    short = {g["village_code"]: g for g in gaps.json()}
    assert VILLAGE in short
    assert [a["id"] for a in short[VILLAGE]["open_applications"]] == [second["id"]]
    # The retired broker's sessions ended with the account.
    assert (await client.get("/api/v1/me", headers=broker_headers)).status_code == 401


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_public_endpoints_are_rate_limited(client: Client) -> None:
    name, limit, seconds = ratelimit.TRACK
    params = {"code": "ABCDEFGHJK", "phone": "13700000001"}
    statuses = [
        (await client.get("/api/v1/broker-applications/track", params=params)).status_code
        for _ in range(limit + 1)
    ]
    assert statuses[:limit] == [404] * limit
    assert statuses[limit] == 429
    assert (
        "过于频繁"
        in (await client.get("/api/v1/broker-applications/track", params=params)).json()["detail"]
    )
    assert seconds >= 60
    assert name
