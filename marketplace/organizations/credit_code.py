"""Unified social credit codes (统一社会信用代码, GB 32100-2015): check and explain.

18 characters over a 31-character alphabet (digits and capitals without I, O, Z, S,
V): registration authority (1), organisation type (1), the administrative division
(6 digits, GB/T 2260), the organisation code (9), and a check character over the first
17 with weights 3^i mod 31.
"""

from __future__ import annotations

import re

from marketplace.errors import Invalid

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES = {char: value for value, char in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1, 3, 9, 27, 19, 26, 16, 17, …
_SHAPE = re.compile(rf"^[{ALPHABET}]{{2}}\d{{6}}[{ALPHABET}]{{10}}$")


def check_char(first17: str) -> str:
    total = sum(VALUES[char] * weight for char, weight in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def parse_credit_code(raw: str, *, field: str = "credit_code") -> str:
    """The code in canonical form (upper case, no spaces), or ``Invalid`` saying why."""
    code = re.sub(r"\s", "", raw or "").upper()
    if len(code) != 18:
        raise Invalid(field, f"统一社会信用代码应为 18 位，当前为 {len(code)} 位")
    bad = sorted({char for char in code if char not in VALUES})
    if bad:
        raise Invalid(
            field,
            f"统一社会信用代码含有不允许的字符 {'、'.join(bad)}（不使用 I、O、Z、S、V）",
        )
    if not _SHAPE.match(code):
        raise Invalid(field, "统一社会信用代码第 3 至 8 位应为数字（登记管理机关行政区划码）")
    if check_char(code[:17]) != code[17]:
        raise Invalid(field, "统一社会信用代码校验位不符，请核对是否有字符输错或顺序颠倒")
    return code
