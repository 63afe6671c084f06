"""Jinja2 setup: filters and globals every page uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar.plugins.jinja import JinjaTemplateEngine

from marketplace.access import ROLE_LABELS, Role
from marketplace.clock import local

LEVEL_LABELS = {
    "city": "市",
    "district": "区县",
    "township": "乡镇（街道）",
    "village": "村（社区）",
}


# The NBS urban/rural kind of a township or village, as people say it.
KIND_LABELS = {
    "subdistrict": "街道",
    "town": "镇",
    "township": "乡",
    "community": "社区",
    "village": "行政村",
}

OUTCOME_LABELS = {
    "ok": "成功",
    "failed": "失败",
    "locked": "已锁定",
    "unauthenticated": "未登录",
    "forbidden": "越权被拒",
    "not_found": "不存在",
    "conflict": "冲突",
    "invalid": "输入有误",
    "error": "出错",
}


def _ymd(d: datetime) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _ymd_hm(d: datetime) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d} {d.hour:02d}:{d.minute:02d}"


def _md_hm(d: datetime) -> str:
    return f"{d.month:02d}-{d.day:02d} {d.hour:02d}:{d.minute:02d}"


# The formats list pages show on every row, built from the fields: the same text as
# strftime's, a few times faster (a page of 50 rows formats 50 times).
_FORMATS = {"%Y-%m-%d": _ymd, "%Y-%m-%d %H:%M": _ymd_hm, "%m-%d %H:%M": _md_hm}


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    shown = local(value)
    fast = _FORMATS.get(fmt)
    return fast(shown) if fast is not None and shown.year >= 1000 else shown.strftime(fmt)


def role_label(value: str) -> str:
    try:
        return ROLE_LABELS[Role(value)]
    except ValueError:
        return value


def role_option(value: str) -> tuple[str, str]:
    return value, role_label(value)


def yuan(fen: int | None) -> str:
    """Integer fen shown as yuan with thousands separators: 123456 → ¥1,234.56."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def configure_templates(engine: JinjaTemplateEngine) -> None:
    env: Any = engine.engine
    # Templates ship with the code and change only with a restart: without this, Jinja
    # stats every template file of a page on each render.
    env.auto_reload = False
    env.filters["local_time"] = local_time
    env.filters["role_label"] = role_label
    env.filters["role_option"] = role_option
    env.filters["yuan"] = yuan
    env.globals["LEVEL_LABELS"] = LEVEL_LABELS
    env.globals["OUTCOME_LABELS"] = OUTCOME_LABELS
    env.globals["KIND_LABELS"] = KIND_LABELS
    env.globals["ROLE_LABELS"] = {role.value: label for role, label in ROLE_LABELS.items()}
