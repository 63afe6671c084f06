"""What can be done with accounts: create, edit, log in and out, second factor."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import MANAGEABLE_ROLES, TOTP_ROLES, Actor, Role, in_scope, require
from marketplace.accounts import rules
from marketplace.accounts.models import (
    AuthSession,
    User,
    UserActivityDay,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from marketplace.brokers.models import Broker, BrokerStatus, BrokerStatusChange, BrokerVillage
from marketplace.clock import as_utc, local, utcnow
from marketplace.crypto import DataCipher
from marketplace.db import fetch_page, insert_ignoring_duplicates
from marketplace.errors import Conflict, Forbidden, Invalid, Locked, NotFound, Unauthenticated
from marketplace.events import emit
from marketplace.regions.models import Region

_hasher = PasswordHasher()
TOTP_ISSUER = "劳务经纪人平台"


class LoginFailed(Unauthenticated):
    """A failed login; the failure counter and audit entry it wrote must be kept."""

    keep_changes = True


class LoginLocked(Locked):
    keep_changes = True


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both paths cost the same.
    Made on first use, not at import: every ``laowu`` start would pay for it."""
    return _hasher.hash("laowu-dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_for(user: User, *, ip: str | None = None) -> Actor:
    assert user.id is not None
    return Actor(
        user_id=user.id, username=user.username, role=user.role, region_code=user.region_code, ip=ip
    )


def to_public(user: User) -> UserPublic:
    assert user.id is not None
    return UserPublic(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        region_code=user.region_code,
        is_active=user.is_active,
        totp_enabled=user.totp_confirmed,
        locked_until=user.locked_until,
        created_at=user.created_at,
    )


# --- managing accounts -------------------------------------------------------------


async def _require_region(session: AsyncSession, code: str, field: str = "region_code") -> Region:
    region = await session.get(Region, code)
    if region is None:
        raise Invalid(field, f"区划代码 {code} 不存在")
    return region


def _require_manageable(actor: Actor, role: Role, region_code: str) -> None:
    if actor.is_system:
        return
    require(actor, "user.create")
    if role not in MANAGEABLE_ROLES.get(Role(actor.role), frozenset()):
        raise Forbidden(f"您无权管理角色为 {role.value} 的账号", field="role")
    if not in_scope(actor, region_code):
        raise Forbidden(f"区划 {region_code} 不在您的管辖范围内", field="region_code")


async def create_user(
    *, session: AsyncSession, actor: Actor, data: UserCreate, cipher: DataCipher
) -> tuple[User, str | None]:
    """Create an account. For a TOTP role created by the system (CLI) the second
    factor is set up at once and its otpauth URI returned, to be shown once."""
    role = rules.parse_role(data.role)
    _require_manageable(actor, role, data.region_code)
    rules.check_scope(role, data.region_code)
    await _require_region(session, data.region_code)
    rules.check_password(data.password, role)
    exists = await session.execute(select(col(User.id)).where(col(User.username) == data.username))
    if exists.first() is not None:
        raise Conflict(f"用户名 {data.username} 已被使用", field="username")
    user = User(
        username=data.username,
        display_name=data.display_name,
        role=role,
        region_code=data.region_code,
        password_hash=hash_password(data.password),
    )
    uri = None
    if role in TOTP_ROLES and actor.is_system:
        secret = pyotp.random_base32()
        user.totp_secret_enc = cipher.encrypt(secret, context="totp")
        user.totp_confirmed = True
        uri = pyotp.TOTP(secret).provisioning_uri(name=data.username, issuer_name=TOTP_ISSUER)
    session.add(user)
    await session.flush()
    if role == Role.broker:
        # Bootstrapping: a broker account is an active broker for its village.
        broker = Broker(user_id=user.id, name=data.display_name, village_code=data.region_code)
        session.add(broker)
        await session.flush()
        assert broker.id is not None
        session.add(BrokerVillage(broker_id=broker.id, village_code=broker.village_code))
    await audit.record(
        session=session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=user.id,
        region_code=user.region_code,
        detail={"role": role.value},
    )
    await emit(session, "user.created", {"user_id": user.id, "role": role.value})
    await session.flush()
    return user, uri


async def get_user(*, session: AsyncSession, actor: Actor, user_id: int) -> User:
    user = await session.get(User, user_id)
    if actor.user_id == user_id and user is not None:
        return user
    # Accounts outside the reader's scope are reported as absent: usernames are not public.
    if user is None or not (actor.is_system or in_scope(actor, user.region_code)):
        raise NotFound(f"用户 {user_id} 不存在", field="id")
    require(actor, "user.view", region_code=user.region_code)
    return user


async def list_users(
    *,
    session: AsyncSession,
    actor: Actor,
    limit: int,
    offset: int,
    role: str | None = None,
    region_code: str | None = None,
) -> tuple[list[User], int]:
    require(actor, "user.view")
    prefix = region_code or actor.region_code
    if not in_scope(actor, prefix):
        raise Forbidden(f"区划 {prefix} 不在您的管辖范围内", field="region_code")
    where = [col(User.region_code).startswith(prefix)]
    if role:
        where.append(col(User.role) == rules.parse_role(role))
    return await fetch_page(session, User, where, order_by=col(User.id), limit=limit, offset=offset)


async def update_user(
    *, session: AsyncSession, actor: Actor, user_id: int, data: UserUpdate
) -> User:
    user = await get_user(session=session, actor=actor, user_id=user_id)
    touches_self = actor.user_id == user_id and not actor.is_system
    if touches_self and (data.role or data.region_code or data.is_active is not None):
        raise Forbidden("不能修改自己的角色、区划或启用状态", field="role")
    old_role = Role(user.role)
    _require_manageable(actor, old_role, user.region_code)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    new_role = rules.parse_role(changes.get("role", old_role))
    new_region = changes.get("region_code", user.region_code)
    if new_role != old_role or new_region != user.region_code:
        _require_manageable(actor, new_role, new_region)
        rules.check_separation(old_role, new_role)
        rules.check_scope(new_role, new_region)
        await _require_region(session, new_region)
    changed: list[str] = []
    if "display_name" in changes:
        user.display_name = changes["display_name"]
        changed.append("display_name")
    if new_role != old_role:
        user.role = new_role
        changed.append("role")
        if new_role in TOTP_ROLES and not user.totp_confirmed:
            user.totp_secret_enc = None
    if new_region != user.region_code:
        user.region_code = new_region
        changed.append("region_code")
    if "password" in changes:
        rules.check_password(changes["password"], new_role)
        user.password_hash = hash_password(changes["password"])
        changed.append("password")
    if changes.get("reset_totp"):
        user.totp_secret_enc, user.totp_confirmed, user.totp_last_step = None, False, None
        changed.append("totp")
    if "is_active" in changes and changes["is_active"] != user.is_active:
        if not await _set_broker_duty(session, actor, user, active=changes["is_active"]):
            user.is_active = changes["is_active"]
        changed.append("is_active")
        if user.is_active:
            user.failed_logins, user.locked_until = 0, None
    if not changed:
        return user
    user.updated_at = utcnow()
    session.add(user)
    if {"is_active", "role", "region_code", "password", "totp"} & set(changed):
        # Any change to who the account is or how it logs in ends its sessions at once.
        await end_sessions(session=session, user_id=user_id)
    await _sync_broker(session, user, actor)
    await audit.record(
        session=session,
        actor=actor,
        action="user.update",
        object_type="user",
        object_id=user_id,
        region_code=user.region_code,
        detail={"fields": changed},
    )
    await emit(session, "user.updated", {"user_id": user_id, "fields": changed})
    await session.flush()
    return user


ACCOUNT_DISABLED_REASON = "在用户管理中停用账号"
ACCOUNT_ENABLED_REASON = "在用户管理中启用账号"
ACCOUNT_ROLE_REASON = "在用户管理中改变账号角色"


async def _set_broker_duty(
    session: AsyncSession, actor: Actor, user: User, *, active: bool
) -> bool:
    """Enabling or disabling a broker's account is the broker's suspension or
    reinstatement: it goes through the broker status change (history, audit, event),
    so the broker page tells the whole story. Returns False for any other account.
    Only a suspension made here is undone here: a broker suspended on the broker page
    (with its reason), retired or eliminated is dealt with on the broker page."""
    if user.role != Role.broker:
        return False
    broker = (
        await session.execute(select(Broker).where(col(Broker.user_id) == user.id))
    ).scalar_one_or_none()
    if broker is None or broker.id is None:
        return False
    if broker.status not in (BrokerStatus.active, BrokerStatus.suspended):
        raise Conflict(
            f"此账号属于已{_STATUS_WORDS.get(broker.status, broker.status)}的经纪人，"
            f"不能在用户管理中{'启用' if active else '停用'}；"
            f"请到经纪人页面 /brokers/{broker.id} 查看其状态记录",
            field="is_active",
        )
    manual = broker.status_reason not in (ACCOUNT_DISABLED_REASON, ACCOUNT_ROLE_REASON)
    if active and broker.status == BrokerStatus.suspended and manual:
        # Suspended on the broker page, for a reason: reinstating is decided there.
        raise Conflict(
            f"此经纪人已被暂停（原因：{broker.status_reason or '未填写'}），"
            f"请到经纪人页面 /brokers/{broker.id} 填写原因后恢复，恢复后账号自动启用",
            field="is_active",
        )
    # Imported here: the broker service builds on this module (accounts sessions).
    from marketplace.brokers import service as brokers

    await brokers.change_status(
        session=session,
        actor=actor,
        broker_id=broker.id,
        action="reinstate" if active else "suspend",
        reason=ACCOUNT_ENABLED_REASON if active else ACCOUNT_DISABLED_REASON,
    )
    return True


_STATUS_WORDS: dict[str, str] = {BrokerStatus.retired: "退出", BrokerStatus.eliminated: "淘汰"}


async def _sync_broker(session: AsyncSession, user: User, actor: Actor) -> None:
    """Keep the bootstrap broker row in step with its account (a role change away
    from broker suspends it, with a line in its status history)."""
    broker = (
        await session.execute(select(Broker).where(col(Broker.user_id) == user.id))
    ).scalar_one_or_none()
    if broker is None:
        if user.role == Role.broker and user.is_active:
            session.add(
                Broker(user_id=user.id, name=user.display_name, village_code=user.region_code)
            )
        return
    active = user.is_active and user.role == Role.broker
    target = BrokerStatus.active if active else BrokerStatus.suspended
    if broker.status in (BrokerStatus.active, BrokerStatus.suspended) and broker.status != target:
        reason = ACCOUNT_ENABLED_REASON if active else ACCOUNT_ROLE_REASON
        assert broker.id is not None
        session.add(
            BrokerStatusChange(
                broker_id=broker.id,
                old_status=broker.status,
                new_status=target,
                reason=reason,
                actor_user_id=actor.user_id,
            )
        )
        broker.status, broker.status_reason = target, reason
    if user.role == Role.broker and broker.village_code != user.region_code:
        # The home village moves; its assignment row moves with it.
        await session.execute(
            delete(BrokerVillage).where(
                col(BrokerVillage.broker_id) == broker.id,
                col(BrokerVillage.village_code) == broker.village_code,
            )
        )
        broker.village_code = user.region_code
        assert broker.id is not None
        session.add(BrokerVillage(broker_id=broker.id, village_code=broker.village_code))
    session.add(broker)


async def change_own_password(
    *, session: AsyncSession, actor: Actor, current: str, new: str, keep_token_hash: str | None
) -> None:
    user = await session.get(User, actor.user_id)
    if user is None:
        raise Unauthenticated("请重新登录")
    if not _verify_password(user.password_hash, current):
        raise Invalid("current_password", "当前密码不正确")
    rules.check_password(new, Role(user.role), field="new_password")
    if current == new:
        raise Invalid("new_password", "新密码不能与当前密码相同")
    user.password_hash = hash_password(new)
    user.updated_at = utcnow()
    session.add(user)
    await end_sessions(session=session, user_id=user.id, except_hash=keep_token_hash)
    await audit.record(
        session=session,
        actor=actor,
        action="user.password_change",
        object_type="user",
        object_id=user.id,
        region_code=user.region_code,
    )
    await emit(session, "user.password_changed", {"user_id": user.id})


# --- logging in and out --------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    token: str
    auth: AuthSession
    user: User


async def _audit_own(
    session: AsyncSession,
    user: User,
    ip: str | None,
    action: str,
    *,
    outcome: str = "ok",
    detail: dict[str, str] | None = None,
) -> None:
    """Audit something the account's own holder did (or tried) to their account."""
    await audit.record(
        session=session,
        actor=actor_for(user, ip=ip),
        action=action,
        object_type="user",
        object_id=user.id,
        region_code=user.region_code,
        outcome=outcome,
        detail=detail,
    )


async def _fail(
    session: AsyncSession, user: User, ip: str | None, reason: str, now: datetime
) -> None:
    user.failed_logins += 1
    locked = user.failed_logins >= rules.MAX_FAILED_LOGINS
    if locked:
        user.locked_until = now + rules.LOCKOUT
        user.failed_logins = 0
        await emit(session, "account.locked", {"user_id": user.id})
    session.add(user)
    await _audit_own(
        session,
        user,
        ip,
        "auth.login",
        outcome="locked" if locked else "failed",
        detail={"reason": reason},
    )
    await session.flush()
    if locked:
        raise LoginLocked("连续 5 次登录失败，账号已锁定 15 分钟")


def _totp_step(secret: str, otp: str, now: datetime, last_step: int | None) -> int | None:
    """The time step the code belongs to (±1 step for clock drift), or None."""
    totp = pyotp.TOTP(secret)
    code = otp.strip().replace(" ", "")
    step_now = int(now.timestamp()) // totp.interval
    for step in (step_now, step_now - 1, step_now + 1):
        if secrets.compare_digest(totp.at(step * totp.interval), code):
            return None if last_step is not None and step <= last_step else step
    return None


async def _find_user(session: AsyncSession, username: str) -> User | None:
    return (
        await session.execute(select(User).where(col(User.username) == username))
    ).scalar_one_or_none()


async def check_password_step(
    *, session: AsyncSession, username: str, password: str, ip: str | None
) -> User:
    """First step of every login: the password, with lockout counting."""
    now = utcnow()
    user = await _find_user(session, username)
    if user is None:
        _verify_password(_dummy_hash(), password)
        raise Unauthenticated("用户名或密码错误", field="password")
    _check_not_locked(user, now)
    if not _verify_password(user.password_hash, password):
        await _fail(session, user, ip, "password", now)
        raise LoginFailed("用户名或密码错误", field="password")
    if not user.is_active:
        raise Forbidden("账号已停用，请联系管理员")
    return user


def _check_not_locked(user: User, now: datetime) -> None:
    if user.locked_until and as_utc(user.locked_until) > now:
        raise Locked("登录失败次数过多，账号已锁定，请 15 分钟后再试")


def needs_second_factor(user: User) -> bool:
    return user.role in TOTP_ROLES


async def login(
    *,
    session: AsyncSession,
    username: str,
    password: str,
    otp: str | None,
    kind: str,
    ip: str | None,
    cipher: DataCipher,
) -> Login:
    user = await check_password_step(session=session, username=username, password=password, ip=ip)
    return await finish_login(session=session, user=user, otp=otp, kind=kind, ip=ip, cipher=cipher)


async def finish_login(
    *,
    session: AsyncSession,
    user: User,
    otp: str | None,
    kind: str,
    ip: str | None,
    cipher: DataCipher,
) -> Login:
    """Second step (the TOTP code, where the role needs one) and the new session."""
    now = utcnow()
    _check_not_locked(user, now)
    if not user.is_active:
        raise Forbidden("账号已停用，请联系管理员")
    if needs_second_factor(user):
        await _check_second_factor(session, user, otp, ip, cipher, now)
    user.failed_logins, user.locked_until = 0, None
    session.add(user)
    token = secrets.token_urlsafe(32)
    auth = AuthSession(
        token_hash=hash_token(token),
        user_id=user.id or 0,
        kind=kind,
        created_at=now,
        last_seen_at=now,
        expires_at=now + rules.ABSOLUTE_TIMEOUT,
        ip=ip,
    )
    session.add(auth)
    await record_activity(session=session, user_id=user.id or 0, at=now)
    await _audit_own(session, user, ip, "auth.login", detail={"kind": kind})
    await session.flush()
    return Login(token=token, auth=auth, user=user)


async def _check_second_factor(
    session: AsyncSession,
    user: User,
    otp: str | None,
    ip: str | None,
    cipher: DataCipher,
    now: datetime,
) -> None:
    if user.totp_secret_enc is None:
        raise Unauthenticated("此账号需先绑定动态验证码（TOTP）后才能登录", field="otp")
    if not otp:
        raise Unauthenticated("请输入动态验证码", field="otp")
    secret = cipher.decrypt(user.totp_secret_enc, context="totp")
    step = _totp_step(secret, otp, now, user.totp_last_step)
    if step is None:
        await _fail(session, user, ip, "otp", now)
        raise LoginFailed("动态验证码错误或已使用", field="otp")
    user.totp_last_step = step
    user.totp_confirmed = True


async def enrol_totp(
    *, session: AsyncSession, username: str, password: str, ip: str | None, cipher: DataCipher
) -> tuple[str, str]:
    """First-login enrolment over the API: needs the password again."""
    user = await check_password_step(session=session, username=username, password=password, ip=ip)
    return await start_totp_enrolment(session=session, user=user, ip=ip, cipher=cipher)


async def start_totp_enrolment(
    *, session: AsyncSession, user: User, ip: str | None, cipher: DataCipher
) -> tuple[str, str]:
    """A new secret for an account that has not confirmed one; the first code used
    at login confirms it."""
    if not needs_second_factor(user):
        raise Conflict("此角色无需动态验证码", field="username")
    if user.totp_confirmed:
        raise Conflict("动态验证码已绑定；如需更换请联系管理员重置", field="otp")
    secret = pyotp.random_base32()
    user.totp_secret_enc = cipher.encrypt(secret, context="totp")
    session.add(user)
    await _audit_own(session, user, ip, "auth.totp_enrol")
    await session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=TOTP_ISSUER)
    return uri, secret


@dataclass(frozen=True)
class Resolved:
    user: User
    auth: AuthSession
    needs_touch: bool


# Read on every signed-in request: built once (building it took a third of the look-up).
_SESSION_WITH_USER = (
    select(AuthSession, User)
    .join(User, col(User.id) == col(AuthSession.user_id))
    .where(
        col(AuthSession.token_hash) == bindparam("token_hash"),
        col(AuthSession.kind) == bindparam("kind"),
    )
)


async def resolve(*, session: AsyncSession, token: str, kind: str) -> Resolved:
    """The user behind a token, if the session is open, unexpired and not idle."""
    now = utcnow()
    row = (
        await session.execute(_SESSION_WITH_USER, {"token_hash": hash_token(token), "kind": kind})
    ).first()
    if row is None:
        raise Unauthenticated("登录已失效，请重新登录")
    auth, user = row
    if auth.ended_at is not None or not user.is_active:
        raise Unauthenticated("登录已失效，请重新登录")
    if now >= as_utc(auth.expires_at):
        raise Unauthenticated("登录已超过 12 小时，请重新登录")
    if now - as_utc(auth.last_seen_at) > rules.idle_timeout(user.role):
        raise Unauthenticated("长时间未操作，登录已失效，请重新登录")
    last_seen = as_utc(auth.last_seen_at)
    # A new day also needs a touch, so the day's activity is recorded (scoring).
    stale = now - last_seen > rules.TOUCH_INTERVAL or local(now).date() != local(last_seen).date()
    return Resolved(user, auth, stale)


async def touch(*, session: AsyncSession, auth_id: int, user_id: int | None = None) -> None:
    now = utcnow()
    await session.execute(
        update(AuthSession).where(col(AuthSession.id) == auth_id).values(last_seen_at=now)
    )
    if user_id is not None:
        await record_activity(session=session, user_id=user_id, at=now)


async def record_activity(*, session: AsyncSession, user_id: int, at: datetime) -> None:
    """Mark ``at``'s Chongqing day as active for the user (idempotent)."""
    await insert_ignoring_duplicates(
        session, UserActivityDay, [{"user_id": user_id, "day": local(at).date()}]
    )


async def logout(*, session: AsyncSession, actor: Actor, auth_id: int) -> None:
    await session.execute(
        update(AuthSession)
        .where(col(AuthSession.id) == auth_id, col(AuthSession.ended_at).is_(None))
        .values(ended_at=utcnow())
    )
    await audit.record(
        session=session,
        actor=actor,
        action="auth.logout",
        object_type="user",
        object_id=actor.user_id,
        region_code=actor.region_code,
    )


async def end_sessions(
    *, session: AsyncSession, user_id: int | None, except_hash: str | None = None
) -> None:
    stmt = update(AuthSession).where(
        col(AuthSession.user_id) == user_id, col(AuthSession.ended_at).is_(None)
    )
    if except_hash is not None:
        stmt = stmt.where(col(AuthSession.token_hash) != except_hash)
    await session.execute(stmt.values(ended_at=utcnow()))


def seconds_left(auth: AuthSession) -> int:
    return max(0, int((as_utc(auth.expires_at) - utcnow()).total_seconds()))
