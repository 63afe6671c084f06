"""The worker register's pages over HTTP with cookies: list with masking, officers
read-only, add and edit with inline errors, 409 duplicates, reveal (audited), verify,
delete (tombstone), likely duplicates merged or dismissed, CSRF on every form."""

from __future__ import annotations

import asyncio
import re
from datetime import date
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.audit.models import AuditEntry
from marketplace.brokers.models import Broker, BrokerVillage
from marketplace.db import unit_of_work
from marketplace.workers.models import DuplicateDismissal, ImportJob, Worker
from tests.conftest import YUZHONG
from tests.marketplace.test_workers_rules import make_id
from tests.web.test_pages import OTHER_VILLAGE, VILLAGE, _csrf, _token, page_login
from web.pages.worker_forms import WorkerForm, split_list, to_create, yuan_to_fen

Client = AsyncTestClient[Litestar]

ID_A = make_id(date(1985, 4, 12), 242)
ID_B = make_id(date(1990, 7, 1), 131)
PHONE = "13912345678"
WORKER_ID = re.compile(r"/workers/(\d+)\?saved=created")


def form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "王建国",
        "id_number": ID_A,
        "phone": PHONE,
        "hukou_village_code": VILLAGE,
        "current_location_text": "广东省东莞市",
        "employment_status": "employed_away",
        "skills": "电焊、钢筋工",
        "wage_min": "250",
        "wage_max": "350.5",
        "wage_unit": "day",
        "available_from": "2026-12-01",
        "mobility": "anywhere",
        "training_wishes": "叉车",
        "consent_to_recommend": "1",
        "consent_method": "书面",
        "note": "春节后可出门",
        "cert_0_type": "焊工证",
        "cert_0_number": "T500103198504",
        "cert_0_expires_on": "2028-06-30",
    }
    data.update(overrides)
    return data


@pytest.fixture
async def broker(client: Client, make_account: Any) -> Any:
    account = await make_account("broker", VILLAGE)
    await page_login(client, account)
    return account


async def add(client: Client, **overrides: str) -> Any:
    token = await _csrf(client, "/workers/new")
    return await client.post(
        "/workers", data={**form(**overrides), "_csrf_token": token}, follow_redirects=False
    )


async def add_ok(client: Client, **overrides: str) -> int:
    response = await add(client, **overrides)
    assert response.status_code == 303, response.text
    match = WORKER_ID.search(response.headers["location"])
    assert match
    return int(match.group(1))


async def count(sessions: async_sessionmaker[AsyncSession], model: Any, *where: Any) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(query)).scalar_one())


async def post(client: Client, path: str, data: dict[str, str], page: str) -> Any:
    token = await _csrf(client, page)
    return await client.post(path, data={**data, "_csrf_token": token}, follow_redirects=False)


def test_form_helpers() -> None:
    assert split_list("电焊、钢筋工, 木工，瓦工;;") == ["电焊", "钢筋工", "木工", "瓦工"]
    assert yuan_to_fen("250", "wage_min") == 25000
    assert yuan_to_fen("250.5元", "wage_min") == 25050
    assert yuan_to_fen(" ", "wage_min") is None
    data = to_create(WorkerForm(**form()))
    assert data.wage_max_fen == 35050
    assert data.skills == ["电焊", "钢筋工"]
    assert data.certificates[0].type == "焊工证"


async def test_add_list_masked_and_detail(
    client: Client, broker: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    new = await client.get("/workers/new")
    assert new.status_code == 200
    assert "华一坡社区" in new.text
    assert " style=" not in new.text
    assert "<script>" not in new.text
    wid = await add_ok(client)
    page = await client.get("/workers")
    assert page.status_code == 200
    assert "王建国" in page.text
    assert ID_A not in page.text
    assert PHONE not in page.text
    assert ID_A[:3] + "*" * 11 + ID_A[-4:] in page.text
    assert "139****5678" in page.text
    assert "超过 12 个月未核实" in page.text  # never verified
    assert "登记劳动者" in page.text
    assert (await client.get("/workers", params={"q": "张"})).text.count("王建国") == 0
    assert (
        "王建国"
        in (await client.get("/workers", params={"employment_status": "employed_away"})).text
    )

    detail = await client.get(f"/workers/{wid}?saved=created")
    assert detail.status_code == 200
    assert "已登记" in detail.text
    assert ID_A not in detail.text
    assert PHONE not in detail.text
    assert "T500103198504" not in detail.text
    assert "250–350.5 元/天" in detail.text
    assert "变更记录" in detail.text
    assert "身份证号" in detail.text
    async with sessions() as session:
        worker = await session.get(Worker, wid)
        assert worker is not None
        assert worker.wage_min_fen == 25000
        assert worker.occupation_codes == ["welder", "rebar_worker"]
        assert worker.consent_to_recommend
        assert worker.consent_method == "书面"


async def test_list_names_the_villages_of_the_broker_and_of_each_row(
    client: Client, broker: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with unit_of_work(sessions) as session:
        row = (
            await session.execute(select(Broker).where(col(Broker.user_id) == broker.id))
        ).scalar_one()
        session.add(BrokerVillage(broker_id=row.id or 0, village_code=OTHER_VILLAGE))
    await add_ok(client)
    await add_ok(client, name="李秀英", id_number=ID_B, phone="", hukou_village_code=OTHER_VILLAGE)
    page = (await client.get("/workers")).text
    # The filter offers both villages by name; each row names its village.
    assert f'<option value="{VILLAGE}" >华一坡社区居民委员会</option>' in page
    assert f'<option value="{OTHER_VILLAGE}" >临华路社区居民委员会</option>' in page
    assert re.search(r"王建国.*?<span>华一坡社区居民委员会</span>", page, re.S)
    assert re.search(r"李秀英.*?<span>临华路社区居民委员会</span>", page, re.S)
    assert "共 2 人" in page
    only = (await client.get("/workers", params={"village_code": OTHER_VILLAGE})).text
    assert "李秀英" in only
    assert "王建国" not in only
    assert f'<option value="{OTHER_VILLAGE}" selected>临华路社区居民委员会</option>' in only


async def test_invalid_id_number_shows_field_error_and_stores_nothing(
    client: Client, broker: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bad = ID_A[:-1] + ("0" if ID_A[-1] != "0" else "1")
    response = await add(client, id_number=bad, wage_min="abc")
    assert response.status_code == 422
    assert 'id="err-wage_min"' in response.text  # amount checked before the domain
    response = await add(client, id_number=bad)
    assert response.status_code == 422
    assert 'id="err-id_number"' in response.text
    assert 'value="王建国"' in response.text  # the form keeps what was typed
    response = await add(client, wage_min="400", wage_max="300")
    assert response.status_code == 422
    assert 'id="err-wage_min"' in response.text
    assert "期望工资下限不能高于上限" in response.text
    response = await add(client, name="")
    assert response.status_code == 422
    assert 'id="err-name"' in response.text
    assert await count(sessions, Worker) == 0


async def test_duplicate_id_number_shows_conflict(client: Client, broker: Any) -> None:
    wid = await add_ok(client)
    response = await add(client, name="王建军")
    assert response.status_code == 409
    assert f"此身份证号已登记：劳动者编号 {wid}" in response.text
    assert 'id="err-id_number"' in response.text


async def test_edit_keeps_sensitive_values_left_blank(
    client: Client, broker: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    wid = await add_ok(client)
    edit = await client.get(f"/workers/{wid}/edit")
    assert edit.status_code == 200
    assert ID_A not in edit.text
    assert PHONE not in edit.text
    assert "T500103198504" not in edit.text
    assert 'value="350.5"' in edit.text
    changes = form(id_number="", phone="", name="王建国", employment_status="seeking", wage_max="")
    changes["cert_0_keep"] = "1"
    for key in ("cert_0_type", "cert_0_number", "cert_0_expires_on"):
        changes.pop(key)
    response = await post(client, f"/workers/{wid}", changes, f"/workers/{wid}/edit")
    assert response.status_code == 303, response.text
    async with sessions() as session:
        worker = await session.get(Worker, wid)
        assert worker is not None
        assert worker.employment_status == "seeking"
        assert worker.wage_max_fen is None
        assert worker.id_number_enc
        assert worker.phone_enc
        assert len(worker.certificates) == 1
    bad = await post(
        client, f"/workers/{wid}", {**changes, "wage_unit": ""}, f"/workers/{wid}/edit"
    )
    assert bad.status_code == 422
    assert 'id="err-wage_unit"' in bad.text


async def test_reveal_is_audited_and_verify_and_delete(
    client: Client, broker: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    wid = await add_ok(client)
    shown = await post(client, f"/workers/{wid}/reveal", {}, f"/workers/{wid}")
    assert shown.status_code == 200
    assert ID_A in shown.text
    assert PHONE in shown.text
    assert await count(sessions, AuditEntry, col(AuditEntry.action) == "worker.reveal") == 1

    token = await _csrf(client, f"/workers/{wid}")
    verified = await client.post(
        f"/workers/{wid}/verify", headers={"HX-Request": "true", "x-csrftoken": token}
    )
    assert verified.status_code == 200
    assert 'id="verify-box"' in verified.text
    assert "从未核实" not in verified.text
    assert "超过 12 个月未核实" not in (await client.get("/workers")).text

    confirm = await client.get(f"/workers/{wid}/delete")
    assert "不能恢复" in confirm.text
    no_reason = await post(client, f"/workers/{wid}/delete", {}, f"/workers/{wid}/delete")
    assert no_reason.status_code == 422
    gone = await post(
        client, f"/workers/{wid}/delete", {"reason": "person_request"}, f"/workers/{wid}/delete"
    )
    assert gone.status_code == 303
    async with sessions() as session:
        worker = await session.get(Worker, wid)
        assert worker is not None
        assert worker.deleted_reason == "person_request"
        assert worker.name is None
        assert worker.id_number_enc is None
    assert (await client.get(f"/workers/{wid}")).status_code == 404


async def test_officer_reads_region_without_buttons(
    client: Client, broker: Any, make_account: Any
) -> None:
    wid = await add_ok(client)
    officer = await make_account("district_admin", YUZHONG)
    await page_login(client, officer)
    listing = await client.get("/workers")
    assert listing.status_code == 200
    assert "王建国" in listing.text
    assert "登记劳动者" not in listing.text
    detail = await client.get(f"/workers/{wid}")
    assert "显示完整号码" in detail.text
    assert f"/workers/{wid}/edit" not in detail.text
    assert "已与本人核实" not in detail.text
    assert (await client.get("/workers/new")).status_code == 403
    assert (await client.get(f"/workers/{wid}/edit")).status_code == 403
    refused = await post(client, f"/workers/{wid}/verify", {}, "/workers")
    assert refused.status_code == 403
    employer = await make_account("employer", YUZHONG)
    await page_login(client, employer)
    assert (await client.get("/workers")).status_code == 403


async def test_duplicates_merge_and_dismiss(
    client: Client, broker: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a = await add_ok(client)
    b = await add_ok(client, id_number=ID_B, name="王建囯")  # same phone, one slip
    after = await client.get(f"/workers/{b}?saved=created")
    assert "可能与下面的记录是同一个人" in after.text
    page = await client.get("/workers/duplicates")
    assert "手机号相同、姓名相近" in page.text
    dismissed = await post(
        client, "/workers/duplicates/dismiss", {"a": str(a), "b": str(b)}, "/workers/duplicates"
    )
    assert dismissed.status_code == 303
    assert await count(sessions, DuplicateDismissal) == 1
    assert "没有疑似重复的记录" in (await client.get("/workers/duplicates")).text

    c = await add_ok(
        client, id_number=make_id(date(1985, 4, 12), 353), phone="13800000000", name="李四"
    )
    assert "同村且出生日期相同" in (await client.get("/workers/duplicates")).text
    merged = await post(client, f"/workers/{a}/merge", {"other_id": str(c)}, "/workers/duplicates")
    assert merged.status_code == 303
    assert merged.headers["location"] == f"/workers/{a}?saved=merged"
    async with sessions() as session:
        other = await session.get(Worker, c)
        assert other is not None
        assert other.merged_into_id == a


async def test_forms_need_the_csrf_token(client: Client, broker: Any) -> None:
    response = await client.post("/workers", data=form(), follow_redirects=False)
    assert response.status_code == 403
    assert (await client.post("/workers/1/verify")).status_code == 403


async def finished(client: Client, job_url: str) -> str:
    """Poll the job's panel as the page does until the import has ended."""
    for _ in range(200):
        panel = await client.get(job_url + "/progress")
        assert panel.status_code == 200, panel.text
        if "hx-trigger" not in panel.text:
            return panel.text
        await asyncio.sleep(0.05)
    raise AssertionError("the import did not finish")


async def test_import_page_reports_created_and_refused_rows(
    client: Client, broker: Any, make_account: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    page = await client.get("/workers/import")
    assert page.status_code == 200
    assert "/workers/import-template?file_format=xlsx" in page.text
    template = await client.get("/workers/import-template", params={"file_format": "csv"})
    assert template.status_code == 200
    assert "身份证号" in template.content.decode("utf-8-sig")

    bad = ID_B[:-1] + ("0" if ID_B[-1] != "0" else "1")
    csv = (
        "姓名,身份证号,手机号,户籍村代码,就业状态\n"
        f"王建国,{ID_A},{PHONE},{VILLAGE},外出务工\n"
        f"李四,{bad},,{VILLAGE},未知\n"
    )
    token = _token(page.text)
    started = await client.post(
        "/workers/import",
        files={"file": ("workers.csv", csv.encode(), "text/csv")},
        data={"_csrf_token": token},
        headers={"HX-Request": "true"},
    )
    # The import runs in the background; the page shows its progress and polls it.
    assert started.status_code == 200, started.text
    job_url = started.headers["HX-Push-Url"]
    assert re.fullmatch(r"/workers/import/jobs/\d+", job_url)
    assert "已处理" in started.text
    assert "/ 2 行" in started.text  # the rows counted before the import began
    done = await finished(client, job_url)
    assert "导入结果：workers.csv" in done
    assert "第 3 行" in done
    assert await count(sessions, Worker) == 1
    # Reloading the import page keeps showing the latest import, and its own URL too.
    again = await client.get("/workers/import")
    assert "导入结果：workers.csv" in again.text
    assert "第 3 行" in again.text
    assert "第 3 行" in (await client.get(job_url)).text
    # The same file again (a plain form post is redirected to the job): nothing changes.
    redirected = await client.post(
        "/workers/import",
        files={"file": ("workers.csv", csv.encode(), "text/csv")},
        data={"_csrf_token": token},
        follow_redirects=False,
    )
    assert redirected.status_code == 303
    done = await finished(client, redirected.headers["location"])
    assert re.search(r"无变化</span><span class=\"stat-value\">1<", done)
    assert await count(sessions, Worker) == 1

    # Another broker's job is not found.
    other = await make_account("broker", VILLAGE)
    await page_login(client, other)
    assert (await client.get(job_url)).status_code == 404
    assert (await client.get(job_url + "/progress")).status_code == 404
    await page_login(client, broker)
    token = _token((await client.get("/workers/import")).text)

    # While an import of the broker runs, another upload is refused on the form (HTMX
    # swaps 422), above the running job's progress.
    async with sessions() as session:
        keeper = (
            await session.execute(select(Broker).where(col(Broker.user_id) == broker.id))
        ).scalar_one()
        session.add(
            ImportJob(broker_id=keeper.id, filename="big.xlsx", file_format="xlsx", rows_total=9000)
        )
        await session.commit()
    busy = await client.post(
        "/workers/import",
        files={"file": ("workers.csv", csv.encode(), "text/csv")},
        data={"_csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert busy.status_code == 422
    assert "您已有一个导入正在进行（big.xlsx）" in busy.text
    assert "正在导入：big.xlsx" in busy.text
    assert "已处理 <strong>0</strong> / 9000 行" in busy.text

    empty = await client.post(
        "/workers/import",
        files={"file": ("workers.csv", b"", "text/csv")},
        data={"_csrf_token": token},
    )
    assert empty.status_code == 422
    assert 'id="err-file"' in empty.text
    wrong = await client.post(
        "/workers/import",
        files={"file": ("workers.pdf", b"x", "application/pdf")},
        data={"_csrf_token": token},
    )
    assert wrong.status_code == 422
    assert "只支持 .csv 和 .xlsx 文件" in wrong.text
    # Without the token: refused (sent as a plain form: Litestar's CSRF check leaves a
    # refused multipart upload's temporary file for the garbage collector).
    assert (await client.post("/workers/import", data={"file": "x"})).status_code == 403

    officer = await make_account("district_admin", YUZHONG)
    await page_login(client, officer)
    assert (await client.get("/workers/import")).status_code == 403
