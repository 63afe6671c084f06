"""Lawful, truthful postings: pure checks over a job's values (docs/jobs.md).

Each check returns ``Flag``s with a code, a Chinese message naming the phrase or the
figure, and whether the flag blocks publishing. Unlawful requirements and fees charged
to workers block; a likely duplicate, a wage range that only starts under the minimum
wage and a low age ceiling are warnings for the reviewer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from rapidfuzz import fuzz

from marketplace.errors import Invalid

# --- minimum wage ------------------------------------------------------------------------

# 重庆市最低工资标准 in force since 2022-04-01 (渝府发〔2022〕13 号): monthly and hourly, in
# fen, for the two areas. 一类区域: the 26 districts (区, codes 5001xx); 二类区域: the 12
# counties (县/自治县, codes 5002xx). See docs/jobs.md for the source and how to update.
MINIMUM_WAGE_SINCE = date(2022, 4, 1)
MONTHLY_MINIMUM_FEN = {1: 210_000, 2: 200_000}
HOURLY_MINIMUM_FEN = {1: 2_100, 2: 2_000}
# A day's pay is compared with the monthly minimum over 21.75 paid days a month
# (劳社部发〔2008〕3 号), in integer arithmetic: day_fen * 2175 < monthly_fen * 100.
PAID_DAYS_X100 = 2175
AREA_LABELS = {1: "一类区域", 2: "二类区域"}
UNIT_LABELS = {"hour": "元/小时", "day": "元/天", "month": "元/月", "piece": "元/件"}

CHONGQING = "50"
MIN_AGE = 16  # 劳动法第十五条: no one under 16 may be employed
LOW_AGE_CEILING = 45  # below this an age ceiling gets a warning; see docs/jobs.md


@dataclass(frozen=True)
class Flag:
    code: str
    message: str
    blocking: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wage_area(region_code: str) -> int | None:
    """1 or 2 for a place in Chongqing; None elsewhere (that place's own minimum applies)."""
    if not region_code.startswith(CHONGQING) or len(region_code) < 6:
        return None
    return 2 if region_code[:4] == "5002" else 1


def below_minimum(amount_fen: int, unit: str, area: int) -> bool:
    if unit == "month":
        return amount_fen < MONTHLY_MINIMUM_FEN[area]
    if unit == "hour":
        return amount_fen < HOURLY_MINIMUM_FEN[area]
    if unit == "day":
        return amount_fen * PAID_DAYS_X100 < MONTHLY_MINIMUM_FEN[area] * 100
    return False  # piece rates cannot be compared without output figures


def _yuan(fen: int) -> str:
    return f"{fen / 100:.2f}".rstrip("0").rstrip(".")


def minimum_for(unit: str, area: int) -> str:
    if unit == "hour":
        return f"{_yuan(HOURLY_MINIMUM_FEN[area])} 元/小时"
    if unit == "day":
        return f"{_yuan(MONTHLY_MINIMUM_FEN[area] * 100 // PAID_DAYS_X100)} 元/天（月标准÷21.75）"
    return f"{_yuan(MONTHLY_MINIMUM_FEN[area])} 元/月"


def wage_flags(wage_min_fen: int, wage_max_fen: int, unit: str, region_code: str) -> list[Flag]:
    area = wage_area(region_code)
    if area is None or unit == "piece":
        return []
    floor = f"重庆市{AREA_LABELS[area]}最低工资标准 {minimum_for(unit, area)}"
    if below_minimum(wage_max_fen, unit, area):
        return [
            Flag(
                "wage_below_minimum",
                f"工资 {_yuan(wage_max_fen)} {UNIT_LABELS[unit]} 低于{floor}，不得发布",
                True,
            )
        ]
    if below_minimum(wage_min_fen, unit, area):
        return [
            Flag(
                "wage_range_below_minimum",
                f"工资下限 {_yuan(wage_min_fen)} {UNIT_LABELS[unit]} 低于{floor}；"
                "请确认正常工作时间的工资不低于该标准",
                False,
            )
        ]
    return []


# --- discriminatory requirements -------------------------------------------------------

# Neutral phrases removed before matching, so 男女不限 is not read as 限男.
_NEUTRAL = re.compile(
    r"男女不限|不限男女|男女均可|男女皆可|男女都可|男女不论|性别不限|不限性别|"
    r"民族不限|不限民族|户籍不限|不限户籍|户口不限|不限户口|地域不限|不限地域|"
    r"婚否不限|不限婚否|婚姻状况不限|不限婚姻状况|婚育不限|不限婚育"
)
_STOP = r"[^，。；！？,.;!?\n]"  # inside one clause
_REQUIRE = r"(?:仅限|只限|只招|只要|仅招|限|要求|需|须|必须)"
_REFUSE = r"(?:勿扰|免谈|不要|不招|不收|谢绝|拒收|除外|不考虑)"


@dataclass(frozen=True)
class Pattern:
    code: str
    regex: re.Pattern[str]
    law: str


def _p(code: str, law: str, *patterns: str) -> list[Pattern]:
    return [Pattern(code, re.compile(p), law) for p in patterns]


GENDER_LAW = "就业促进法第二十七条禁止以性别为由拒绝录用或提高录用标准"
ETHNIC_LAW = "就业促进法第二十八条规定各民族劳动者享有平等的劳动权利"
HUKOU_LAW = "就业促进法第三条、第三十一条：劳动者就业不因户籍等受歧视，农村劳动者与城镇劳动者平等"
MARITAL_LAW = "就业促进法第二十七条、妇女权益保障法第四十三条禁止以婚姻、生育状况限制录用"
PREGNANCY_LAW = (
    "妇女权益保障法第四十三条禁止询问或调查女性求职者的婚育情况、将妊娠测试作为入职体检项目"
)
FEE_LAW = "劳动合同法第九条：用人单位不得要求劳动者提供担保或以其他名义向劳动者收取财物"
ID_LAW = "劳动合同法第九条：用人单位不得扣押劳动者的居民身份证和其他证件"

REQUIREMENT_PATTERNS: list[Pattern] = [
    *_p(
        "gender_requirement",
        GENDER_LAW,
        rf"{_REQUIRE}(?:男|女)(?:性|士|生|工|的)?",
        r"(?:男|女)(?:性|士|生|工)?优先",
        r"招(?:男|女)(?:工|性|士)",
        r"(?:男|女)(?:工|性)\d+(?:名|人|个)",
        rf"(?:女|男)(?:性|士|生|工)?{_REFUSE}",
        rf"{_REFUSE}(?:女|男)(?:性|士|生|工)",
    ),
    *_p(
        "ethnicity_requirement",
        ETHNIC_LAW,
        rf"{_REQUIRE}汉族",
        r"汉族优先",
        r"非汉族",
        rf"(?:少数民族|维族|维吾尔族|藏族|彝族|回族){_STOP}{{0,3}}{_REFUSE}",
        rf"{_REFUSE}{_STOP}{{0,4}}(?:少数民族|维族|维吾尔族|藏族|彝族|回族)",
    ),
    *_p(
        "hukou_requirement",
        HUKOU_LAW,
        rf"{_REQUIRE}{_STOP}{{0,6}}(?:户口|户籍)",
        rf"(?:户口|户籍){_STOP}{{0,4}}(?:优先|{_REFUSE})",
        rf"(?:本地人|外地人|外省人|农村人|城镇人){_STOP}{{0,3}}(?:优先|{_REFUSE})",
        rf"{_REQUIRE}(?:本地人|本市人|城镇人)",
        rf"{_REFUSE}{_STOP}{{0,3}}(?:外地人|外省人|农村人|农村户)",
    ),
    *_p(
        "marital_requirement",
        MARITAL_LAW,
        rf"{_REQUIRE}{_STOP}{{0,2}}(?:未婚|已婚|单身|离异|已育|未育)",
        rf"(?:未婚|已婚|单身|离异|已育|未育){_STOP}{{0,3}}(?:优先|{_REFUSE})",
        r"已婚已育|未婚未育|已婚未育",
    ),
    *_p(
        "pregnancy_requirement",
        PREGNANCY_LAW,
        rf"(?:孕妇|怀孕|孕期|哺乳期){_STOP}{{0,4}}(?:{_REFUSE}|不得|不能)",
        rf"{_REFUSE}{_STOP}{{0,3}}(?:孕妇|孕期|哺乳期)",
        r"(?:\d+|[一二两三四五])年内不(?:得|能|准|可)?(?:怀孕|生育|生孩子|要孩子|结婚)",
        r"(?:妊娠|孕检|怀孕)(?:检查|测试|检测)|(?:检查|测试)是否怀孕",
        r"承诺不(?:怀孕|生育)",
    ),
]

# --- fees charged to workers -----------------------------------------------------------

_FEE_WORDS = (
    r"押金|保证金|风险金|抵押金|培训费|服装费|工服费|工衣费|工装费|体检费|介绍费|中介费|"
    r"报名费|办证费|资料费|手续费|建档费|信息费|岗前费"
)
_FEE = re.compile(_FEE_WORDS)
# What around a fee word says the worker does not pay it.
_FEE_WAIVED = re.compile(
    r"不收|无需|不需|不用|免|无(?!法)|报销|(?:公司|单位|厂里|厂方|企业|老板|我方|雇主)(?:全额)?(?:承担|负责|出|支付|报)|"
    r"由(?:公司|单位|厂里|厂方|企业|老板|雇主)|不得|禁止|严禁|零"
)
_SELF_PAID = re.compile(
    rf"(?:体检|培训|服装|工服|工衣|工装|办证){_STOP}{{0,4}}(?:自费|自理|自付|本人承担|个人承担|自己承担|自己出|从工资中?扣)"
)
_ID_RETENTION = re.compile(
    rf"(?:押|扣押|扣留|暂扣|收取|上交|留存)(?:身份证|证件|毕业证)(?:原件)?|(?:身份证|证件)(?:原件)?{_STOP}{{0,3}}(?:押|扣押|抵押)"
)


def _clauses(text: str) -> list[str]:
    return [c for c in re.split(r"[，。；！？,.;!?\n]", text) if c]


def fee_flags(text: str) -> list[Flag]:
    flags: dict[str, Flag] = {}
    for clause in _clauses(text):
        for match in _FEE.finditer(clause):
            if _FEE_WAIVED.search(clause):
                continue
            flags.setdefault(
                "worker_fee",
                Flag("worker_fee", f"「{clause}」：向劳动者收取{match.group()}。{FEE_LAW}", True),
            )
        self_paid = _SELF_PAID.search(clause)
        if self_paid and "worker_fee" not in flags:
            flags["worker_fee"] = Flag(
                "worker_fee", f"「{self_paid.group()}」：由劳动者承担费用。{FEE_LAW}", True
            )
        retention = _ID_RETENTION.search(clause)
        if retention and not re.search(r"不得|禁止|严禁|不会|不|无", clause[: retention.start()]):
            flags.setdefault(
                "id_card_retention",
                Flag("id_card_retention", f"「{retention.group()}」：{ID_LAW}", True),
            )
    return list(flags.values())


def requirement_flags(text: str) -> list[Flag]:
    cleaned = _NEUTRAL.sub("，", text)
    flags: dict[str, Flag] = {}
    for pattern in REQUIREMENT_PATTERNS:
        if pattern.code in flags:
            continue
        match = pattern.regex.search(cleaned)
        if match:
            flags[pattern.code] = Flag(pattern.code, f"「{match.group()}」：{pattern.law}", True)
    return list(flags.values())


# --- age -------------------------------------------------------------------------------


def check_ages(age_min: int | None, age_max: int | None) -> None:
    """Refuse ages no lawful job can ask for (``Invalid``)."""
    if age_min is not None and age_min < MIN_AGE:
        raise Invalid(
            "age_min", f"最低年龄不得低于 {MIN_AGE} 周岁（劳动法禁止招用未满 16 周岁的未成年人）"
        )
    if age_max is not None and age_max < MIN_AGE:
        raise Invalid("age_max", f"最高年龄不得低于 {MIN_AGE} 周岁")
    if age_min is not None and age_max is not None and age_min > age_max:
        raise Invalid("age_max", "最高年龄不能小于最低年龄")


def age_flags(age_max: int | None) -> list[Flag]:
    if age_max is None or age_max >= LOW_AGE_CEILING:
        return []
    return [
        Flag(
            "age_ceiling_low",
            f"年龄上限 {age_max} 岁远低于法定退休年龄；除岗位确有需要外，不应设置年龄门槛排除大龄劳动者",
            False,
        )
    ]


# --- likely duplicates ---------------------------------------------------------------

DUPLICATE_TITLE_CUTOFF = 85.0
DUPLICATE_TEXT_CUTOFF = 80.0


@dataclass(frozen=True)
class Posting:
    """What the duplicate check compares: one live job of the same organisation."""

    id: int
    title: str
    description: str
    work_region_code: str


def similarity(a: Posting, b: Posting) -> float | None:
    """0–100 when two postings read as the same job in the same place, else None.

    Same place: the same district in Chongqing (the first 6 digits), or the same code
    elsewhere. A chain posting 服务员 in two districts posts two jobs."""
    if a.work_region_code[:6] != b.work_region_code[:6]:
        return None
    title = fuzz.ratio(a.title, b.title)
    if title < DUPLICATE_TITLE_CUTOFF:
        return None
    if not a.description and not b.description:
        return title
    text = fuzz.ratio(a.description, b.description)
    if text < DUPLICATE_TEXT_CUTOFF:
        return None
    return round((title + text) / 2, 1)


def duplicate_flags(job: Posting, others: Iterable[Posting]) -> list[Flag]:
    hits = sorted(
        ((score, other) for other in others if other.id != job.id
         and (score := similarity(job, other)) is not None),
        key=lambda hit: (-hit[0], hit[1].id),
    )  # fmt: skip
    if not hits:
        return []
    listed = "、".join(
        f"{other.id}（{other.title}，相似度 {score:.0f}%）" for score, other in hits[:3]
    )
    return [
        Flag(
            "likely_duplicate",
            f"与本单位在招的岗位 {listed} 可能重复；请确认是否为同一岗位",
            False,
        )
    ]


# --- all together ----------------------------------------------------------------------


def job_text(title: str, description: str, certificates: Sequence[str]) -> str:
    return "\n".join([title, description, *certificates])


def all_flags(
    *,
    title: str,
    description: str,
    certificates: Sequence[str],
    wage_min_fen: int,
    wage_max_fen: int,
    wage_unit: str,
    work_region_code: str,
    age_max: int | None,
    duplicates_of: Posting | None = None,
    live_postings: Iterable[Posting] = (),
) -> list[Flag]:
    text = job_text(title, description, certificates)
    flags = [
        *requirement_flags(text),
        *fee_flags(text),
        *wage_flags(wage_min_fen, wage_max_fen, wage_unit, work_region_code),
        *age_flags(age_max),
    ]
    if duplicates_of is not None:
        flags += duplicate_flags(duplicates_of, live_postings)
    return flags


def blocking(flags: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [flag for flag in flags if flag.get("blocking")]
