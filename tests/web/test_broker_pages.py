"""Broker pages over HTTP with cookies: the public form (inline errors, tracking code),
the status page (code + phone, history, correcting a returned application), an
officer's queue with a bulk decision, certification showing the login once, the
broker profile with a status change, and the gaps page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.brokers import applications
from marketplace.brokers.models import BrokerApplication
from marketplace.db import unit_of_work
from tests.conftest import YUZHONG
from tests.marketplace.test_broker_applications import make_id
from tests.web.test_pages import TOWNSHIP, VILLAGE, _csrf, page_login

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

Client = AsyncTestClient[Litestar]
CODE = re.compile(r'data-testid="tracking-code">([A-Z0-9]+)<')


def apply_form(n: int, **changes: str) -> dict[str, str]:
    data = {
        "name": "周晓兰",
        "id_number": make_id(n),
        "phone": f"1350000{n:04d}",
        "district_code": YUZHONG,
        "township_code": TOWNSHIP,
        "village_code": VILLAGE,
        "background": "rural_leader",
        "computer_skills": "on",
        "smartphone_skills": "on",
        "enough_time": "on",
        "not_on_public_payroll": "on",
        "note": "",
    }
    data.update(changes)
    return data


async def apply(client: Client, n: int, **changes: str) -> Any:
    client.cookies.clear()
    token = await _csrf(client, "/apply")
    return await client.post("/apply", data={**apply_form(n, **changes), "_csrf_token": token})


async def test_public_form_errors_inline_then_gives_a_tracking_code(client: Client) -> None:
    page = await client.get("/apply")
    assert "申请成为劳务经纪人" in page.text
    assert "渝中区" in page.text  # districts are offered
    picker = await client.get(
        "/apply/regions", params={"district_code": YUZHONG, "township_code": TOWNSHIP}
    )
    assert "华一坡社区" in picker.text
    bad = await apply(client, 1, not_on_public_payroll="")
    assert bad.status_code == 422
    assert "财政供养人员不能申请" in bad.text
    assert 'value="周晓兰"' in bad.text  # the form keeps what was typed
    good = await apply(client, 1)
    assert good.status_code == 200
    match = CODE.search(good.text)
    assert match
    code = match.group(1)
    token = await _csrf(client, "/apply/status")
    wrong = await client.post(
        "/apply/status",
        data={"tracking_code": code, "phone": "13500009999", "_csrf_token": token},
    )
    assert wrong.status_code == 404
    assert "没有找到" in wrong.text
    found = await client.post(
        "/apply/status", data={"tracking_code": code, "phone": "13500000001", "_csrf_token": token}
    )
    assert "待村（社区）推荐" in found.text
    assert "提交申请" in found.text  # the history
    assert make_id(1) not in found.text  # masked


async def test_officers_decide_from_queue_and_detail_until_certified(
    client: Client, make_account: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await apply(client, 2)
    await apply(client, 3)
    village = await make_account("village_officer", VILLAGE)
    await page_login(client, village)
    queue = await client.get("/broker-applications")
    assert queue.status_code == 200
    assert queue.text.count('name="ids"') == 2
    async with sessions() as session:
        ids = list(
            (
                await session.execute(
                    select(col(BrokerApplication.id)).order_by(col(BrokerApplication.id))
                )
            ).scalars()
        )
    token = await _csrf(client, "/broker-applications")
    done = await client.post(
        "/broker-applications/decisions",
        data={
            "ids": [str(i) for i in ids],
            "decision": "approve",
            "comment": "",
            "_csrf_token": token,
        },
    )
    assert done.status_code == 200
    assert done.text.count("已处理") == 2
    township = await make_account("township_officer", TOWNSHIP)
    await page_login(client, township)
    token = await _csrf(client, f"/broker-applications/{ids[0]}")
    refused = await client.post(
        f"/broker-applications/{ids[0]}/decisions",
        data={"decision": "reject", "comment": "", "_csrf_token": token},
    )
    assert refused.status_code == 422
    assert "必须填写原因" in refused.text
    returned = await client.post(
        f"/broker-applications/{ids[0]}/decisions",
        data={"decision": "return", "comment": "请写明带动就业人数", "_csrf_token": token},
        follow_redirects=False,
    )
    assert returned.status_code == 303
    # The applicant sees the reason, corrects the note and resubmits.
    async with sessions() as session:
        app = await session.get(BrokerApplication, ids[0])
        assert app is not None
        code = app.tracking_code
    client.cookies.clear()
    token = await _csrf(client, "/apply/status")
    status = await client.post(
        "/apply/status", data={"tracking_code": code, "phone": "13500000002", "_csrf_token": token}
    )
    assert "请写明带动就业人数" in status.text
    assert "重新提交" in status.text
    again = await client.post(
        "/apply/resubmit",
        data={
            **apply_form(2, note="带动本村 40 人外出务工"),
            "tracking_code": code,
            "current_phone": "13500000002",
            "_csrf_token": token,
        },
    )
    assert again.status_code == 200
    assert "已重新提交" in again.text
    assert "待乡镇（街道）审核" in again.text
    # Through the district to training, then the exam, then certification.
    await page_login(client, township)
    token = await _csrf(client, f"/broker-applications/{ids[0]}")
    await client.post(
        f"/broker-applications/{ids[0]}/decisions",
        data={"decision": "approve", "comment": "", "_csrf_token": token},
    )
    admin = await make_account("district_admin", YUZHONG)
    await page_login(client, admin)
    for _ in range(2):
        token = await _csrf(client, f"/broker-applications/{ids[0]}")
        await client.post(
            f"/broker-applications/{ids[0]}/decisions",
            data={"decision": "approve", "comment": "", "_csrf_token": token},
        )
    async with unit_of_work(sessions) as session:
        await applications.record_exam_passed(session, ids[0], attempt_id=7, score=90)
    token = await _csrf(client, f"/broker-applications/{ids[0]}")
    certified = await client.post(
        f"/broker-applications/{ids[0]}/decisions",
        data={"decision": "approve", "comment": "", "_csrf_token": token},
    )
    assert certified.status_code == 200
    assert "只显示这一次" in certified.text
    username = re.search(r'data-testid="username">([^<]+)<', certified.text)
    assert username
    assert username.group(1) == f"jj{YUZHONG}{ids[0]:06d}"
    # The record shows the login only once: reloading does not show the password.
    reloaded = await client.get(f"/broker-applications/{ids[0]}")
    assert "只显示这一次" not in reloaded.text
    async with sessions() as session:
        app = await session.get(BrokerApplication, ids[0])
        assert app is not None
        broker_id = app.broker_id
    profile = await client.get(f"/brokers/{broker_id}")
    assert "在岗" in profile.text
    token = await _csrf(client, f"/brokers/{broker_id}")
    no_reason = await client.post(
        f"/brokers/{broker_id}/status",
        data={"action": "suspend", "reason": "", "_csrf_token": token},
    )
    assert no_reason.status_code == 422
    suspended = await client.post(
        f"/brokers/{broker_id}/status",
        data={"action": "suspend", "reason": "群众投诉核查", "_csrf_token": token},
    )
    assert "状态已变更" in suspended.text
    assert "暂停" in suspended.text
    gaps = await client.get("/brokers/gaps")
    assert gaps.status_code == 200
    assert "华一坡社区" in gaps.text  # its only broker is suspended: a gap again
    listing = await client.get("/brokers", params={"region_code": VILLAGE})
    assert "周晓兰" in listing.text


async def test_pages_refuse_other_roles_and_regions(client: Client, make_account: Any) -> None:
    employer = await make_account("employer", YUZHONG)
    await page_login(client, employer)
    assert (await client.get("/broker-applications")).status_code == 403
    assert (await client.get("/brokers/gaps")).status_code == 403
    admin = await make_account("district_admin", "500238")
    await page_login(client, admin)
    assert (await client.get("/brokers/gaps", params={"district_code": YUZHONG})).status_code == 403
    assert (
        await client.get("/broker-applications", params={"region_code": YUZHONG})
    ).status_code == 403
