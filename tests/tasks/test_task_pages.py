"""Task pages over HTTP with cookies: publishing with an error beside its field and in
bulk, the broker's lists, submitting from the page (a bad file is refused in the form),
the queue's bulk approval, and a spot check drawn and recorded from the pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import YUZHONG
from tests.tasks.support import TOWNSHIP, VILLAGE, jpeg
from tests.web.test_pages import _csrf, page_login

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _local(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days) + timedelta(hours=8)).strftime(
        "%Y-%m-%dT%H:%M"
    )


async def test_officer_and_broker_pages(client: Any, make_account: Any) -> None:
    admin = await make_account("district_admin", YUZHONG)
    broker = await make_account("broker", VILLAGE)

    await page_login(client, admin)
    token = await _csrf(client, "/tasks/new")
    bad = await client.post(
        "/tasks/new",
        data={
            "task_type": "policy_outreach",
            "region_code": VILLAGE,
            "quantity": "2",
            "deadline": "",
            "_csrf_token": token,
        },
    )
    assert bad.status_code == 422
    assert 'id="err-deadline"' in bad.text
    assert 'value="' + VILLAGE + '"' in bad.text  # what was typed is kept
    one = await client.post(
        "/tasks/new",
        data={
            "task_type": "policy_outreach",
            "region_code": VILLAGE,
            "quantity": "2",
            "deadline": _local(5),
            "instructions": "宣讲",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert one.status_code == 303
    task_path = one.headers["location"].split("?")[0]
    bulk = await client.post(
        "/tasks/new",
        data={
            "task_type": "hr_database_update",
            "region_code": TOWNSHIP,
            "quantity": "3",
            "deadline": _local(9),
            "each_village": "1",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert bulk.status_code == 303
    listed = await client.get(bulk.headers["location"])
    assert "个村（社区）各发布一条任务" in listed.text

    await page_login(client, broker)
    near = await client.get("/tasks")
    assert "政策咨询与宣传" in near.text
    assert "人力资源数据库更新" in near.text
    token = await _csrf(client, task_path)
    claimed = await client.post(
        f"{task_path}/claim", data={"_csrf_token": token}, follow_redirects=False
    )
    assert claimed.status_code == 303
    page = await client.get(task_path)
    assert 'capture="environment"' in page.text
    assert 'accept="image/*,application/pdf"' in page.text
    refused = await client.post(
        f"{task_path}/submit",
        data={"quantity": "2", "upload_id": "p1", "_csrf_token": token},
        files=[("files", ("照片.jpg", b"MZ\x90\x00not an image", "image/jpeg"))],
    )
    assert refused.status_code == 422
    assert 'id="err-files"' in refused.text
    sent = await client.post(
        f"{task_path}/submit",
        data={"quantity": "2", "upload_id": "p2", "_csrf_token": token},
        files=[("files", ("照片.jpg", jpeg(), "image/jpeg"))],
        follow_redirects=False,
    )
    assert sent.status_code == 303
    mine = await client.get("/tasks?tab=mine")
    assert "已提交" in mine.text

    await page_login(client, admin)
    queue = await client.get("/tasks/review")
    assert "共 1 条待审核" in queue.text
    token = await _csrf(client, "/tasks/review")
    task_id = task_path.rsplit("/", 1)[1]
    approved = await client.post(
        "/tasks/review/bulk", data={"task_ids": task_id, "_csrf_token": token}
    )
    assert "批量通过 1 条" in approved.text
    assert "共 0 条待审核" in approved.text
    detail = await client.get(task_path)
    assert "已通过" in detail.text
    assert "位置 29.56000, 106.57000" in detail.text  # EXIF for the reviewer

    token = await _csrf(client, "/spot-checks")
    period = (datetime.now(UTC) + timedelta(days=5, hours=8)).strftime("%Y-%m")
    empty = await client.post(
        "/spot-checks",
        data={
            "region_code": YUZHONG,
            "period": "2020-01",
            "sample_size": "1",
            "_csrf_token": token,
        },
    )
    assert empty.status_code == 409
    assert "没有可抽查" in empty.text
    drawn = await client.post(
        "/spot-checks",
        data={
            "region_code": YUZHONG,
            "period": period,
            "sample_size": "1",
            "seed": "5",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert drawn.status_code == 303, drawn.text
    check_path = drawn.headers["location"]
    no_notes = await client.post(
        f"{check_path}/results", data={"task_id": task_id, "result": "fail", "_csrf_token": token}
    )
    assert no_notes.status_code == 422
    assert "请写明核查情况" in no_notes.text
    failed = await client.post(
        f"{check_path}/results",
        data={"task_id": task_id, "result": "fail", "notes": "回访未举办", "_csrf_token": token},
        follow_redirects=False,
    )
    assert failed.status_code == 303
    shown = await client.get(check_path)
    assert "复查不通过" in shown.text
    assert "回访未举办" in shown.text


async def test_rates_and_district_settings_pages(client: Any, make_account: Any) -> None:
    city = await make_account("city_admin", "50")
    admin = await make_account("district_admin", YUZHONG)
    await page_login(client, city)
    token = await _csrf(client, "/tasks/types")
    bad = await client.post(
        "/tasks/types/policy_outreach", data={"rate_yuan": "两百", "_csrf_token": token}
    )
    assert bad.status_code == 422
    assert "请填写补贴标准" in bad.text
    ok = await client.post(
        "/tasks/types/policy_outreach",
        data={"rate_yuan": "250.50", "_csrf_token": token},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    shown = await client.get("/tasks/types")
    assert "250.50 元/场" in shown.text
    assert "第 2 版" in shown.text
    assert "第 1 版 200.00 元" in shown.text

    await page_login(client, admin)
    page = await client.get("/tasks/types")
    assert "保存为新版本" not in page.text  # rates are the city's
    token = await _csrf(client, "/tasks/types")
    refused = await client.post(
        "/tasks/types/policy_outreach", data={"rate_yuan": "1", "_csrf_token": token}
    )
    assert refused.status_code == 403
    saved = await client.post(
        "/tasks/settings",
        data={"township_check": "1", "claim_limit": "3", "_csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    again = await client.get("/tasks/types")
    assert 'name="township_check" value="1" checked' in again.text
    assert 'value="3"' in again.text
