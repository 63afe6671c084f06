"""Resident ID numbers (GB 11643-1999) and mobile phone numbers: check, derive, mask.

Pure functions; every refusal is an ``Invalid`` naming the field and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from marketplace.errors import Invalid

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
# Province-level prefixes of GB/T 2260. Finer county codes change over the years
# (people keep the number of a county that has since been renamed), so only the
# province is checked.
PROVINCES = frozenset(
    {
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
        "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
        "63", "64", "65", "71", "81", "82",
    }
)  # fmt: skip
EARLIEST_BIRTH = date(1900, 1, 1)
MIN_WORKING_AGE = 16
_SHAPE = re.compile(r"^\d{17}[\dX]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


@dataclass(frozen=True)
class ResidentId:
    number: str
    birth_date: date
    gender: str  # "male" | "female"


def check_char(first17: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def parse_resident_id(raw: str, *, today: date, field: str = "id_number") -> ResidentId:
    """Validate an 18-character resident ID number and derive birth date and gender."""
    number = (raw or "").strip().upper()
    if len(number) != 18:
        raise Invalid(field, f"身份证号应为 18 位，当前为 {len(number)} 位")
    if not _SHAPE.match(number):
        raise Invalid(field, "身份证号前 17 位必须是数字，最后一位是数字或 X")
    if number[:2] not in PROVINCES:
        raise Invalid(field, f"身份证号地区码 {number[:6]} 不存在（省级代码 {number[:2]} 无效）")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise Invalid(field, f"身份证号中的出生日期 {number[6:14]} 不是真实日期") from None
    if born < EARLIEST_BIRTH or born > today:
        raise Invalid(field, f"身份证号中的出生日期 {born.isoformat()} 不合理")
    if check_char(number[:17]) != number[17]:
        raise Invalid(field, "身份证号校验位不符，请核对是否有数字输错或顺序颠倒")
    gender = "male" if int(number[16]) % 2 == 1 else "female"
    return ResidentId(number=number, birth_date=born, gender=gender)


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def require_working_age(identity: ResidentId, *, today: date, field: str = "id_number") -> None:
    if age_on(identity.birth_date, today) < MIN_WORKING_AGE:
        raise Invalid(field, f"未满 {MIN_WORKING_AGE} 周岁，不能登记为劳动者")


def parse_mobile(raw: str, *, field: str = "phone") -> str:
    digits = re.sub(r"[\s-]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    if not _MOBILE.match(digits):
        raise Invalid(field, "手机号应为 11 位、以 1 开头的中国大陆手机号码")
    return digits


def mask(value: str) -> str:
    """First 3 and last 4 characters shown: 500***********123X, 138****5678."""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
