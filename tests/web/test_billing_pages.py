"""Finance and broker pages with their forms (CSRF, amounts in yuan, maker-checker)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import YUZHONG
from tests.web.test_pages import VILLAGE, Client, _csrf, page_login

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def _post(client: Client, page: str, path: str, data: dict[str, str]) -> Any:
    token = await _csrf(client, page)
    return await client.post(path, data={**data, "_csrf_token": token}, follow_redirects=False)


async def test_finance_opens_a_pool_appropriates_in_yuan_and_a_colleague_approves(
    client: Client, make_account: Any
) -> None:
    maker = await make_account("finance", YUZHONG)
    checker = await make_account("finance", YUZHONG)
    await page_login(client, maker)
    opened = await _post(
        client,
        "/finance",
        "/finance/pools",
        {"district_code": YUZHONG, "source": "employment_subsidy"},
    )
    assert opened.status_code == 303
    page = (await client.get("/finance")).text
    assert "就业补助资金" in page
    pool_url = page.split('action="/finance/pools/')[1].split('"')[0]
    form = {"date": "2026-03-02", "document_no": "渝财社〔2026〕9号", "form_key": "k1"}
    bad = await _post(
        client, "/finance", f"/finance/pools/{pool_url}", {**form, "amount_yuan": "12.345"}
    )
    assert bad.status_code == 422
    assert "最多两位小数" in bad.text
    ok = await _post(
        client, "/finance", f"/finance/pools/{pool_url}", {**form, "amount_yuan": "1,234.50"}
    )
    assert ok.status_code == 303
    big = await _post(
        client,
        "/finance",
        f"/finance/pools/{pool_url}",
        {**form, "form_key": "k2", "amount_yuan": "200000"},
    )
    assert big.status_code == 303
    page = (await client.get("/finance")).text
    assert "¥1,234.50" in page
    assert "拨款 #" in page  # waiting for a second user
    approval = page.split('action="/finance/appropriations/')[1].split('"')[0]
    own = await _post(
        client, "/finance", f"/finance/appropriations/{approval}", {"decision": "approve"}
    )
    assert own.status_code == 403
    assert "另一位财务人员" in own.text
    await page_login(client, checker)
    done = await _post(
        client, "/finance", f"/finance/appropriations/{approval}", {"decision": "approve"}
    )
    assert done.status_code == 303
    page = (await client.get("/finance")).text
    assert "¥201,234.50" in page
    assert "没有待审核的拨款或调剂" in page


async def test_broker_enters_a_bank_account_and_sees_it_masked(
    client: Client, make_account: Any
) -> None:
    broker = await make_account("broker", VILLAGE)
    await page_login(client, broker)
    page = await client.get("/earnings")
    assert page.status_code == 200
    assert "我的收入" in page.text
    short = await _post(
        client, "/earnings", "/earnings/bank",
        {"account_name": "王五", "bank_name": "重庆农商行", "account_no": "1234"},
    )  # fmt: skip
    assert short.status_code == 422
    assert "10–30 位数字" in short.text
    saved = await _post(
        client, "/earnings", "/earnings/bank",
        {"account_name": "王五", "bank_name": "重庆农商行", "account_no": "6221 0000 1111 2222 333"},
    )  # fmt: skip
    assert saved.status_code == 303
    page = await client.get("/earnings")
    assert "**** **** **** 2333" in page.text
    assert "6221000011112222333" not in page.text
