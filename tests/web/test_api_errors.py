"""API errors: every 4xx is JSON with a ``detail`` in words (and the ``field`` for
validation), the right status for each kind of failure, and no 500 on any input."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.exc import OperationalError

from tests.conftest import PASSWORD, WUXI, YUZHONG, Account
from web import deps
from web.errors import translate_validation

Client = AsyncTestClient[Litestar]
YZ_VILLAGE = "500103001003"  # 华一坡社区, 渝中区
WX_VILLAGE = "500238001001"  # 九磷社区, 巫溪县
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def refusal(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with a JSON body that explains itself in Chinese."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert has_chinese(body["detail"]), body
    if field is not None:
        assert body["field"] == field, body
    return body


async def bearer(client: Client, account: Account) -> dict[str, str]:
    """Log in once (a fresh database per test, so the current TOTP code is unused)."""
    body = {"username": account.username, "password": account.password}
    if account.totp_secret:
        body["otp"] = pyotp.TOTP(account.totp_secret).now()
    response = await client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def admin(client: Client, make_account: Any) -> dict[str, str]:
    """A district admin of 渝中区 (its bearer header)."""
    return await bearer(client, await make_account("district_admin", YUZHONG))


async def test_no_or_bad_credentials_are_401_with_a_challenge(client: Client) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ):
        response = await client.get("/api/v1/me", headers=headers)
        refusal(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_status_per_kind_of_failure(
    client: Client, make_account: Any, admin: dict[str, str]
) -> None:
    # 403: a valid user out of scope (the region tree is public, so it says why).
    response = await client.patch(
        f"/api/v1/regions/{WX_VILLAGE}", json={"population": 10}, headers=admin
    )
    refusal(response, 403, "region_code")
    # 404: an unknown region, an unknown user, and a user in another district.
    refusal(await client.get("/api/v1/regions/500199", headers=admin), 404, "code")
    refusal(await client.get("/api/v1/users/999999", headers=admin), 404, "id")
    stranger = await make_account("broker", WX_VILLAGE)
    refusal(await client.get(f"/api/v1/users/{stranger.id}", headers=admin), 404, "id")
    # 409: a username already taken.
    new = {
        "username": stranger.username,
        "display_name": "重名",
        "role": "broker",
        "region_code": YZ_VILLAGE,
        "password": PASSWORD,
    }
    refusal(await client.post("/api/v1/users", json=new, headers=admin), 409, "username")
    # 404 for an unknown route, 405 for a wrong method: still JSON and in words.
    refusal(await client.get("/api/v1/nothing-here", headers=admin), 404)
    refusal(await client.delete("/api/v1/me", headers=admin), 405)


async def test_locked_account_is_423(client: Client, make_account: Any) -> None:
    account = await make_account("employer", YUZHONG)
    body = {"username": account.username, "password": "wrong-password-1"}
    for _ in range(4):
        refusal(await client.post("/api/v1/auth/login", json=body), 401, "password")
    refusal(await client.post("/api/v1/auth/login", json=body), 423)


INVALID_REGION_INPUT = [
    ("GET", "/api/v1/regions/12345", None, "code"),  # not a region code pattern
    ("GET", "/api/v1/regions/5001abc", None, "code"),
    ("GET", "/api/v1/regions?parent_code=abc", None, "parent_code"),
    ("PATCH", f"/api/v1/regions/{YZ_VILLAGE}", {"population": -5}, "population"),
    ("PATCH", f"/api/v1/regions/{YZ_VILLAGE}", {"population": "many"}, "population"),
    ("PATCH", f"/api/v1/regions/{YZ_VILLAGE}", {"population": 1.5}, "population"),
    ("PATCH", f"/api/v1/regions/{YZ_VILLAGE}", {"population": 10**12}, "population"),
    ("PATCH", f"/api/v1/regions/{YUZHONG}", {"population": 5}, "population"),  # not a village
    ("GET", "/api/v1/regions?limit=0", None, "limit"),
    ("GET", "/api/v1/regions?limit=100000", None, "limit"),
    ("GET", "/api/v1/regions?limit=abc", None, "limit"),
    ("GET", "/api/v1/regions?offset=-1", None, "offset"),
    ("GET", "/api/v1/users?limit=501", None, "limit"),
    ("GET", "/api/v1/users?role=king", None, "role"),
    ("GET", "/api/v1/audit?action=" + "x" * 100, None, "action"),
    ("GET", "/api/v1/notifications?unread=maybe", None, "unread"),
    ("GET", "/api/v1/users/99999999999999999999999", None, "user_id"),
    ("GET", "/api/v1/users/0", None, "user_id"),
    ("POST", "/api/v1/notifications/99999999999/read", None, "notification_id"),
]


async def test_invalid_input_is_422_naming_the_field(client: Client, make_account: Any) -> None:
    # An auditor may read the audit log; a city admin may do the rest.
    city = await bearer(client, await make_account("city_admin", "50"))
    auditor = await bearer(client, await make_account("auditor", YUZHONG))
    for method, url, body, field in INVALID_REGION_INPUT:
        headers = auditor if "/audit" in url else city
        response = await client.request(method, url, json=body, headers=headers)
        body = refusal(response, 422, field)
        detail = body["detail"]
        if "errors" in body:  # validation by the framework: "field: message; ..."
            assert detail.startswith(f"{field}: "), (url, detail)
        # Translated: no English validator phrases leak through.
        assert "Input should" not in detail
        assert "Expected `" not in detail


async def test_validation_messages_are_chinese_and_name_every_field(
    client: Client, admin: dict[str, str]
) -> None:
    response = await client.post("/api/v1/users", json={"username": "ab"}, headers=admin)
    body = refusal(response, 422, "username")
    fields = {item["field"]: item["message"] for item in body["errors"]}
    assert fields["username"] == "至少 3 个字符"
    assert fields["password"] == "必填"
    assert set(fields) == {"username", "display_name", "role", "region_code", "password"}
    assert body["detail"].startswith("username: 至少 3 个字符")


async def test_bad_usernames_are_refused(client: Client, admin: dict[str, str]) -> None:
    for username in ("a b c", "名字", "x;drop", "ab"):
        response = await client.post(
            "/api/v1/users",
            json={
                "username": username,
                "display_name": "测试",
                "role": "broker",
                "region_code": YZ_VILLAGE,
                "password": PASSWORD,
            },
            headers=admin,
        )
        refusal(response, 422, "username")


MALFORMED_BODIES: list[tuple[str, str, bytes]] = [
    ("POST", "/api/v1/auth/login", b"{not json"),
    ("POST", "/api/v1/auth/login", b"\xff\xfe"),
    ("POST", "/api/v1/auth/login", b""),
    ("POST", "/api/v1/auth/login", b"null"),
    ("POST", "/api/v1/auth/login", b"[1, 2]"),
    ("POST", "/api/v1/auth/login", b'{"username": 5, "password": []}'),
    ("POST", "/api/v1/auth/login", b'{"username": "x", "password": "y", "otp": 123456}'),
    ("POST", "/api/v1/auth/login", b'{"username": "' + b"x" * 5000 + b'", "password": "y"}'),
    ("POST", "/api/v1/users", b"{not json"),
    ("POST", "/api/v1/users", b""),
    ("POST", "/api/v1/users", b'"a string"'),
    ("POST", "/api/v1/users", b'{"username": {"nested": 1}, "role": 7, "region_code": 500103}'),
    ("PATCH", "/api/v1/users/1", b"{not json"),
    ("PATCH", "/api/v1/users/1", b'{"is_active": "perhaps", "role": null}'),
    ("PATCH", f"/api/v1/regions/{YZ_VILLAGE}", b"[]"),
    ("PATCH", f"/api/v1/regions/{YZ_VILLAGE}", b'{"population": "null", "extra": 1}'),
    ("POST", "/api/v1/me/password", b"{}"),
    ("POST", "/api/v1/auth/totp/enrol", b'{"username": null}'),
]


@sqlite_only
async def test_malformed_bodies_and_wrong_types_never_500(
    client: Client, admin: dict[str, str]
) -> None:
    for method, url, content in MALFORMED_BODIES:
        response = await client.request(
            method, url, content=content, headers={**admin, "Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (method, url, content[:40], response.text)
        assert has_chinese(response.json()["detail"]), (url, content[:40], response.text)


async def test_lists_page_with_limit_and_offset(client: Client, make_account: Any) -> None:
    headers = await bearer(client, await make_account("city_admin", "50"))
    everything = (
        await client.get("/api/v1/regions", params={"parent_code": YUZHONG}, headers=headers)
    ).json()
    assert set(everything) == {"items", "total"}
    total = everything["total"]
    assert total == len(everything["items"]) > 3
    page = (
        await client.get(
            "/api/v1/regions",
            params={"parent_code": YUZHONG, "limit": 2, "offset": 1},
            headers=headers,
        )
    ).json()
    assert page["total"] == total
    assert [r["code"] for r in page["items"]] == [r["code"] for r in everything["items"][1:3]]
    beyond = (
        await client.get(
            "/api/v1/regions", params={"parent_code": YUZHONG, "offset": 5000}, headers=headers
        )
    ).json()
    assert beyond == {"items": [], "total": total}
    for url in ("/api/v1/users", "/api/v1/notifications"):
        body = (await client.get(url, params={"limit": 1}, headers=headers)).json()
        assert set(body) == {"items", "total"}
        assert len(body["items"]) <= 1 <= body["total"] or body["total"] == 0


async def test_a_region_in_another_district_is_403_but_a_user_there_is_404(
    client: Client, make_account: Any, admin: dict[str, str]
) -> None:
    """The documented choice (docs/access.md): the region tree is public, so refusing
    to touch one says nothing new; accounts are not, so one out of scope is absent."""
    refusal(await client.get(f"/api/v1/regions/{WX_VILLAGE}/coverage", headers=admin), 403)
    refusal(
        await client.get("/api/v1/users", params={"region_code": WUXI}, headers=admin),
        403,
        "region_code",
    )
    other = await make_account("employer", WUXI)
    for response in (
        await client.get(f"/api/v1/users/{other.id}", headers=admin),
        await client.patch(f"/api/v1/users/{other.id}", json={"display_name": "x"}, headers=admin),
    ):
        body = refusal(response, 404, "id")
        assert other.username not in response.text
        assert body["detail"] == f"用户 {other.id} 不存在"


@pytest.mark.parametrize(
    ("english", "chinese"),
    [
        ("Field required", "必填"),
        ("String should have at least 3 characters", "至少 3 个字符"),
        ("String should have at most 64 characters", "最多 64 个字符"),
        ("String should match pattern '^[a-z]+$'", "格式不正确"),
        ("Input should be greater than or equal to 0", "不能小于 0"),
        ("Input should be less than or equal to 2000000", "不能大于 2000000"),
        ("Input should be a valid integer, unable to parse string as an integer", "应为整数"),
        ("Input should be a valid string", "应为文本"),
        ("Input should be a valid boolean, unable to interpret input", "应为 true 或 false"),
        ("Input should be a valid dictionary or object to extract fields from", "应为 JSON 对象"),
        ("Input should be 'a' or 'b'", "应为以下之一：'a' or 'b'"),
        ("Expected `int`, got `str`", "应为整数"),
        ("Expected `int` >= 1", "不能小于 1"),
        ("Expected `int` <= 500", "不能大于 500"),
        ("Expected `str` of length <= 64", "最多 64 个字符"),
        ("Expected `str` matching regex '^\\d{2}$'", "格式不正确"),
        ("Value error, 密码太短", "密码太短"),
        ("Something new from a library", "格式有误（Something new from a library）"),
        ("已经是中文", "已经是中文"),
    ],
)
def test_validation_phrases_translate(english: str, chinese: str) -> None:
    assert translate_validation(english) == chinese


async def test_text_with_a_nul_is_refused_not_a_500(
    client: Client, make_account: Any, login: Any, db_url: str
) -> None:
    """Fuzzing found it: PostgreSQL cannot store or compare text holding \\0, and a
    search, a login name or a field carrying one was a 500 there (SQLite takes it)."""
    on_postgres = db_url.startswith("postgresql")
    headers = await login(await make_account("district_admin", YUZHONG))
    search = await client.get("/api/v1/workers", params={"q": "张\x00三"}, headers=headers)
    if on_postgres:
        assert "空字符" in refusal(search, 422)["detail"]
    else:
        assert search.status_code == 200, search.text
    failed = await client.post(
        "/api/v1/auth/login", json={"username": "a\x00b", "password": "x" * 12}
    )
    refusal(failed, 422 if on_postgres else 401)


async def test_a_database_busy_past_its_timeout_is_503_to_retry(
    client: Client, make_account: Any, login: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite under overload: a save that could not get the write lock within the busy
    timeout wrote nothing; the caller is told to try again, not shown a server fault."""
    headers = await login(await make_account("district_admin", YUZHONG))

    async def busy(_: Any) -> None:
        raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))

    monkeypatch.setattr(deps, "begin_write", busy)
    response = await client.post(
        "/api/v1/task-types", json={"code": "x_busy", "name": "测试"}, headers=headers
    )
    assert "稍后重试" in refusal(response, 503)["detail"]
    assert int(response.headers["retry-after"]) >= 1  # seconds until a retry may succeed
