"""The billing API as finance uses it: pools, appropriations with Idempotency-Key and
maker-checker, postings, batches, reconciliation exports, earnings."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import subsidies
from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.events import emit
from tests.billing.conftest import approved_payload, billing_registry, make_broker
from tests.conftest import YUZHONG

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
THRESHOLD = 10_000_000


async def _pool(client: AsyncTestClient[Litestar], headers: dict[str, str]) -> int:
    response = await client.post(
        "/api/v1/fund-pools",
        json={"district_code": YUZHONG, "source": "employment_subsidy"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_appropriations_need_a_key_replay_safely_and_large_ones_a_second_user(
    client: AsyncTestClient[Litestar], make_account: Any, login: Any
) -> None:
    maker = await login(await make_account("finance", YUZHONG))
    checker = await login(await make_account("finance", YUZHONG))
    pool_id = await _pool(client, maker)
    url = f"/api/v1/fund-pools/{pool_id}/appropriations"
    body = {
        "amount_fen": 500_000,
        "document_no": "渝财社〔2026〕12号",
        "date": "2026-01-05",
        "note": "一季度",
    }
    missing = await client.post(url, json=body, headers=maker)
    assert missing.status_code == 422
    assert missing.json()["field"] == "Idempotency-Key"
    first = await client.post(url, json=body, headers={**maker, "Idempotency-Key": "a-1"})
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "posted"
    again = await client.post(url, json=body, headers={**maker, "Idempotency-Key": "a-1"})
    assert again.json()["id"] == first.json()["id"]
    changed = await client.post(
        url, json={**body, "amount_fen": 1}, headers={**maker, "Idempotency-Key": "a-1"}
    )
    assert changed.status_code == 409
    bad = await client.post(
        url, json={**body, "amount_fen": -5}, headers={**maker, "Idempotency-Key": "a-2"}
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "amount_fen"
    big = await client.post(
        url, json={**body, "amount_fen": THRESHOLD + 1}, headers={**maker, "Idempotency-Key": "a-3"}
    )
    assert big.json()["status"] == "pending"
    approve = f"/api/v1/appropriations/{big.json()['id']}/approve"
    own = await client.post(approve, headers={**maker, "Idempotency-Key": "x"})
    assert own.status_code == 403
    assert "另一位" in own.json()["detail"]
    ok = await client.post(approve, headers={**checker, "Idempotency-Key": "y"})
    assert ok.json()["status"] == "posted"
    listed = (await client.get("/api/v1/fund-pools", headers=checker)).json()["items"]
    assert listed == [
        {
            "id": pool_id,
            "district_code": YUZHONG,
            "source": "employment_subsidy",
            "source_label": "就业补助资金",
            "balance_fen": 500_000 + THRESHOLD + 1,
            "reserved_fen": 0,
            "available_fen": 500_000 + THRESHOLD + 1,
        }
    ]


async def test_reconciliation_and_earnings_trace_every_fen(
    client: AsyncTestClient[Litestar],
    make_account: Any,
    login: Any,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    maker = await login(await make_account("finance", YUZHONG))
    auditor = await login(await make_account("auditor", YUZHONG))
    pool_id = await _pool(client, maker)
    response = await client.post(
        f"/api/v1/fund-pools/{pool_id}/appropriations",
        json={"amount_fen": 20_000, "document_no": "1号", "date": "2026-01-02"},
        headers={**maker, "Idempotency-Key": "r-1"},
    )
    assert response.status_code == 201
    broker = await make_broker(sessions)
    when = datetime.now(UTC) - timedelta(days=1)
    kept, dropped = (
        approved_payload(broker, amount_fen=7_000, approved_at=when),
        approved_payload(broker, amount_fen=3_000, approved_at=when),
    )
    async with unit_of_work(sessions) as session:
        await emit(session, "task.approved", kept)
        await emit(session, "task.approved", dropped)
    await drain(sessions, billing_registry())
    async with unit_of_work(sessions) as session:
        event = await emit(
            session, "task.reversed", {**dropped, "reason": "抽查未通过", "spot_check_id": 1}
        )
        await subsidies.on_task_reversed(session, event)
    period = f"{datetime.now(UTC):%Y-%m}"
    report = (
        await client.get("/api/v1/reconciliation", params={"period": period}, headers=auditor)
    ).json()
    line = report["lines"][0]
    assert report["balanced"] is True
    assert (line["opening_fen"], line["appropriations_fen"], line["reserved_fen"]) == (
        0,
        20_000,
        10_000,
    )
    assert (line["voided_fen"], line["paid_fen"], line["closing_fen"]) == (3_000, 0, 20_000)
    assert line["reserved_closing_fen"] == 7_000
    csv_body = await client.get(
        "/api/v1/reconciliation", params={"period": period, "format": "csv"}, headers=auditor
    )
    assert csv_body.headers["content-type"].startswith("text/csv")
    assert "期初余额(分)" in csv_body.content.decode("utf-8-sig")
    xlsx = await client.get(
        "/api/v1/reconciliation", params={"period": period, "format": "xlsx"}, headers=auditor
    )
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    assert sheet.cell(2, 4).value == 20_000
    bad = await client.get("/api/v1/reconciliation", params={"period": "2026-13"}, headers=auditor)
    assert bad.status_code == 422
    assert bad.json()["field"] == "period"
    statement = (await client.get(f"/api/v1/brokers/{broker}/earnings", headers=auditor)).json()
    assert statement["subsidy_due_fen"] == 7_000
    # Newest first; both approved together, so the later record leads.
    assert [(i["submission_id"], i["status"]) for i in statement["subsidies"]] == [
        (dropped["submission_id"], "voided"),
        (kept["submission_id"], "pending"),
    ]
