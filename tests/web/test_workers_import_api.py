"""Import, export and the template over HTTP: partial errors, ownership, size limit,
masking, audit and the region export limit."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import openpyxl
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.audit.models import AuditEntry
from marketplace.workers import exporting, importing
from marketplace.workers.models import Worker
from tests.conftest import YUZHONG
from tests.marketplace.test_workers_rules import make_id
from tests.web.test_workers_api import body, first_village

HEADER = [
    "姓名",
    "身份证号",
    "手机号",
    "户籍村代码",
    "期望工资下限（分）",
    "期望工资上限（分）",
    "计薪单位",
]
ID_1 = make_id(date(1980, 3, 3), 111)
ID_2 = make_id(date(1982, 6, 6), 113)


def csv_file(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, *rows])
    return out.getvalue().encode()


@pytest.fixture
async def scene(
    sessions: async_sessionmaker[AsyncSession], make_account: Any, login: Any
) -> dict[str, Any]:
    own = await first_village(sessions, YUZHONG)
    accounts = {
        "broker": await make_account("broker", own),
        "broker2": await make_account("broker", own),
        "district": await make_account("district_admin", YUZHONG),
        "township": await make_account("township_officer", own[:9]),
    }
    return {"own": own, "h": {k: await login(a) for k, a in accounts.items()}}


async def upload(
    client: AsyncTestClient[Litestar], headers: dict[str, str], data: bytes, name: str = "w.csv"
) -> Any:
    return await client.post(
        "/api/v1/workers/import", files={"file": (name, data)}, headers=headers
    )


async def audit_actions(sessions: async_sessionmaker[AsyncSession], action: str) -> list[Any]:
    async with sessions() as session:
        rows = await session.execute(select(AuditEntry).where(col(AuditEntry.action) == action))
        return list(rows.scalars())


async def test_partial_errors_idempotent_reimport_and_other_brokers_rows(
    client: AsyncTestClient[Litestar],
    scene: dict[str, Any],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    v, h = scene["own"], scene["h"]
    rows = [
        ["王建国", ID_1, "13912345678", v, "20000", "30000", "天"],
        ["李四", ID_1[:-1] + ("0" if ID_1[-1] != "0" else "1"), "", v, "", "", ""],
        ["赵六", ID_2, "1391234", v, "", "", ""],
        ["钱七", make_id(date(1990, 1, 1), 115), "", v, "40000", "30000", "天"],
        ["孙八", make_id(date(1991, 1, 1), 117), "", "500103", "", "", ""],
    ]
    first = await upload(client, h["broker"], csv_file(rows))
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["created"], report["updated"], report["unchanged"]) == (1, 0, 0)
    assert [(e["row"], e["column"]) for e in report["errors"]] == [
        (3, "身份证号"),
        (4, "手机号"),
        (5, "期望工资下限（分）"),
        (6, "户籍村代码"),
    ]
    assert "校验位" in report["errors"][0]["message"]
    assert "下限不能高于上限" in report["errors"][2]["message"]
    async with sessions() as session:
        assert len((await session.execute(select(Worker))).scalars().all()) == 1

    again = (await upload(client, h["broker"], csv_file(rows[:1]))).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 1)
    changed = [["王建国", ID_1, "13912345679", v, "20000", "30000", "天"]]
    assert (await upload(client, h["broker"], csv_file(changed))).json()["updated"] == 1
    # The same person kept by another broker: an error row naming the keeper, no change.
    other = (await upload(client, h["broker2"], csv_file(rows[:1]))).json()
    assert other["updated"] == 0
    assert other["errors"][0]["column"] == "身份证号"
    assert "由经纪人" in other["errors"][0]["message"]
    assert "不能由您导入修改" in other["errors"][0]["message"]
    assert await audit_actions(sessions, "worker.import")


async def test_officers_cannot_import_and_bad_uploads(
    client: AsyncTestClient[Litestar], scene: dict[str, Any]
) -> None:
    h = scene["h"]
    data = csv_file([["王建国", ID_1, "", scene["own"], "", "", ""]])
    for who in ("district", "township"):
        refused = await upload(client, h[who], data)
        assert refused.status_code == 403, refused.text
    missing = await upload(client, h["broker"], "姓名\n张三\n".encode())
    assert missing.status_code == 422
    assert "缺少必填列" in missing.json()["detail"]
    empty = await upload(client, h["broker"], b"")
    assert empty.status_code == 422
    assert "空" in empty.json()["detail"]
    wrong = await upload(client, h["broker"], b"x", name="w.pdf")
    assert wrong.status_code == 422


async def test_oversized_upload_refused(
    client: AsyncTestClient[Litestar], scene: dict[str, Any]
) -> None:
    big = b"a" * (importing.MAX_UPLOAD_BYTES + 128 * 1024)
    response = await upload(client, scene["h"]["broker"], big)
    assert response.status_code == 413
    assert "过大" in response.json()["detail"]


async def test_template_downloads_and_export_reimports(
    client: AsyncTestClient[Litestar],
    scene: dict[str, Any],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    h = scene["h"]
    csv_template = await client.get(
        "/api/v1/workers/import-template", params={"format": "csv"}, headers=h["broker"]
    )
    assert csv_template.status_code == 200
    assert csv_template.content.decode("utf-8-sig").startswith("姓名,身份证号,手机号,户籍村代码")
    xlsx = await client.get("/api/v1/workers/import-template", headers=h["broker"])
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    assert [c.value for c in sheet[1]][:4] == ["姓名", "身份证号", "手机号", "户籍村代码"]

    created = await client.post("/api/v1/workers", json=body(scene["own"]), headers=h["broker"])
    assert created.status_code == 201
    masked = await client.get(
        "/api/v1/workers/export", params={"format": "csv"}, headers=h["broker"]
    )
    text = masked.content.decode("utf-8-sig")
    assert masked.status_code == 200
    assert body(scene["own"])["id_number"] not in text
    assert "13912345678" not in text
    assert "139****5678" in text
    for fmt in ("csv", "xlsx"):
        revealed = await client.get(
            "/api/v1/workers/export", params={"format": fmt, "reveal": "true"}, headers=h["broker"]
        )
        assert revealed.status_code == 200
        again = (await upload(client, h["broker"], revealed.content, name=f"w.{fmt}")).json()
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 1), again
    officer = await client.get(
        "/api/v1/workers/export", params={"reveal": "true"}, headers=h["district"]
    )
    assert officer.status_code == 403
    entries = await audit_actions(sessions, "worker.export")
    assert [e.detail["rows"] for e in entries] == [1, 1, 1]
    assert all("13912345678" not in str(e.detail) for e in entries)


async def test_region_export_over_limit_needs_district_admin(
    client: AsyncTestClient[Litestar],
    scene: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = scene["h"]
    for i, serial in enumerate((121, 123)):
        made = await client.post(
            "/api/v1/workers",
            json=body(scene["own"], id_number=make_id(date(1980, 1, 1 + i), serial)),
            headers=h["broker"],
        )
        assert made.status_code == 201
    monkeypatch.setattr(exporting, "REGION_EXPORT_LIMIT", 1)
    refused = await client.get("/api/v1/workers/export", headers=h["township"])
    assert refused.status_code == 403
    assert "区县管理员" in refused.json()["detail"]
    allowed = await client.get("/api/v1/workers/export", headers=h["district"])
    assert allowed.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(allowed.content)).worksheets[0].values)
    assert len(rows) == 3
    assert "*" in str(rows[1][1])
    broker = await client.get("/api/v1/workers/export", headers=h["broker"])
    assert broker.status_code == 200  # a broker's own register has no limit
