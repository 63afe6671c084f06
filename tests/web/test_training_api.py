"""Training, question bank and exam routes over HTTP: the exam session token, errors
that name their field, the import report, attendance set twice, a material download."""

from __future__ import annotations

import io
from typing import Any

import openpyxl
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.crypto import DataCipher
from tests.conftest import YUZHONG
from tests.marketplace.training_helpers import (
    PHONE,
    applicant_in_training,
    load_bank,
    village_under,
)

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
Client = AsyncTestClient[Litestar]


@SQLITE_ONLY
async def test_an_applicant_sits_the_exam_with_the_token_from_code_and_phone(
    client: Client, sessions: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    await load_bank(sessions)
    _, village = await village_under(sessions, YUZHONG)
    application = await applicant_in_training(sessions, cipher, village, 1)
    missing = await client.post("/api/v1/exams", json={"tracking_code": application.tracking_code})
    assert missing.status_code == 422
    assert missing.json()["field"] == "phone"
    opened = await client.post(
        "/api/v1/exams", json={"tracking_code": application.tracking_code, "phone": PHONE}
    )
    assert opened.status_code == 201, opened.text
    paper = opened.json()
    token = paper["token"]
    assert paper["total"] == 20
    assert paper["review"] == []
    exam = f"/api/v1/exams/{paper['id']}"
    assert (await client.get(exam)).status_code == 401
    assert (await client.get(exam, headers={"X-Exam-Token": "not-the-token"})).status_code == 404
    headers = {"X-Exam-Token": token}
    first = paper["questions"][0]
    saved = await client.post(
        f"{exam}/answers",
        headers=headers,
        json={"question_id": first["question_id"], "choices": [0]},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["answered"] == 1
    off_paper = await client.post(
        f"{exam}/answers", headers=headers, json={"question_id": 999_999, "choices": [0]}
    )
    assert off_paper.status_code == 422
    assert off_paper.json()["field"] == "question_id"
    resumed = await client.get(exam, headers=headers)
    assert resumed.json()["questions"][0]["choices"] == [0]
    done = await client.post(f"{exam}/submit", headers=headers)
    assert done.status_code == 200
    result = done.json()
    assert result["status"] == "submitted"
    assert {row["category"] for row in result["breakdown"]} == {"政策法规", "业务知识", "职业道德"}
    assert all(item["explanation"] for item in result["review"])
    late = await client.post(
        f"{exam}/answers",
        headers=headers,
        json={"question_id": first["question_id"], "choices": [1]},
    )
    assert late.status_code == 409


@SQLITE_ONLY
async def test_the_city_imports_questions_and_sees_errors_by_row_and_column(
    client: Client, make_account: Any, login: Any
) -> None:
    admin = await login(await make_account("city_admin", "50"))
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["编号", "题型", "分类", "难度", "题干", "选项A", "选项B", "答案", "解析"])
    sheet.append(["API-1", "单选", "政策法规", "易", "题一", "甲", "乙", "A", "解析"])
    sheet.append(["API-2", "单选", "政策法规", "易", "题二", "甲", "乙", "", "解析"])
    out = io.BytesIO()
    book.save(out)
    files = {"file": ("bank.xlsx", out.getvalue(), "application/octet-stream")}
    refused = await client.post("/api/v1/questions/import", headers=admin, files=files)
    assert refused.status_code == 200
    report = refused.json()
    assert report["created"] == 0
    assert report["errors"] == [{"row": 3, "column": "答案", "message": "没有正确答案"}]
    listed = await client.get("/api/v1/questions", headers=admin, params={"q": "API-"})
    assert listed.json()["total"] == 0
    no_answer = await client.post(
        "/api/v1/questions",
        headers=admin,
        json={"kind": "single", "category": "政策法规", "difficulty": "easy", "stem": "题",
              "options": ["甲", "乙"], "correct": [], "explanation": "解析"},
    )  # fmt: skip
    assert no_answer.status_code == 422
    assert no_answer.json()["field"] == "correct"


@SQLITE_ONLY
async def test_attendance_and_materials_over_http(
    client: Client, sessions: async_sessionmaker[AsyncSession], make_account: Any, login: Any
) -> None:
    township, village = await village_under(sessions, YUZHONG)
    admin = await login(await make_account("district_admin", YUZHONG))
    broker = await make_account("broker", village)
    made = await client.post(
        "/api/v1/trainings",
        headers=admin,
        json={"title": "专题培训", "region_code": township, "starts_on": "2026-01-06",
              "days": 2, "mode": "online"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    training_id = made.json()["id"]
    trainees = await client.get(f"/api/v1/trainings/{training_id}/trainees", headers=admin)
    ref = next(
        t["trainee"] for t in trainees.json()["items"] if t["name"] == broker.user.display_name
    )
    body = {"entries": [{"trainee": ref, "days": 1}]}
    for _ in range(2):
        saved = await client.post(
            f"/api/v1/trainings/{training_id}/attendance", headers=admin, json=body
        )
        assert saved.status_code == 200
        assert saved.json()["items"] == [
            {"trainee": ref, "name": broker.user.display_name, "village_code": village, "days": 1}
        ]
    too_long = await client.post(
        f"/api/v1/trainings/{training_id}/attendance",
        headers=admin,
        json={"entries": [{"trainee": ref, "days": 3}]},
    )
    assert too_long.status_code == 422
    assert too_long.json()["field"] == "entries[0].days"
    report = await client.get(
        "/api/v1/trainings/compliance", headers=admin, params={"region_code": village, "year": 2026}
    )
    assert [(r["name"], r["days"], r["short_by"]) for r in report.json()["short"]] == [
        (broker.user.display_name, 1, 3)
    ]
    course = await client.post("/api/v1/training-courses", headers=admin, json={"title": "课程"})
    course_id = course.json()["id"]
    upload = await client.post(
        f"/api/v1/training-courses/{course_id}/materials/upload",
        headers=admin,
        files={"file": ("讲义.pdf", b"%PDF-1.4 x", "application/pdf")},
        data={"title": "讲义"},
    )
    assert upload.status_code == 201, upload.text
    material_id = upload.json()["id"]
    got = await client.get(
        f"/api/v1/training-courses/{course_id}/materials/{material_id}/file", headers=admin
    )
    assert got.status_code == 200
    assert got.content == b"%PDF-1.4 x"
    refused = await client.post(
        f"/api/v1/training-courses/{course_id}/materials/upload",
        headers=admin,
        files={"file": ("run.exe", b"MZ", "application/octet-stream")},
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "file"
