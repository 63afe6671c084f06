"""A journey over HTTP: an employer of 渝中区 registers, drafts before verification,
is verified by the district admin, posts a job that is published and one that is
flagged and refused; an agency posts for the employer once authorised; published
jobs change only in what needs no new review; end dates expire jobs."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.db import unit_of_work
from marketplace.events import OutboxEvent
from marketplace.jobs import service as jobs
from marketplace.organizations.credit_code import check_char
from tests.conftest import WUXI, YUZHONG

Client = AsyncTestClient[Litestar]
TODAY = jobs.today_local()


def credit_code(serial: int, division: str = YUZHONG) -> str:
    first17 = f"91{division}{serial:08d}X"[:17]
    return first17 + check_char(first17)


def organization(kind: str, serial: int, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": f"重庆测试{'建筑有限公司' if kind == 'employer' else '人力资源有限公司'}{serial}",
        "credit_code": credit_code(serial),
        "contact_name": "王经理",
        "contact_phone": "13800138000",
        "address": "重庆市渝中区解放碑民权路 1 号",
        **extra,
    }


def job(org_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "organization_id": org_id,
        "title": "电焊工",
        "description": "会二保焊，男女不限，包吃住，无押金",
        "headcount": 5,
        "wage_min_fen": 600_000,
        "wage_max_fen": 800_000,
        "wage_unit": "month",
        "work_region_code": YUZHONG,
        "address": "渝中区化龙桥工地",
        "starts_on": (TODAY + timedelta(days=7)).isoformat(),
        "ends_on": (TODAY + timedelta(days=90)).isoformat(),
        "certificates_required": ["焊工证"],
        "age_min": 18,
        "age_max": 55,
        "board": True,
        "lodging": True,
        "social_insurance": True,
        "contact": "王经理 13800138000",
        "pay_day": 15,
        "fee_fixed_fen": 50_000,
        **extra,
    }


def refused(response: Any, status: int, field: str | None = None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    if field is not None:
        assert body.get("field") == field, body
    return str(body["detail"])


async def events(sessions: async_sessionmaker[AsyncSession], job_id: int) -> list[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxEvent)
            .where(col(OutboxEvent.name) == "job.changed")
            .order_by(col(OutboxEvent.id))
        )
        return [e.payload["action"] for e in rows.scalars() if e.payload["job_id"] == job_id]


async def test_jobs_journey(
    client: Client, login: Any, make_account: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    employer = await login(await make_account("employer", YUZHONG))
    admin = await login(await make_account("district_admin", YUZHONG))
    wuxi_admin = await login(await make_account("district_admin", WUXI))
    broker = await login(await make_account("broker", "500103001003"))

    # Registering: the credit code is checked, then the account joins its organisation.
    bad = organization("employer", 1, credit_code="91500103000000010A")
    refused(
        await client.post("/api/v1/organizations", json=bad, headers=employer), 422, "credit_code"
    )
    made = await client.post(
        "/api/v1/organizations", json=organization("employer", 1), headers=employer
    )
    assert made.status_code == 201, made.text
    org = made.json()
    assert org["status"] == "pending"
    assert org["region_code"] == YUZHONG
    again = organization("employer", 2)
    refused(await client.post("/api/v1/organizations", json=again, headers=employer), 409, "kind")

    # Unverified: drafts only. The occupation comes from the title.
    draft = await client.post("/api/v1/jobs", json=job(org["id"]), headers=employer)
    assert draft.status_code == 201, draft.text
    welder = draft.json()
    assert welder["status"] == "draft"
    assert welder["occupation_code"] == "welder"
    assert welder["flags"] == []
    submit = await client.post(f"/api/v1/jobs/{welder['id']}/submit", headers=employer)
    assert "核验" in refused(submit, 409, "organization_id")
    # Brokers do not see drafts; nor does the other district's admin.
    refused(await client.get(f"/api/v1/jobs/{welder['id']}", headers=broker), 404)

    # The district admin verifies; the other district's admin cannot.
    pending = await client.get("/api/v1/organizations", params={"status": "pending"}, headers=admin)
    assert [o["id"] for o in pending.json()["items"]] == [org["id"]]
    verify = f"/api/v1/organizations/{org['id']}/verify"
    refused(await client.post(verify, json={"approve": True}, headers=wuxi_admin), 404)
    refused(await client.post(verify, json={"approve": False}, headers=admin), 422, "reason")
    verified = await client.post(verify, json={"approve": True}, headers=admin)
    assert verified.json()["status"] == "verified"

    # Submitted, reviewed from the queue, published.
    submitted = await client.post(f"/api/v1/jobs/{welder['id']}/submit", headers=employer)
    assert submitted.json()["status"] == "pending_review"
    refused(
        await client.post(
            f"/api/v1/jobs/{welder['id']}/review", json={"approve": True}, headers=wuxi_admin
        ),
        404,
    )
    approved = await client.post(
        f"/api/v1/jobs/{welder['id']}/review", json={"approve": True}, headers=admin
    )
    assert approved.json()["status"] == "published", approved.text
    assert (await client.get(f"/api/v1/jobs/{welder['id']}", headers=broker)).status_code == 200

    # An unlawful posting is flagged before review, first in the queue, and cannot be published.
    unlawful = job(
        org["id"],
        title="普工",
        description="限男性，入职交押金300元",
        wage_min_fen=150_000,
        wage_max_fen=180_000,
    )
    flagged = (await client.post("/api/v1/jobs", json=unlawful, headers=employer)).json()
    codes = {f["code"] for f in flagged["flags"]}
    assert codes == {"gender_requirement", "worker_fee", "wage_below_minimum"}
    assert all(f["message"] for f in flagged["flags"])
    plain = (
        await client.post(
            "/api/v1/jobs",
            json=job(org["id"], title="钢筋工", description="扎钢筋"),
            headers=employer,
        )
    ).json()
    for item in (plain, flagged):
        await client.post(f"/api/v1/jobs/{item['id']}/submit", headers=employer)
    queue = (await client.get("/api/v1/jobs", params={"queue": "true"}, headers=admin)).json()
    assert [j["id"] for j in queue["items"]] == [flagged["id"], plain["id"]]
    review = f"/api/v1/jobs/{flagged['id']}/review"
    detail = refused(await client.post(review, json={"approve": True}, headers=admin), 409, "flags")
    assert "限男性" in detail
    assert "押金" in detail
    back = await client.post(
        review, json={"approve": False, "reason": "请删除性别要求和押金"}, headers=admin
    )
    assert back.json()["status"] == "draft"
    assert back.json()["status_reason"] == "请删除性别要求和押金"

    # A published job changes headcount without review, not its wage; then it closes.
    path = f"/api/v1/jobs/{welder['id']}"
    refused(
        await client.patch(path, json={"wage_min_fen": 100}, headers=employer), 409, "wage_min_fen"
    )
    more = await client.patch(path, json={"headcount": 8}, headers=employer)
    assert more.json()["headcount"] == 8
    closed = await client.patch(
        path, json={"status": "closed", "reason": "已招满"}, headers=employer
    )
    assert closed.json()["status"] == "closed"
    refused(await client.patch(path, json={"status": "filled"}, headers=employer), 409, "status")
    assert await events(sessions, welder["id"]) == [
        "create",
        "update",
        "publish",
        "update",
        "close",
    ]

    # An agency posts for the employer only with its authorisation on record.
    agency_account = await make_account("agency", YUZHONG)
    agency = await login(agency_account)
    no_licence = organization("agency", 3)
    refused(
        await client.post("/api/v1/organizations", json=no_licence, headers=agency),
        422,
        "licence_no",
    )
    agency_org = (
        await client.post(
            "/api/v1/organizations",
            json=organization("agency", 3, licence_no="（渝）人服证字〔2024〕第0103001号"),
            headers=agency,
        )
    ).json()
    await client.post(
        f"/api/v1/organizations/{agency_org['id']}/verify", json={"approve": True}, headers=admin
    )
    for_employer = (
        await client.post("/api/v1/jobs", json=job(org["id"], title="架子工"), headers=agency)
    ).json()
    assert for_employer["organization_id"] == org["id"]
    assert for_employer["agency_id"] == agency_org["id"]
    detail = refused(
        await client.post(f"/api/v1/jobs/{for_employer['id']}/submit", headers=agency), 409
    )
    assert "授权" in detail
    grant = {
        "agency_id": agency_org["id"],
        "document_ref": "授权委托书 2026-001",
        "valid_from": TODAY.isoformat(),
        "valid_until": (TODAY + timedelta(days=365)).isoformat(),
    }
    authorizations = f"/api/v1/organizations/{org['id']}/authorizations"
    refused(await client.post(authorizations, json=grant, headers=agency), 404)
    assert (await client.post(authorizations, json=grant, headers=employer)).status_code == 201
    ok = await client.post(f"/api/v1/jobs/{for_employer['id']}/submit", headers=agency)
    assert ok.json()["status"] == "pending_review", ok.text
    # The employer sees the agency's posting among its jobs; another employer does not.
    mine = (await client.get("/api/v1/jobs", headers=employer)).json()
    assert for_employer["id"] in [j["id"] for j in mine["items"]]
    stranger = await login(await make_account("employer", YUZHONG))
    refused(await client.get(f"/api/v1/jobs/{for_employer['id']}", headers=stranger), 404)

    # End dates: the day after, published and pending jobs expire, once.
    async with unit_of_work(sessions) as session:
        assert await jobs.expire_due(session, TODAY + timedelta(days=91)) == 2
    async with unit_of_work(sessions) as session:
        assert await jobs.expire_due(session, TODAY + timedelta(days=91)) == 0
    assert (await client.get(f"/api/v1/jobs/{for_employer['id']}", headers=agency)).json()[
        "status"
    ] == "expired"


async def test_bad_job_input_names_the_field_and_stores_nothing(
    client: Client, login: Any, make_account: Any
) -> None:
    employer = await login(await make_account("employer", YUZHONG))
    org = (
        await client.post(
            "/api/v1/organizations", json=organization("employer", 9), headers=employer
        )
    ).json()
    cases = [
        ({"age_min": 15}, "age_min"),
        ({"age_min": 50, "age_max": 40}, "age_max"),
        ({"wage_min_fen": 900_000}, "wage_max_fen"),
        ({"work_region_code": "440300"}, "work_location_text"),
        ({"work_region_code": "999999"}, "work_region_code"),
        ({"work_region_code": "50"}, "work_region_code"),
        ({"occupation_code": "astronaut"}, "occupation_code"),
        ({"fee_share_bp": 500}, "fee_share_bp"),
        (
            {
                "ends_on": (TODAY - timedelta(days=1)).isoformat(),
                "starts_on": (TODAY - timedelta(days=9)).isoformat(),
            },
            "ends_on",
        ),
    ]
    for extra, field in cases:
        refused(
            await client.post("/api/v1/jobs", json=job(org["id"], **extra), headers=employer),
            422,
            field,
        )
    elsewhere = job(org["id"], work_region_code="440300", work_location_text="广东省深圳市")
    assert (await client.post("/api/v1/jobs", json=elsewhere, headers=employer)).status_code == 201
    listed = (await client.get("/api/v1/jobs", headers=employer)).json()
    assert listed["total"] == 1
    other = await login(await make_account("employer", YUZHONG))
    refused(await client.post("/api/v1/jobs", json=job(org["id"]), headers=other), 403)
    assert date.fromisoformat(listed["items"][0]["starts_on"]) > TODAY


async def test_odd_input_is_refused_by_field_never_a_500(
    client: Client, login: Any, make_account: Any
) -> None:
    employer = await login(await make_account("employer", YUZHONG))
    org = (
        await client.post(
            "/api/v1/organizations", json=organization("employer", 12), headers=employer
        )
    ).json()
    draft = (await client.post("/api/v1/jobs", json=job(org["id"]), headers=employer)).json()
    path = f"/api/v1/jobs/{draft['id']}"
    for body, field in (
        ({"board": None}, "board"),
        ({"title": None}, "title"),
        ({"wage_unit": None}, "wage_unit"),
        ({"headcount": 0}, None),
        ({"certificates_required": ["证" * 40]}, "certificates_required"),
        ({"starts_on": "2026-02-30"}, None),
        ({"work_region_code": "50abc"}, "work_region_code"),
    ):
        response = await client.patch(path, json=body, headers=employer)
        refused(response, 422, field)
    cleared = await client.patch(
        path, json={"description": None, "title": "🔧电焊工' OR 1=1 --"}, headers=employer
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["description"] == ""
    long = job(org["id"], description="岗" * 5001)
    refused(await client.post("/api/v1/jobs", json=long, headers=employer), 422)
    huge = job(2**40)
    refused(await client.post("/api/v1/jobs", json=huge, headers=employer), 422)
    listed = await client.get("/api/v1/organizations", params={"q": "%_' OR 1=1"}, headers=employer)
    assert listed.status_code == 200
    wildcard = await client.get("/api/v1/organizations", params={"q": "%"}, headers=employer)
    assert wildcard.json()["total"] == 0  # % is a character to look for, not a wildcard
    assert (
        await client.get("/api/v1/jobs", params={"queue": "true"}, headers=employer)
    ).status_code == 403
