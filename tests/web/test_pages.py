"""Page flows over HTTP with cookies: login (with TOTP), the role home pages, the
region tree, population edits, user management, the audit view and the inbox."""

from __future__ import annotations

import re

import pyotp
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from marketplace.db import unit_of_work
from marketplace.notifications import service as inbox
from tests.conftest import PASSWORD, WUXI, YUZHONG, Account, fresh_code

TOWNSHIP = "500103001"  # 七星岗街道, 渝中区
VILLAGE = "500103001003"  # 华一坡社区
OTHER_VILLAGE = "500103001006"  # 临华路社区

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
PENDING = re.compile(r'name="pending" value="([^"]+)"')

Client = AsyncTestClient[Litestar]


_used_steps: dict[str, int] = {}


def _fresh_code(account: Account) -> str:
    return fresh_code(account, _used_steps)


def _token(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


async def _csrf(client: Client, path: str = "/login") -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return _token(response.text)


async def _password_step(client: Client, account: Account) -> str:
    response = await client.post(
        "/login",
        data={
            "username": account.username,
            "password": account.password,
            "next": "/",
            "_csrf_token": await _csrf(client),
        },
        follow_redirects=False,
    )
    if account.totp_secret is None and response.status_code == 302:
        return ""
    assert response.status_code == 200, response.text
    assert "动态验证码" in response.text
    return response.text


async def _otp_step(client: Client, html: str, code: str) -> None:
    pending = PENDING.search(html)
    assert pending
    response = await client.post(
        "/login/otp",
        data={"pending": pending.group(1), "otp": code, "next": "/", "_csrf_token": _token(html)},
        follow_redirects=False,
    )
    assert response.status_code == 302, response.text
    assert response.headers["location"] == "/"


async def page_login(client: Client, account: Account) -> None:
    client.cookies.clear()
    html = await _password_step(client, account)
    if account.totp_secret:
        await _otp_step(client, html, _fresh_code(account))


def _htmx(token: str) -> dict[str, str]:
    return {"HX-Request": "true", "x-csrftoken": token}


async def test_login_page_is_chinese_and_strict(client: Client) -> None:
    response = await client.get("/login")
    assert response.status_code == 200
    assert '<html lang="zh-CN">' in response.text
    assert "用户名" in response.text
    assert "密码" in response.text
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert " style=" not in response.text  # the CSP would block inline styles
    assert "<script>" not in response.text


async def test_anonymous_page_redirects_to_login(client: Client) -> None:
    response = await client.get("/regions/500103", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login?next=")


async def test_wrong_password_shows_error(client: Client, make_account) -> None:
    broker = await make_account("broker", VILLAGE)
    response = await client.post(
        "/login",
        data={
            "username": broker.username,
            "password": "nope-nope-nope",
            "_csrf_token": await _csrf(client),
        },
    )
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text


async def test_broker_home_shows_village(client: Client, make_account) -> None:
    broker = await make_account("broker", VILLAGE)
    await page_login(client, broker)
    home = await client.get("/")
    assert home.status_code == 200
    assert "华一坡社区" in home.text
    assert "应配经纪人" in home.text
    assert "区划与覆盖" not in home.text  # brokers see no coverage menu
    assert (await client.get("/regions", follow_redirects=True)).status_code == 403


async def test_employer_home_leads_to_its_jobs(client: Client, make_account) -> None:
    employer = await make_account("employer", YUZHONG)
    await page_login(client, employer)
    home = await client.get("/")
    assert 'href="/jobs">本单位岗位</a>' in home.text
    assert "即将开放" not in home.text


async def test_district_admin_logs_in_with_totp_and_sees_coverage(
    client: Client, make_account
) -> None:
    await make_account("broker", VILLAGE)
    admin = await make_account("district_admin", YUZHONG)
    html = await _password_step(client, admin)
    assert "<svg" not in html  # already enrolled: no QR code
    await _otp_step(client, html, _fresh_code(admin))
    home = await client.get("/")
    assert "渝中区经纪人覆盖情况" in home.text
    assert 'href="/regions/500103"' in home.text
    assert 'href="/users"' in home.text


async def test_wrong_totp_code_is_refused(client: Client, make_account) -> None:
    admin = await make_account("district_admin", YUZHONG)
    html = await _password_step(client, admin)
    pending = PENDING.search(html)
    assert pending
    response = await client.post(
        "/login/otp",
        data={"pending": pending.group(1), "otp": "000000", "_csrf_token": _token(html)},
    )
    assert response.status_code == 401
    assert (await client.get("/", follow_redirects=False)).status_code == 302


async def test_first_login_enrols_totp_with_qr(client: Client, make_account) -> None:
    city = await make_account("city_admin", "50")
    await page_login(client, city)
    token = await _csrf(client, "/users/new")
    created = await client.post(
        "/users",
        data={
            "username": "wuxi_admin",
            "display_name": "巫溪管理员",
            "role": "district_admin",
            "region_code": WUXI,
            "password": PASSWORD,
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    client.cookies.clear()
    newcomer = Account(user=city.user, username="wuxi_admin", password=PASSWORD, totp_secret=None)
    html = await _password_step(client, newcomer)
    assert "<svg" in html
    assert "扫描" in html
    secret = re.search(r"<code>([A-Z2-7]+)</code>", html)
    assert secret
    await _otp_step(client, html, pyotp.TOTP(secret.group(1)).now())
    assert "巫溪县" in (await client.get("/")).text


async def test_post_without_csrf_token_is_refused(client: Client, make_account) -> None:
    admin = await make_account("district_admin", YUZHONG)
    await page_login(client, admin)
    response = await client.post(f"/regions/{VILLAGE}/population", data={"population": "100"})
    assert response.status_code == 403
    assert "CSRF" in response.text
    bare = await client.post("/login", data={"username": "x", "password": "y"})
    assert bare.status_code == 403


async def test_region_pages_breadcrumb_and_children(client: Client, make_account) -> None:
    await make_account("broker", VILLAGE)
    admin = await make_account("district_admin", YUZHONG)
    await page_login(client, admin)
    root = await client.get("/regions", follow_redirects=False)
    assert root.headers["location"] == f"/regions/{YUZHONG}"
    district = await client.get(f"/regions/{YUZHONG}")
    assert district.status_code == 200
    assert "重庆市" in district.text
    assert "七星岗街道" in district.text
    assert 'href="/regions/50"' not in district.text  # the city is out of this admin's scope
    assert f'href="/regions/{TOWNSHIP}"' in district.text
    township = await client.get(f"/regions/{TOWNSHIP}")
    assert "华一坡社区" in township.text
    assert "常住人口" in township.text
    # 华一坡 has its broker; 临华路 has none and is highlighted.
    assert f'id="row-{VILLAGE}" class=""' in township.text
    assert f'id="row-{OTHER_VILLAGE}" class="short"' in township.text
    village = await client.get(f"/regions/{VILLAGE}")
    assert "应配经纪人" in village.text
    assert f'href="/regions/{TOWNSHIP}"' in village.text


async def test_region_out_of_scope_is_403(client: Client, make_account) -> None:
    admin = await make_account("district_admin", YUZHONG)
    await page_login(client, admin)
    response = await client.get(f"/regions/{WUXI}")
    assert response.status_code == 403
    assert "不在您的管辖范围内" in response.text
    assert (await client.get("/regions/999999")).status_code == 404


async def test_population_edit_in_scope_with_htmx(client: Client, make_account) -> None:
    admin = await make_account("district_admin", YUZHONG)
    await page_login(client, admin)
    page = await client.get(f"/regions/{TOWNSHIP}")
    token = _token(page.text)
    edit = await client.get(f"/regions/{VILLAGE}/row?edit=true", headers=_htmx(token))
    assert 'name="population"' in edit.text
    assert "<html" not in edit.text
    saved = await client.post(
        f"/regions/{VILLAGE}/population", data={"population": "12,345"}, headers=_htmx(token)
    )
    assert saved.status_code == 200, saved.text
    assert "12,345" in saved.text
    assert 'id="coverage-summary" aria-label="覆盖情况" hx-swap-oob="true"' in saved.text
    village = await client.get(f"/regions/{VILLAGE}")
    assert "3 名" in village.text  # 1 + 12345 // 5000
    bad = await client.post(
        f"/regions/{VILLAGE}/population", data={"population": "很多"}, headers=_htmx(token)
    )
    assert bad.status_code == 422
    assert "整数" in bad.text
    assert 'aria-invalid="true"' in bad.text
    plain = await client.post(
        f"/regions/{VILLAGE}/population",
        data={"population": "", "_csrf_token": token},
        follow_redirects=False,
    )
    assert plain.status_code == 303
    assert "未知" in (await client.get(f"/regions/{VILLAGE}")).text


async def test_population_edit_refused_for_officer_and_other_district(
    client: Client, make_account
) -> None:
    officer = await make_account("township_officer", TOWNSHIP)
    await page_login(client, officer)
    page = await client.get(f"/regions/{TOWNSHIP}")
    assert page.status_code == 200
    assert "修改" not in page.text
    refused = await client.post(
        f"/regions/{VILLAGE}/population",
        data={"population": "10"},
        headers=_htmx(_token(page.text)),
    )
    assert refused.status_code == 403
    admin = await make_account("district_admin", WUXI)
    await page_login(client, admin)
    token = await _csrf(client, "/")
    other = await client.post(
        f"/regions/{VILLAGE}/population", data={"population": "10"}, headers=_htmx(token)
    )
    assert other.status_code == 403


async def test_user_management(client: Client, make_account) -> None:
    admin = await make_account("district_admin", YUZHONG)
    await make_account("broker", VILLAGE, username="zhang_broker")
    await make_account("broker", "500238001001", username="wuxi_broker")
    await page_login(client, admin)
    listing = await client.get("/users?role=broker")
    assert "zhang_broker" in listing.text
    assert "wuxi_broker" not in listing.text
    token = _token(listing.text)
    form = {
        "username": "li_officer",
        "display_name": "李经办",
        "role": "township_officer",
        "region_code": TOWNSHIP,
        "password": "short",
        "_csrf_token": token,
    }
    weak = await client.post("/users", data=form)
    assert weak.status_code == 422
    assert 'id="err-password"' in weak.text
    assert "至少 12 个字符" in weak.text
    assert 'value="li_officer"' in weak.text  # the form keeps what was typed
    outside = await client.post(
        "/users", data={**form, "password": PASSWORD, "region_code": "500238001"}
    )
    assert outside.status_code == 403
    assert 'id="err-region_code"' in outside.text
    created = await client.post(
        "/users", data={**form, "password": PASSWORD}, follow_redirects=False
    )
    assert created.status_code == 303
    edit_url = created.headers["location"].split("?")[0]
    edit = await client.get(created.headers["location"])
    assert "账号已创建" in edit.text
    saved = await client.post(
        edit_url,
        data={
            "display_name": "李经办（停用）",
            "role": "township_officer",
            "region_code": TOWNSHIP,
            "is_active": "0",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    after = await client.get(edit_url)
    assert "已停用" in after.text
    assert "李经办（停用）" in after.text
    bad_role = await client.post(
        edit_url,
        data={
            "display_name": "李经办",
            "role": "city_admin",
            "region_code": TOWNSHIP,
            "is_active": "1",
            "_csrf_token": token,
        },
    )
    assert bad_role.status_code == 403
    assert 'id="err-role"' in bad_role.text
    # The refused edit changed nothing, not even the name.
    assert "李经办（停用）" in (await client.get(edit_url)).text


async def test_users_page_is_for_admins_only(client: Client, make_account) -> None:
    officer = await make_account("township_officer", TOWNSHIP)
    await page_login(client, officer)
    assert (await client.get("/users")).status_code == 403
    assert (await client.get("/users/new")).status_code == 403


async def test_huge_ids_in_page_paths_are_refused_not_500(client: Client, make_account) -> None:
    admin = await make_account("broker", VILLAGE)
    await page_login(client, admin)
    token = await _csrf(client, "/inbox")
    response = await client.post("/inbox/99999999999999999999999/read", headers=_htmx(token))
    assert response.status_code == 422
    assert (await client.get("/users/99999999999999999999999")).status_code in (403, 422)


async def test_audit_view_and_chain_check(client: Client, make_account) -> None:
    await make_account("broker", VILLAGE)
    auditor = await make_account("auditor", YUZHONG)
    await page_login(client, auditor)
    page = await client.get("/audit")
    assert page.status_code == 200
    assert "user.create" in page.text
    assert "auth.login" in page.text
    filtered = await client.get("/audit?action=auth.login")
    assert 'class="mono">user.create<' not in filtered.text
    verify = await client.get("/audit/verify", headers={"HX-Request": "true"})
    assert "哈希链完整" in verify.text
    assert "<html" not in verify.text
    assert "哈希链完整" in (await client.get("/audit/verify")).text
    admin = await make_account("district_admin", YUZHONG)
    await page_login(client, admin)
    assert (await client.get("/audit")).status_code == 403


async def test_inbox_mark_read(client: Client, make_account, sessions) -> None:
    broker = await make_account("broker", VILLAGE)
    async with unit_of_work(sessions) as session:
        first = await inbox.send(
            session=session, user_id=broker.id, title="培训通知", body="周五上午培训"
        )
        await inbox.send(session=session, user_id=broker.id, title="任务提醒")
    assert first is not None
    await page_login(client, broker)
    page = await client.get("/inbox")
    assert "培训通知" in page.text
    assert "任务提醒" in page.text
    assert '<span class="badge" id="unread-count">2</span>' in page.text
    token = _token(page.text)
    one = await client.post(f"/inbox/{first.id}/read", headers=_htmx(token))
    assert one.status_code == 200
    assert "已读" in one.text
    assert 'hx-swap-oob="true">1</span>' in one.text
    everything = await client.post("/inbox/read-all", headers=_htmx(token))
    assert 'hx-swap-oob="true" hidden>0</span>' in everything.text
    assert 'id="unread-count" hidden' in (await client.get("/")).text


async def test_inbox_refuses_someone_elses_message(client: Client, make_account, sessions) -> None:
    owner = await make_account("broker", VILLAGE)
    async with unit_of_work(sessions) as session:
        note = await inbox.send(session=session, user_id=owner.id, title="私信")
    assert note is not None
    other = await make_account("broker", OTHER_VILLAGE)
    await page_login(client, other)
    token = await _csrf(client, "/inbox")
    response = await client.post(f"/inbox/{note.id}/read", headers=_htmx(token))
    assert response.status_code == 404


async def test_logout_ends_the_session(client: Client, make_account) -> None:
    broker = await make_account("broker", VILLAGE)
    await page_login(client, broker)
    session_cookie = client.cookies.get("laowu_session")
    token = await _csrf(client, "/")
    out = await client.post("/logout", data={"_csrf_token": token}, follow_redirects=False)
    assert out.status_code == 302
    assert session_cookie
    client.cookies.set("laowu_session", session_cookie)
    assert (await client.get("/", follow_redirects=False)).status_code == 302


@pytest.mark.parametrize("role", ["township_officer", "finance"])
async def test_staff_home_shows_region_coverage(client: Client, make_account, role: str) -> None:
    region = TOWNSHIP if role == "township_officer" else YUZHONG
    account = await make_account(role, region)
    await page_login(client, account)
    home = await client.get("/")
    assert "经纪人覆盖情况" in home.text
    assert "缺口" in home.text
