"""Authentication over the API: lockout, timeouts, logout and disabling, the second
factor, password rules, fields a caller may not write, and CSRF on the login form.

Time is moved by editing the stored timestamps (``locked_until``, ``last_seen_at``,
``expires_at``), which is exactly what the server reads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyotp
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import event, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.accounts import service as accounts
from marketplace.accounts.models import AuthSession, User
from marketplace.clock import utcnow
from marketplace.db import unit_of_work
from tests.conftest import PASSWORD, WUXI, YUZHONG, Account

# 七星岗街道 and its 华一坡社区 in 渝中区; 宁河街道's first community in 巫溪县.
YZ_TOWNSHIP = "500103001"
YZ_VILLAGE = "500103001003"
WX_VILLAGE = "500238001001"

Client = AsyncTestClient[Litestar]
# Rules that are plain Python over stored values run on SQLite only, to keep the suite
# quick; what depends on the database (committing a failed login, stored times) runs
# on both.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
Sessions = async_sessionmaker[AsyncSession]


def code_at(secret: str, steps_ahead: int = 0) -> str:
    """A TOTP code; the server accepts one step ahead, for a second login in a test."""
    totp = pyotp.TOTP(secret)
    return totp.at(int(utcnow().timestamp()) + steps_ahead * totp.interval)


def wrong_code(secret: str) -> str:
    """A six-digit code valid for none of the steps the server accepts."""
    near = {code_at(secret, steps) for steps in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)


async def api_login(
    client: Client, account: Account, *, password: str | None = None, otp: str | None = None
) -> Any:
    body: dict[str, Any] = {"username": account.username, "password": password or PASSWORD}
    if otp is not None:
        body["otp"] = otp
    return await client.post("/api/v1/auth/login", json=body)


async def bearer(client: Client, account: Account, otp: str | None = None) -> dict[str, str]:
    if otp is None and account.totp_secret:
        otp = code_at(account.totp_secret)
    response = await api_login(client, account, otp=otp)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def stored(sessions: Sessions, user_id: int) -> User:
    async with sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def set_user(sessions: Sessions, user_id: int, **values: Any) -> None:
    async with unit_of_work(sessions) as session:
        await session.execute(update(User).where(col(User.id) == user_id).values(**values))


async def age_sessions(sessions: Sessions, user_id: int, **values: Any) -> None:
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(AuthSession).where(col(AuthSession.user_id) == user_id).values(**values)
        )


# --- lockout ---------------------------------------------------------------------------


async def test_five_failures_lock_the_account_for_fifteen_minutes(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    account = await make_account("employer", YUZHONG)
    for _ in range(4):
        response = await api_login(client, account, password="wrong-password-1")
        assert response.status_code == 401
        assert response.json()["field"] == "password"
    assert (await stored(sessions, account.id)).failed_logins == 4

    fifth = await api_login(client, account, password="wrong-password-1")
    assert fifth.status_code == 423, fifth.text
    assert "15 分钟" in fifth.json()["detail"]
    locked_until = (await stored(sessions, account.id)).locked_until
    assert locked_until is not None
    remaining = locked_until - utcnow()
    assert timedelta(minutes=14) < remaining <= timedelta(minutes=15)

    # While locked, even the right password is refused.
    right = await api_login(client, account)
    assert right.status_code == 423
    assert "锁定" in right.json()["detail"]

    # Fifteen minutes later the lock has lapsed and the counter starts afresh.
    await set_user(sessions, account.id, locked_until=utcnow() - timedelta(seconds=1))
    assert (await api_login(client, account)).status_code == 200
    user = await stored(sessions, account.id)
    assert (user.failed_logins, user.locked_until) == (0, None)


@sqlite_only
async def test_a_success_resets_the_failure_count(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    account = await make_account("broker", YZ_VILLAGE)
    for _ in range(4):
        await api_login(client, account, password="wrong-password-1")
    assert (await api_login(client, account)).status_code == 200
    assert (await stored(sessions, account.id)).failed_logins == 0
    # Four more failures do not lock: the earlier ones no longer count.
    for _ in range(4):
        assert (await api_login(client, account, password="nope-nope-1")).status_code == 401
    # An unknown username is the same plain 401, and counts against nobody.
    unknown = await client.post(
        "/api/v1/auth/login", json={"username": "nobody-here", "password": "whatever-123"}
    )
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == "用户名或密码错误"


# --- timeouts, logout, disabling -------------------------------------------------------


IDLE_MINUTES = [
    ("employer", YUZHONG, 30),
    ("broker", YZ_VILLAGE, 30),
    ("city_admin", "50", 15),
    ("district_admin", YUZHONG, 15),
    ("finance", YUZHONG, 15),
    ("auditor", YUZHONG, 15),
]


async def test_idle_timeout(client: Client, make_account: Any, sessions: Sessions) -> None:
    for role, region, idle_minutes in IDLE_MINUTES:
        account = await make_account(role, region)
        headers = await bearer(client, account)
        await age_sessions(
            sessions, account.id, last_seen_at=utcnow() - timedelta(minutes=idle_minutes - 1)
        )
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200, role
        # That request counted as activity; now stay away a little past the limit.
        await age_sessions(
            sessions,
            account.id,
            last_seen_at=utcnow() - timedelta(minutes=idle_minutes, seconds=5),
        )
        response = await client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401, role
        assert "未操作" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


async def test_activity_keeps_a_session_alive(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    account = await make_account("employer", YUZHONG)
    headers = await bearer(client, account)
    await age_sessions(sessions, account.id, last_seen_at=utcnow() - timedelta(minutes=25))
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    async with sessions() as session:
        seen = (
            await session.execute(
                select(col(AuthSession.last_seen_at)).where(col(AuthSession.user_id) == account.id)
            )
        ).scalar_one()
    assert utcnow() - seen < timedelta(minutes=1)


async def test_a_read_takes_one_database_connection_and_a_write_its_own(
    app: Litestar, client: Client, make_account: Any
) -> None:
    """A read looks the caller up and answers in one session (one connection, one
    transaction); a write still looks up apart and opens its own writer transaction."""
    account = await make_account("employer", YUZHONG)
    headers = await bearer(client, account)
    checkouts: list[int] = []

    def count(*_: Any) -> None:
        checkouts.append(1)

    engine = app.state.engine.sync_engine
    event.listen(engine, "checkout", count)
    try:
        inbox = await client.get("/api/v1/notifications", headers=headers)
        assert inbox.status_code == 200
        assert inbox.json() == {"items": [], "total": 0}
        assert len(checkouts) == 1
        checkouts.clear()
        assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
        assert len(checkouts) == 2
    finally:
        event.remove(engine, "checkout", count)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401


async def test_a_busy_database_defers_the_touch_but_not_the_request(
    client: Client, make_account: Any, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load SQLite may not take the last-seen write in time: the request is
    answered anyway and the next one records the activity."""
    account = await make_account("employer", YUZHONG)
    headers = await bearer(client, account)
    await age_sessions(sessions, account.id, last_seen_at=utcnow() - timedelta(minutes=25))
    real_touch = accounts.touch

    async def locked(**_: Any) -> None:
        raise OperationalError("UPDATE auth_session", {}, Exception("database is locked"))

    monkeypatch.setattr(accounts, "touch", locked)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    monkeypatch.setattr(accounts, "touch", real_touch)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    async with sessions() as session:
        seen = (
            await session.execute(
                select(col(AuthSession.last_seen_at)).where(col(AuthSession.user_id) == account.id)
            )
        ).scalar_one()
    assert utcnow() - seen < timedelta(minutes=1)


async def test_absolute_timeout_of_twelve_hours(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    account = await make_account("agency", YUZHONG)
    headers = await bearer(client, account)
    expires_in = (
        await api_login(client, account)  # a second login: its lifetime is 12 hours
    ).json()["expires_in"]
    assert 12 * 3600 - 60 < expires_in <= 12 * 3600
    # Active all along (seen a minute ago), but started twelve hours ago.
    await age_sessions(
        sessions,
        account.id,
        created_at=utcnow() - timedelta(hours=12),
        last_seen_at=utcnow() - timedelta(minutes=1),
        expires_at=utcnow() - timedelta(seconds=1),
    )
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert "12 小时" in response.json()["detail"]


async def test_logout_ends_the_session_at_once(client: Client, make_account: Any) -> None:
    account = await make_account("employer", YUZHONG)
    first = await bearer(client, account)
    second = await bearer(client, account)
    assert (await client.post("/api/v1/auth/logout", headers=first)).status_code == 204
    assert (await client.get("/api/v1/me", headers=first)).status_code == 401
    assert (await client.post("/api/v1/auth/logout", headers=first)).status_code == 401
    # Only that session ended: the account's other login carries on.
    assert (await client.get("/api/v1/me", headers=second)).status_code == 200


async def test_disabling_an_account_ends_its_sessions_at_once(
    client: Client, make_account: Any
) -> None:
    admin = await make_account("district_admin", YUZHONG)
    broker = await make_account("broker", YZ_VILLAGE)
    admin_headers = await bearer(client, admin)
    broker_headers = await bearer(client, broker)
    assert (await client.get("/api/v1/me", headers=broker_headers)).status_code == 200

    response = await client.patch(
        f"/api/v1/users/{broker.id}", json={"is_active": False}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    assert (await client.get("/api/v1/me", headers=broker_headers)).status_code == 401
    refused = await api_login(client, broker)
    assert refused.status_code == 403
    assert "停用" in refused.json()["detail"]

    # Enabled again, the account logs in afresh; the old token stays dead.
    await client.patch(
        f"/api/v1/users/{broker.id}", json={"is_active": True}, headers=admin_headers
    )
    assert (await api_login(client, broker)).status_code == 200
    assert (await client.get("/api/v1/me", headers=broker_headers)).status_code == 401


@sqlite_only
async def test_a_page_session_token_is_no_bearer_token(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    """The API takes only bearer tokens; a page (cookie) session's token is refused."""
    account = await make_account("employer", YZ_VILLAGE)
    token = "page-session-token-for-test"
    now = utcnow()
    async with unit_of_work(sessions) as session:
        session.add(
            AuthSession(
                token_hash=accounts.hash_token(token),
                user_id=account.id,
                kind="cookie",
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    # Nor does the API read the cookie: no ambient credentials, so no CSRF there.
    client.cookies.set("laowu_session", token)
    assert (await client.get("/api/v1/me")).status_code == 401


# --- the second factor ---------------------------------------------------------------


TOTP_ROLES = [
    ("city_admin", "50"),
    ("district_admin", YUZHONG),
    ("finance", "50"),
    ("auditor", YUZHONG),
]


async def test_totp_is_required_for_sensitive_roles(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    for role, region in TOTP_ROLES:
        account = await make_account(role, region)
        assert account.totp_secret is not None

        missing = await api_login(client, account)
        assert missing.status_code == 401, role
        assert missing.json()["field"] == "otp"

        wrong = await api_login(client, account, otp=wrong_code(account.totp_secret))
        assert wrong.status_code == 401, role
        assert wrong.json()["field"] == "otp"
        assert (await stored(sessions, account.id)).failed_logins == 1  # counts as a failure

        code = code_at(account.totp_secret)
        assert (await api_login(client, account, otp=code)).status_code == 200, role
        replayed = await api_login(client, account, otp=code)
        assert replayed.status_code == 401, role
        assert "已使用" in replayed.json()["detail"]
    for role, region in [("employer", YUZHONG), ("township_officer", YZ_TOWNSHIP)]:
        account = await make_account(role, region)
        assert account.totp_secret is None
        assert (await api_login(client, account)).status_code == 200, role


@sqlite_only
async def test_wrong_codes_lock_the_account_too(client: Client, make_account: Any) -> None:
    account = await make_account("finance", YUZHONG)
    bad = wrong_code(account.totp_secret or "")
    statuses = [(await api_login(client, account, otp=bad)).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 423]
    good = code_at(account.totp_secret or "")
    assert (await api_login(client, account, otp=good)).status_code == 423


async def test_totp_enrolment_is_confirmed_by_the_first_login(
    client: Client, make_account: Any
) -> None:
    city = await make_account("city_admin", "50")
    city_headers = await bearer(client, city)
    created = await client.post(
        "/api/v1/users",
        json={
            "username": "new_finance",
            "display_name": "新财务",
            "role": "finance",
            "region_code": WUXI,
            "password": PASSWORD,
        },
        headers=city_headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["totp_enabled"] is False
    newcomer = Account(user=User(), username="new_finance", password=PASSWORD, totp_secret=None)

    # No secret yet: the login says to enrol first.
    first = await api_login(client, newcomer, otp="123456")
    assert first.status_code == 401
    assert "绑定" in first.json()["detail"]

    bad = await client.post(
        "/api/v1/auth/totp/enrol", json={"username": "new_finance", "password": "wrong-password"}
    )
    assert bad.status_code == 401
    enrol = await client.post(
        "/api/v1/auth/totp/enrol", json={"username": "new_finance", "password": PASSWORD}
    )
    assert enrol.status_code == 200, enrol.text
    body = enrol.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert pyotp.parse_uri(body["otpauth_uri"]).secret == body["secret"]

    done = await api_login(client, newcomer, otp=code_at(body["secret"]))
    assert done.status_code == 200, done.text
    assert done.json()["user"]["totp_enabled"] is True
    # Once confirmed, the secret cannot be replaced without an administrator's reset.
    again = await client.post(
        "/api/v1/auth/totp/enrol", json={"username": "new_finance", "password": PASSWORD}
    )
    assert again.status_code == 409
    assert again.json()["field"] == "otp"
    # A role without a second factor has nothing to enrol.
    employer = await make_account("employer", YUZHONG)
    response = await client.post(
        "/api/v1/auth/totp/enrol", json={"username": employer.username, "password": PASSWORD}
    )
    assert response.status_code == 409


# --- passwords -----------------------------------------------------------------------


PASSWORD_CASES = [
    ("township_officer", YZ_TOWNSHIP, "abcdefghij1", False),  # 11 characters
    ("township_officer", YZ_TOWNSHIP, "abcdefghijk1", True),
    ("auditor", YUZHONG, "short-pass1", False),
    ("broker", YZ_VILLAGE, "abcdef1", False),  # 7: under 8 for the other roles
    ("broker", YZ_VILLAGE, "abcdefg1", True),
]


@sqlite_only
async def test_password_length_by_role(client: Client, make_account: Any) -> None:
    city = await make_account("city_admin", "50")
    headers = await bearer(client, city)
    for n, (role, region, password, ok) in enumerate(PASSWORD_CASES):
        response = await client.post(
            "/api/v1/users",
            json={
                "username": f"pw_{n}",
                "display_name": "测试",
                "role": role,
                "region_code": region,
                "password": password,
            },
            headers=headers,
        )
        if ok:
            assert response.status_code == 201, response.text
            continue
        assert response.status_code == 422, (role, password)
        assert response.json()["field"] == "password"
        assert "至少" in response.json()["detail"]
    # An administrator's reset follows the same rule.
    officer = await make_account("village_officer", YZ_VILLAGE)
    response = await client.patch(
        f"/api/v1/users/{officer.id}", json={"password": "too-short"}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["field"] == "password"


# --- fields a caller may not write -----------------------------------------------------

PROTECTED_ON_CREATE = {
    "id": 987654,
    "failed_logins": 3,
    "locked_until": "2099-01-01T00:00:00Z",
    "totp_confirmed": True,
    "totp_secret_enc": "forged",
    "password_hash": "forged-hash",
    "is_active": False,
    "created_at": "2000-01-01T00:00:00Z",
}


@sqlite_only
async def test_protected_fields_are_ignored_on_create(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    admin = await make_account("district_admin", YUZHONG)
    response = await client.post(
        "/api/v1/users",
        json={
            "username": "injected",
            "display_name": "注入测试",
            "role": "broker",
            "region_code": YZ_VILLAGE,
            "password": PASSWORD,
            **PROTECTED_ON_CREATE,
        },
        headers=await bearer(client, admin),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] != 987654
    user = await stored(sessions, created["id"])
    assert user.is_active is True
    assert (user.failed_logins, user.locked_until) == (0, None)
    assert (user.totp_confirmed, user.totp_secret_enc) == (False, None)
    assert user.password_hash.startswith("$argon2")
    assert user.created_at.year > 2000


@sqlite_only
async def test_protected_fields_are_ignored_on_update(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    admin = await make_account("district_admin", YUZHONG)
    broker = await make_account("broker", YZ_VILLAGE)
    before = await stored(sessions, broker.id)
    response = await client.patch(
        f"/api/v1/users/{broker.id}",
        json={
            "display_name": "新名字",
            "id": 1,
            "username": "renamed",
            "failed_logins": 9,
            "locked_until": "2099-01-01T00:00:00Z",
            "totp_confirmed": True,
            "password_hash": "forged-hash",
        },
        headers=await bearer(client, admin),
    )
    assert response.status_code == 200, response.text
    after = await stored(sessions, broker.id)
    assert after.display_name == "新名字"
    assert (after.id, after.username, after.password_hash) == (
        before.id,
        before.username,
        before.password_hash,
    )
    assert (after.failed_logins, after.locked_until, after.totp_confirmed) == (0, None, False)


RAISE_OR_EXPORT = [
    {"role": "city_admin"},
    {"role": "district_admin", "region_code": YUZHONG},
    {"role": "auditor", "region_code": YUZHONG},
    {"region_code": WX_VILLAGE},
    {"role": "employer", "region_code": WUXI},
]


async def test_a_district_admin_cannot_raise_or_export_an_account(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    admin = await make_account("district_admin", YUZHONG)
    broker = await make_account("broker", YZ_VILLAGE)
    headers = await bearer(client, admin)
    for change in RAISE_OR_EXPORT:
        response = await client.patch(f"/api/v1/users/{broker.id}", json=change, headers=headers)
        assert response.status_code == 403, (change, response.text)
        assert response.json()["detail"]
        user = await stored(sessions, broker.id)
        assert (user.role, user.region_code) == ("broker", YZ_VILLAGE)


@sqlite_only
async def test_a_district_admin_cannot_create_above_its_station(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    admin = await make_account("district_admin", YUZHONG)
    headers = await bearer(client, admin)
    for role, region in [("city_admin", "50"), ("auditor", YUZHONG), ("broker", WX_VILLAGE)]:
        response = await client.post(
            "/api/v1/users",
            json={
                "username": f"above_{role}",
                "display_name": "越权",
                "role": role,
                "region_code": region,
                "password": PASSWORD,
            },
            headers=headers,
        )
        assert response.status_code == 403, (role, response.text)
    listed = await client.get("/api/v1/users", params={"region_code": YUZHONG}, headers=headers)
    assert all(not u["username"].startswith("above_") for u in listed.json()["items"])


@sqlite_only
async def test_separation_of_duties_admin_and_auditor(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    city = await make_account("city_admin", "50")
    headers = await bearer(client, city)
    for old, new in [
        ("auditor", "district_admin"),
        ("district_admin", "auditor"),
        ("auditor", "city_admin"),
    ]:
        target = await make_account(old, YUZHONG)
        region = "50" if new == "city_admin" else YUZHONG
        response = await client.patch(
            f"/api/v1/users/{target.id}", json={"role": new, "region_code": region}, headers=headers
        )
        assert response.status_code == 409, response.text
        assert response.json()["field"] == "role"
        assert "职责分离" in response.json()["detail"]
        assert (await stored(sessions, target.id)).role == old


@sqlite_only
async def test_nobody_changes_their_own_role_region_or_status(
    client: Client, make_account: Any, sessions: Sessions
) -> None:
    for role, region in [("district_admin", YUZHONG), ("city_admin", "50")]:
        account = await make_account(role, region)
        headers = await bearer(client, account)
        for change in (
            {"role": "employer", "region_code": YUZHONG},
            {"role": "auditor"},
            {"region_code": WUXI},
            {"is_active": False},
        ):
            response = await client.patch(
                f"/api/v1/users/{account.id}", json=change, headers=headers
            )
            assert response.status_code == 403, (role, change, response.text)
        user = await stored(sessions, account.id)
        assert (user.role, user.region_code, user.is_active) == (role, region, True)


# --- pages: CSRF -----------------------------------------------------------------------


@sqlite_only
async def test_login_form_without_csrf_token_is_refused(client: Client, make_account: Any) -> None:
    account = await make_account("employer", YUZHONG)
    response = await client.post(
        "/login",
        data={"username": account.username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "laowu_session" not in response.cookies
    assert "CSRF" in response.text
