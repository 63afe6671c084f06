"""Finance and broker pages with their forms (CSRF, amounts in yuan, maker-checker:
appropriations above the threshold and transfers between pools)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from tests.conftest import YUZHONG
from tests.web.test_pages import VILLAGE, Client, _csrf, page_login


async def _post(client: Client, page: str, path: str, data: dict[str, str]) -> Any:
    token = await _csrf(client, page)
    return await client.post(path, data={**data, "_csrf_token": token}, follow_redirects=False)


def _pool_ids(page: str) -> dict[str, str]:
    """The appropriation form's pool choices: {label: id}."""
    select = page.split('<select name="pool_id"')[1].split("</select>")[0]
    return {label: value for value, label in re.findall(r'value="(\d+)"[^>]*>([^<]+)<', select)}


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
    pool_id = _pool_ids(page)["渝中区·就业补助资金"]
    form = {
        "pool_id": pool_id,
        "date": "2026-03-02",
        "document_no": "渝财社〔2026〕9号",
        "form_key": "k1",
    }
    bad = await _post(
        client, "/finance", "/finance/appropriations", {**form, "amount_yuan": "12.345"}
    )
    assert bad.status_code == 422
    assert "最多两位小数" in bad.text
    assert 'value="12.345"' not in bad.text  # the appropriation form is not the transfer's
    ok = await _post(
        client, "/finance", "/finance/appropriations", {**form, "amount_yuan": "1,234.50"}
    )
    assert ok.status_code == 303
    big = await _post(
        client,
        "/finance",
        "/finance/appropriations",
        {**form, "form_key": "k2", "amount_yuan": "200000"},
    )
    assert big.status_code == 303
    page = (await client.get("/finance")).text
    assert "¥1,234.50" in page
    assert "拨款 #" in page  # waiting for a second user, and saying why
    assert "超过审核线 ¥100,000.00，需另一位财务人员审核" in page
    assert "由您提交，待他人审核" in page  # no approve button for the maker
    approval = page.split('id="appropriation-')[1].split('"')[0]
    assert f'action="/finance/appropriations/{approval}/approve"' not in page
    own = await _post(
        client, "/finance", f"/finance/appropriations/{approval}/approve", {"decision": "approve"}
    )
    assert own.status_code == 403
    assert "需由另一位财务人员审核：不能审核自己提交的申请" in own.text
    await page_login(client, checker)
    page = (await client.get("/finance")).text
    assert f'action="/finance/appropriations/{approval}/approve"' in page
    done = await _post(
        client, "/finance", f"/finance/appropriations/{approval}/approve", {"decision": "approve"}
    )
    assert done.status_code == 303
    page = (await client.get("/finance")).text
    assert "¥201,234.50" in page
    assert "没有待审核的拨款或调剂" in page
    assert "最近审核记录（1）" in page


async def _two_funded_pools(client: Client, maker: Any) -> tuple[str, str]:
    await page_login(client, maker)
    for source in ("employment_subsidy", "migrant_worker_services"):
        opened = await _post(
            client, "/finance", "/finance/pools", {"district_code": YUZHONG, "source": source}
        )
        assert opened.status_code == 303
    ids = _pool_ids((await client.get("/finance")).text)
    employment, migrant = ids["渝中区·就业补助资金"], ids["渝中区·进城务工农民综合服务经费"]
    funded = await _post(
        client,
        "/finance",
        "/finance/appropriations",
        {
            "pool_id": employment,
            "amount_yuan": "1000",
            "document_no": "渝财社〔2026〕3号",
            "date": "2026-03-02",
            "form_key": "fund",
        },
    )
    assert funded.status_code == 303
    return employment, migrant


async def test_a_transfer_is_requested_on_the_page_and_decided_by_a_colleague(
    client: Client, make_account: Any
) -> None:
    maker = await make_account("finance", YUZHONG)
    checker = await make_account("finance", YUZHONG)
    employment, migrant = await _two_funded_pools(client, maker)

    def transfer(amount: str, key: str, to: str = migrant) -> dict[str, str]:
        return {
            "from_pool_id": employment,
            "to_pool_id": to,
            "amount_yuan": amount,
            "document_no": "渝人社财〔2026〕30号",
            "note": "进城务工经费不足",
            "form_key": key,
            "form_kind": "transfer",
        }

    too_much = await _post(client, "/finance", "/finance/transfers", transfer("2000", "t0"))
    assert too_much.status_code == 409
    assert "调出资金池可用余额不足：可用 ¥1,000.00，调剂 ¥2,000.00" in too_much.text
    assert 'value="2000"' in too_much.text  # the form keeps what was typed
    same = await _post(client, "/finance", "/finance/transfers", transfer("10", "t1", employment))
    assert same.status_code == 422
    assert "调出和调入不能是同一个资金池" in same.text
    for key in ("t2", "t3"):  # two requests of ¥600: each fits today's ¥1,000 alone
        made = await _post(client, "/finance", "/finance/transfers", transfer("600", key))
        assert made.status_code == 303
        assert "待另一位财务人员审核" in unquote(made.headers["location"])
    page = (await client.get("/finance")).text
    assert page.count("资金调剂一律需另一位财务人员审核") == 2
    assert "渝中区·就业补助资金 → 渝中区·进城务工农民综合服务经费" in page
    first, second = re.findall(r'id="transfer-(\d+)"', page)
    own = await _post(
        client, "/finance", f"/finance/transfers/{first}/approve", {"decision": "approve"}
    )
    assert own.status_code == 403
    assert "需由另一位财务人员审核" in own.text

    await page_login(client, checker)
    done = await _post(
        client, "/finance", f"/finance/transfers/{first}/approve", {"decision": "approve"}
    )
    assert done.status_code == 303
    # The second no longer fits: ¥400 is left.
    short = await _post(
        client, "/finance", f"/finance/transfers/{second}/approve", {"decision": "approve"}
    )
    assert short.status_code == 409
    assert "调出资金池可用余额不足：可用 ¥400.00，调剂 ¥600.00" in short.text
    refused = await _post(
        client, "/finance", f"/finance/transfers/{second}/approve", {"decision": "reject"}
    )
    assert refused.status_code == 303
    page = (await client.get("/finance")).text
    assert "没有待审核的拨款或调剂" in page
    assert page.count("已退回") == 1
    assert "已入账" in page
    row = page.split(f'id="pool-{migrant}"')[1].split("</tr>")[0]
    assert "¥600.00" in row
    row = page.split(f'id="pool-{employment}"')[1].split("</tr>")[0]
    assert "¥400.00" in row


async def test_an_auditor_sees_requests_but_no_forms(client: Client, make_account: Any) -> None:
    maker = await make_account("finance", YUZHONG)
    await _two_funded_pools(client, maker)
    await page_login(client, await make_account("auditor", YUZHONG))
    page = (await client.get("/finance")).text
    assert "渝中区·就业补助资金" in page
    assert 'action="/finance/transfers"' not in page
    assert 'action="/finance/appropriations"' not in page


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
    formula = await _post(
        client, "/earnings", "/earnings/bank",
        {"account_name": '=HYPERLINK("http://x","王五")', "bank_name": "重庆农商行",
         "account_no": "6221000011112222333"},
    )  # fmt: skip
    assert formula.status_code == 422  # it would run as a formula in the bank file
    assert "户名和开户行不能以 = + - @ 开头" in formula.text
    saved = await _post(
        client, "/earnings", "/earnings/bank",
        {"account_name": "王五", "bank_name": "重庆农商行", "account_no": "6221 0000 1111 2222 333"},
    )  # fmt: skip
    assert saved.status_code == 303
    page = await client.get("/earnings")
    assert "**** **** **** 2333" in page.text
    assert "6221000011112222333" not in page.text


async def test_a_transfer_into_another_district_is_left_to_city_finance(
    client: Client, make_account: Any
) -> None:
    city = await make_account("finance", "50")
    await page_login(client, city)
    for district in (YUZHONG, "500238"):
        opened = await _post(
            client,
            "/finance",
            "/finance/pools",
            {"district_code": district, "source": "employment_subsidy"},
        )
        assert opened.status_code == 303
    ids = _pool_ids((await client.get("/finance")).text)
    yuzhong, wuxi = ids["渝中区·就业补助资金"], ids["巫溪县·就业补助资金"]
    funded = await _post(
        client, "/finance", "/finance/appropriations",
        {"pool_id": yuzhong, "amount_yuan": "100", "document_no": "渝财社〔2026〕4号",
         "date": "2026-03-02", "form_key": "f"},
    )  # fmt: skip
    assert funded.status_code == 303
    asked = await _post(
        client, "/finance", "/finance/transfers",
        {"from_pool_id": yuzhong, "to_pool_id": wuxi, "amount_yuan": "50",
         "document_no": "渝人社财〔2026〕40号", "form_key": "t"},
    )  # fmt: skip
    assert asked.status_code == 303
    # 渝中区's finance sees it leave their pool but cannot decide for 巫溪县.
    await page_login(client, await make_account("finance", YUZHONG))
    page = (await client.get("/finance")).text
    assert "调入其他区县，需市级财务审核" in page
    assert "同意调剂" not in page
    await page_login(client, await make_account("finance", "50"))
    page = (await client.get("/finance")).text
    assert "同意调剂" in page
