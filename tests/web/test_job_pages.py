"""Job and organisation pages over HTTP with cookies: an employer registers (inline
error for a bad credit code), drafts a flagged job and sees why, the district admin
verifies the employer and reviews from the queue, the employer fixes and resubmits;
a published job's form only changes what needs no new review."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from marketplace.accounts.service import actor_for
from marketplace.db import unit_of_work
from marketplace.jobs import service as jobs
from marketplace.jobs.service import today_local
from marketplace.organizations.models import Organization
from tests.conftest import YUZHONG
from tests.journeys.test_jobs_journey import credit_code
from tests.marketplace.test_jobs_service import Occupations, _register, posting
from tests.web.test_pages import _csrf, page_login

Client = AsyncTestClient[Litestar]
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
JOB_ID = re.compile(r"/jobs/(\d+)\?saved=created")
ORG_ID = re.compile(r"/organizations/(\d+)\?saved=created")
START = (today_local() + timedelta(days=5)).isoformat()


def job_form(**overrides: str) -> dict[str, str]:
    data = {
        "title": "包装工",
        "description": "限男性，吃苦耐劳，入职交押金200元",
        "headcount": "6",
        "wage_min": "1500",
        "wage_max": "1800",
        "wage_unit": "month",
        "work_district": YUZHONG,
        "address": "渝中区大坪",
        "starts_on": START,
        "certificates": "",
        "board": "1",
        "contact": "刘 13800138000",
    }
    data.update(overrides)
    return data


async def post(client: Client, path: str, form_path: str, data: dict[str, str]) -> Any:
    token = await _csrf(client, form_path)
    return await client.post(path, data={**data, "_csrf_token": token}, follow_redirects=False)


class Browsers:
    """Two people on one test client: each one's cookies kept and put back (a TOTP
    code is good once, so the admin logs in only once)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.jars: dict[str, dict[str, str]] = {}

    async def login(self, name: str, account: Any) -> None:
        await page_login(self.client, account)
        self.jars[name] = dict(self.client.cookies)

    def be(self, name: str) -> Client:
        self.client.cookies.clear()
        for key, value in self.jars[name].items():
            self.client.cookies.set(key, value)
        return self.client


async def test_post_review_and_fix_a_job_on_pages(client: Client, make_account: Any) -> None:
    people = Browsers(client)
    await people.login("reviewer", await make_account("district_admin", YUZHONG))
    await people.login("employer", await make_account("employer", YUZHONG))
    first = await client.get("/jobs/new", follow_redirects=False)
    assert first.headers["location"] == "/organizations/new?first=1"
    org_data = {
        "kind": "employer",
        "name": "重庆页面测试食品有限公司",
        "credit_code": "91500103MA5U000000",
        "contact_name": "刘经理",
        "contact_phone": "13800138000",
        "address": "渝中区大坪正街 1 号",
        "region_code": YUZHONG,
    }
    bad = await post(client, "/organizations", "/organizations/new?first=1", org_data)
    assert bad.status_code == 422
    assert "校验位" in bad.text
    assert 'aria-invalid="true" aria-describedby="err-credit_code"' in bad.text
    good = await post(
        client, "/organizations", "/organizations/new", {**org_data, "credit_code": credit_code(41)}
    )
    assert good.status_code == 303, good.text
    org_match = ORG_ID.search(good.headers["location"])
    assert org_match
    org_id = org_match.group(1)

    made = await post(client, "/jobs", "/jobs/new", job_form())
    assert made.status_code == 303, made.text
    job_match = JOB_ID.search(made.headers["location"])
    assert job_match
    job_id = job_match.group(1)
    page = (await client.get(f"/jobs/{job_id}")).text
    assert "有 3 项违法内容" in page
    assert "「限男性」" in page
    assert "押金" in page
    assert "最低工资标准" in page
    refused = await post(client, f"/jobs/{job_id}/submit", f"/jobs/{job_id}", {})
    assert refused.status_code == 409
    assert "核验" in refused.text

    # The district admin verifies the employer from the pending list.
    people.be("reviewer")
    pending = (await client.get("/organizations")).text
    assert "重庆页面测试食品有限公司" in pending
    verified = await post(
        client,
        f"/organizations/{org_id}/verify",
        f"/organizations/{org_id}",
        {"decision": "approve"},
    )
    assert verified.status_code == 303

    people.be("employer")
    submitted = await post(client, f"/jobs/{job_id}/submit", f"/jobs/{job_id}", {})
    assert submitted.status_code == 303

    # The queue shows it with its flags; approving is not offered, rejecting needs a reason.
    people.be("reviewer")
    queue = (await client.get("/jobs")).text
    assert "包装工" in queue
    assert "3 项违法内容" in queue
    review_page = (await client.get(f"/jobs/{job_id}")).text
    assert 'value="approve"' not in review_page
    assert "有违法内容的岗位只能退回" in review_page
    approve = await post(
        client, f"/jobs/{job_id}/review", f"/jobs/{job_id}", {"decision": "approve"}
    )
    assert approve.status_code == 409
    assert "不能发布" in approve.text
    reject = await post(
        client,
        f"/jobs/{job_id}/review",
        f"/jobs/{job_id}",
        {"decision": "reject", "reason": "删除性别要求和押金，工资不低于最低工资"},
    )
    assert reject.status_code == 303

    # The employer sees the reason, fixes the draft and resubmits; the admin publishes.
    people.be("employer")
    assert "删除性别要求和押金" in (await client.get(f"/jobs/{job_id}")).text
    fixed = job_form(description="男女不限，吃苦耐劳，无押金", wage_min="2300", wage_max="2800")
    saved = await post(client, f"/jobs/{job_id}", f"/jobs/{job_id}/edit", fixed)
    assert saved.status_code == 303, saved.text
    await post(client, f"/jobs/{job_id}/submit", f"/jobs/{job_id}", {})
    people.be("reviewer")
    published = await post(
        client, f"/jobs/{job_id}/review", f"/jobs/{job_id}", {"decision": "approve"}
    )
    assert published.status_code == 303
    people.be("employer")

    # Published: the form posts only headcount, end date, pay day and contact.
    edit = (await client.get(f"/jobs/{job_id}/edit")).text
    assert "<fieldset disabled>" in edit
    more = await post(
        client,
        f"/jobs/{job_id}",
        f"/jobs/{job_id}/edit",
        {"headcount": "9", "contact": "刘 13800138000"},
    )
    assert more.status_code == 303, more.text
    shown = (await client.get(f"/jobs/{job_id}")).text
    assert "9 人" in shown
    assert "2300–2800 元/月" in shown


async def test_a_broker_sees_published_jobs_only(client: Client, make_account: Any) -> None:
    broker = await make_account("broker", "500103001003")
    await page_login(client, broker)
    page = await client.get("/jobs")
    assert page.status_code == 200
    assert "招聘中的岗位" in page.text
    assert (await client.get("/jobs/new", follow_redirects=False)).status_code == 403


async def test_each_listed_job_names_its_employer(
    client: Client, make_account: Any, sessions: Any
) -> None:
    """An employer's list names itself on every row; an agency's names the employer
    each job was posted for."""
    employer = await make_account("employer", YUZHONG)
    agency = await make_account("agency", YUZHONG)
    employer_org = await _register(sessions, actor_for(employer.user), "employer")
    await _register(sessions, actor_for(agency.user), "agency")
    async with unit_of_work(sessions) as session:
        for actor, title in ((employer, "叉车司机"), (agency, "焊工")):
            await jobs.create(
                session=session,
                actor=actor_for(actor.user),
                data=posting(employer_org, title=title),
                occupations=Occupations(),
            )
        name = (await session.get(Organization, employer_org)).name  # type: ignore[union-attr]
    await page_login(client, employer)
    mine = (await client.get("/jobs")).text
    assert "共 2 个岗位" in mine
    assert mine.count(f"<span>{name}</span>") == 2
    await page_login(client, agency)
    theirs = (await client.get("/jobs")).text
    assert "共 1 个岗位" in theirs
    assert "焊工" in theirs
    assert theirs.count(f"<span>{name}</span>") == 1
