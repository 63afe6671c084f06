"""Pure rules of the worker register: field checks, likely duplicates, update rate."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from rapidfuzz import fuzz

from marketplace.errors import Invalid
from marketplace.workers.models import CertificateIn, WageUnit

# Plausible wage ranges in fen per unit: a wage outside them is a typo (yuan typed as
# fen, an extra zero), not an offer.
WAGE_BOUNDS: dict[WageUnit, tuple[int, int]] = {
    WageUnit.hour: (1_00, 500_00),  # 1 to 500 yuan an hour
    WageUnit.day: (10_00, 5_000_00),  # 10 to 5,000 yuan a day
    WageUnit.month: (500_00, 100_000_00),  # 500 to 100,000 yuan a month
    WageUnit.piece: (1, 10_000_00),  # 0.01 to 10,000 yuan a piece
}
UNIT_LABELS = {
    WageUnit.hour: "小时",
    WageUnit.day: "天",
    WageUnit.month: "月",
    WageUnit.piece: "件",
}
# Same phone plus a name at most one slip away in three characters (67) is likely the
# same person; two-character names differing in one (50), often relatives sharing a
# phone, are not flagged.
NAME_SIMILARITY = 60.0
MAX_TEXT_ITEM = 32


def clean_name(raw: str | None) -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise Invalid("name", "姓名不能为空")
    if any(ch.isdigit() for ch in name):
        raise Invalid("name", "姓名不能包含数字")
    return name


def clean_list(items: Iterable[str], *, field: str) -> list[str]:
    """Trimmed, empty entries dropped, duplicates dropped, order kept."""
    seen: dict[str, None] = {}
    for item in items:
        text = " ".join(item.split())
        if len(text) > MAX_TEXT_ITEM:
            raise Invalid(field, f"每项最多 {MAX_TEXT_ITEM} 个字符：{text[:10]}…")
        if text:
            seen.setdefault(text, None)
    return list(seen)


def check_certificates(items: Sequence[CertificateIn]) -> list[CertificateIn]:
    out = []
    for n, cert in enumerate(items, start=1):
        kind, number = cert.type.strip(), cert.number.strip()
        if not kind:
            raise Invalid("certificates", f"第 {n} 个证书缺少证书类型")
        if not number:
            raise Invalid("certificates", f"第 {n} 个证书缺少证书编号")
        out.append(CertificateIn(type=kind, number=number, expires_on=cert.expires_on))
    return out


def check_wage(min_fen: int | None, max_fen: int | None, unit: str | None) -> None:
    for field, value in (("wage_min_fen", min_fen), ("wage_max_fen", max_fen)):
        if value is not None and value < 0:
            raise Invalid(field, "期望工资不能为负数")
    if min_fen is None and max_fen is None:
        return
    if unit is None:
        raise Invalid("wage_unit", "填写期望工资时须选择计薪单位（小时、天、月、件）")
    wage_unit = WageUnit(unit)
    low, high = WAGE_BOUNDS[wage_unit]
    for field, value in (("wage_min_fen", min_fen), ("wage_max_fen", max_fen)):
        if value is not None and not low <= value <= high:
            raise Invalid(
                field,
                f"按{UNIT_LABELS[wage_unit]}计的期望工资应在 {low / 100:g} 至 {high / 100:g} 元之间"
                "（金额单位为分）",
            )
    if min_fen is not None and max_fen is not None and min_fen > max_fen:
        raise Invalid("wage_min_fen", "期望工资下限不能高于上限")


def check_location(region_code: str | None, text: str | None) -> None:
    if region_code and text:
        raise Invalid(
            "current_location_text", "现居地只填一项：重庆市内填区划代码，市外或境外填文字"
        )


def mask_name(name: str | None) -> str:
    """张三丰 → 张**: enough for a broker to recognise a colleague, not to identify."""
    if not name:
        return "*"
    return name[0] + "*" * max(1, len(name) - 1)


# --- likely duplicates -----------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateCandidate:
    id: int
    name: str
    phone_hash: str | None
    village_code: str
    birth_date: date | None


def name_similarity(a: str, b: str) -> float:
    """rapidfuzz ratio (0–100) ignoring spaces: 王建国 ~ 王建囯 scores 67, 张三 ~ 张四 50."""
    return float(fuzz.ratio("".join(a.split()), "".join(b.split())))


def duplicate_reasons(a: DuplicateCandidate, b: DuplicateCandidate) -> list[str]:
    """Why two records with different ID numbers may be the same person (empty: not)."""
    reasons = []
    if (
        a.phone_hash is not None
        and a.phone_hash == b.phone_hash
        and name_similarity(a.name, b.name) >= NAME_SIMILARITY
    ):
        reasons.append("same_phone_similar_name")
    if a.birth_date is not None and (a.village_code, a.birth_date) == (
        b.village_code,
        b.birth_date,
    ):
        reasons.append("same_village_birth_date")
    return reasons


# --- register update rate --------------------------------------------------------------


@dataclass(frozen=True)
class RegisterEntry:
    """One record a broker keeps, with the times it was written or verified."""

    created_at: datetime
    deleted_at: datetime | None
    touched_at: Sequence[datetime]  # history rows: create, update, merge, verify


def update_rate(
    entries: Iterable[RegisterEntry], *, start: datetime, end: datetime
) -> float | None:
    """Share of the records live at ``end`` that were created, updated or verified in
    ``[start, end)``. ``None`` when there is no such record: an empty register has no
    rate, and 0 or 1 would each mislead a ranking."""
    if start >= end:
        raise ValueError("start must be before end")
    live = touched = 0
    for entry in entries:
        if entry.created_at >= end or (entry.deleted_at is not None and entry.deleted_at < end):
            continue
        live += 1
        if any(start <= at < end for at in entry.touched_at):
            touched += 1
    return None if live == 0 else touched / live


# A record not verified with the person for this long is stale: the monthly
# HR-database-update task (tasks issue) goes after exactly these.
STALE_AFTER = timedelta(days=365)


def is_stale(last_verified_at: datetime | None, now: datetime) -> bool:
    return last_verified_at is None or now - last_verified_at > STALE_AFTER
