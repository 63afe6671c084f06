"""Pure account rules: passwords, role scopes, timeouts, lockout."""

from __future__ import annotations

from datetime import timedelta

from marketplace.access import ADMIN_ROLES, SCOPE_LENGTHS, SENSITIVE_ROLES, STAFF_ROLES, Role
from marketplace.errors import Conflict, Invalid

STAFF_MIN_PASSWORD = 12
OTHER_MIN_PASSWORD = 8
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
IDLE_TIMEOUT = timedelta(minutes=30)
SENSITIVE_IDLE_TIMEOUT = timedelta(minutes=15)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
# last_seen_at is refreshed at most this often, so reads do not all become writes.
TOUCH_INTERVAL = timedelta(seconds=60)


def parse_role(value: str, *, field: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(role.value for role in Role)
        raise Invalid(field, f"未知角色 {value!r}，可选：{allowed}") from None


def check_password(password: str, role: Role, *, field: str = "password") -> None:
    minimum = STAFF_MIN_PASSWORD if role in STAFF_ROLES else OTHER_MIN_PASSWORD
    if len(password) < minimum:
        raise Invalid(field, f"密码至少 {minimum} 个字符")
    if password.strip() != password or not password.strip():
        raise Invalid(field, "密码首尾不能是空格")
    if len(set(password)) < 4:
        raise Invalid(field, "密码过于简单，请使用更多不同字符")


def check_scope(role: Role, region_code: str, *, field: str = "region_code") -> None:
    if len(region_code) not in SCOPE_LENGTHS[role]:
        levels = {2: "市", 6: "区县", 9: "乡镇（街道）", 12: "村（社区）"}
        allowed = "、".join(levels[n] for n in sorted(SCOPE_LENGTHS[role]))
        raise Invalid(field, f"角色 {role.value} 的管辖范围必须是{allowed}一级的区划")


def check_separation(old: Role, new: Role) -> None:
    """No account may move between administration and audit."""
    pairs = {old, new}
    if Role.auditor in pairs and pairs & ADMIN_ROLES:
        raise Conflict("职责分离：管理员账号与审计账号不能互相转换", field="role")


def idle_timeout(role: str) -> timedelta:
    return SENSITIVE_IDLE_TIMEOUT if role in SENSITIVE_ROLES else IDLE_TIMEOUT
