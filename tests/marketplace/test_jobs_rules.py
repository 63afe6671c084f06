"""Posting flags: each rule on phrases it must catch and phrases it must leave alone."""

from __future__ import annotations

import pytest

from marketplace.errors import Invalid
from marketplace.jobs.rules import (
    Flag,
    Posting,
    all_flags,
    check_ages,
    duplicate_flags,
    fee_flags,
    requirement_flags,
    wage_area,
    wage_flags,
)

YUZHONG = "500103"  # 一类区域
WUXI = "500238"  # 二类区域 (巫溪县)


def codes(flags: list[Flag]) -> set[str]:
    return {flag.code for flag in flags}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("招普工，限男性，能吃苦", "gender_requirement"),
        ("仅限女性，手巧", "gender_requirement"),
        ("男性优先", "gender_requirement"),
        ("急招女工50名", "gender_requirement"),
        ("男工10名，女工5名", "gender_requirement"),
        ("女士勿扰", "gender_requirement"),
        ("不招女工", "gender_requirement"),
        ("只招男的", "gender_requirement"),
        ("限汉族", "ethnicity_requirement"),
        ("汉族优先", "ethnicity_requirement"),
        ("少数民族勿扰", "ethnicity_requirement"),
        ("谢绝藏族、彝族", "ethnicity_requirement"),
        ("限本地户口", "hukou_requirement"),
        ("仅限重庆户籍", "hukou_requirement"),
        ("城镇户口优先", "hukou_requirement"),
        ("外地人勿扰", "hukou_requirement"),
        ("只要本地人", "hukou_requirement"),
        ("农村户口不要", "hukou_requirement"),
        ("限未婚", "marital_requirement"),
        ("已婚已育优先", "marital_requirement"),
        ("要求单身", "marital_requirement"),
        ("女工，已婚已育", "marital_requirement"),
        ("孕妇勿扰", "pregnancy_requirement"),
        ("入职两年内不得怀孕", "pregnancy_requirement"),
        ("入职体检含妊娠检查", "pregnancy_requirement"),
        ("哺乳期除外", "pregnancy_requirement"),
        ("需承诺不生育", "pregnancy_requirement"),
    ],
)
def test_unlawful_requirements_are_caught_and_block(text: str, code: str) -> None:
    flags = requirement_flags(text)
    assert code in codes(flags)
    assert all(flag.blocking for flag in flags)
    assert "「" in flags[0].message  # names the phrase


@pytest.mark.parametrize(
    "text",
    [
        "男女不限，年龄18-50岁",
        "不限男女，吃苦耐劳",
        "性别不限，户籍不限，民族不限",
        "不限户籍，农村劳动者优先",  # a preference for rural workers is the programme's aim
        "男女宿舍分开，夫妻可安排夫妻房",
        "女装车间缝纫工，计件",
        "工作地点：酉阳土家族苗族自治县",
        "少数民族地区项目，提供清真餐",
        "婚否不限，有电焊证",
        "依法保障女职工孕期、产期、哺乳期待遇",
        "男装、女装均有，负责整烫",
        "协助办理居住证，户口所在地不限",
        "限高3米以下作业",
        "需持有效电工证",
    ],
)
def test_lawful_phrases_are_left_alone(text: str) -> None:
    assert requirement_flags(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "入职交押金500元，满三个月退还",
        "收取服装费200元",
        "体检费由本人承担",
        "体检自费",
        "介绍费300元",
        "需交培训费",
        "工服费从工资扣",
        "保证金1000元",
    ],
)
def test_fees_charged_to_workers_block(text: str) -> None:
    flags = fee_flags(text)
    assert codes(flags) == {"worker_fee"}
    assert flags[0].blocking


@pytest.mark.parametrize(
    "text",
    [
        "无押金，不收任何费用",
        "免押金，免费体检",
        "体检费公司承担",
        "体检费入职后报销",
        "工服由公司免费提供",
        "不收取介绍费、中介费",
        "严禁向劳动者收取押金",
        "由公司统一组织培训，培训费由公司出",
    ],
)
def test_waived_fees_are_left_alone(text: str) -> None:
    assert fee_flags(text) == []


def test_keeping_identity_cards_blocks_but_refusing_to_does_not() -> None:
    assert codes(fee_flags("入职押身份证原件")) == {"id_card_retention"}
    assert fee_flags("公司不扣押身份证") == []
    assert fee_flags("入职请携带身份证原件") == []


def test_wage_areas_follow_districts_and_counties() -> None:
    assert wage_area(YUZHONG) == 1
    assert wage_area("500101001001") == 1  # 万州区, a village in it
    assert wage_area(WUXI) == 2
    assert wage_area("440300") is None  # 深圳: its own minimum applies


@pytest.mark.parametrize(
    ("low", "high", "unit", "region", "expected"),
    [
        (180_000, 190_000, "month", YUZHONG, "wage_below_minimum"),
        (200_000, 200_000, "month", YUZHONG, "wage_below_minimum"),  # fine in 二类, not 一类
        (200_000, 200_000, "month", WUXI, None),
        (190_000, 450_000, "month", YUZHONG, "wage_range_below_minimum"),
        (2_000, 2_500, "hour", YUZHONG, "wage_range_below_minimum"),
        (2_100, 2_500, "hour", YUZHONG, None),
        (9_000, 9_500, "day", YUZHONG, "wage_below_minimum"),  # 2100/21.75 = 96.55
        (9_700, 12_000, "day", YUZHONG, None),
        (9_200, 12_000, "day", WUXI, None),  # 2000/21.75 = 91.95
        (100, 200, "piece", YUZHONG, None),  # piece rates are not compared
        (100_000, 120_000, "month", "440300", None),  # outside Chongqing: not ours to judge
    ],
)
def test_minimum_wage(low: int, high: int, unit: str, region: str, expected: str | None) -> None:
    flags = wage_flags(low, high, unit, region)
    assert (flags[0].code if flags else None) == expected
    if flags:
        assert flags[0].blocking == (expected == "wage_below_minimum")
        assert "最低工资标准" in flags[0].message


def test_ages_within_the_law() -> None:
    check_ages(16, 60)
    check_ages(None, None)
    with pytest.raises(Invalid) as low:
        check_ages(15, 40)
    assert low.value.field == "age_min"
    with pytest.raises(Invalid) as crossed:
        check_ages(40, 30)
    assert crossed.value.field == "age_max"


def _posting(id_: int, title: str, text: str, region: str = YUZHONG) -> Posting:
    return Posting(id=id_, title=title, description=text, work_region_code=region)


def test_a_reposted_job_is_a_likely_duplicate_but_not_a_different_one() -> None:
    job = _posting(0, "电焊工", "招熟练电焊工，会二保焊，日结300元，包吃住")
    others = [
        _posting(7, "电焊工", "招熟练电焊工，会二保焊，日结300，包吃住"),
        _posting(8, "电工", "招电工，持证，日结300元，包吃住"),  # another trade
        _posting(9, "电焊工", "招熟练电焊工，会二保焊，日结300元，包吃住", WUXI),  # elsewhere
    ]
    flags = duplicate_flags(job, others)
    assert codes(flags) == {"likely_duplicate"}
    assert "7" in flags[0].message
    assert "8（" not in flags[0].message
    assert "9（" not in flags[0].message
    assert not flags[0].blocking


def test_a_clean_job_has_no_flags() -> None:
    flags = all_flags(
        title="钢筋工",
        description="男女不限，18-55岁，包吃住，月结，无押金",
        certificates=[],
        wage_min_fen=600_000,
        wage_max_fen=800_000,
        wage_unit="month",
        work_region_code=YUZHONG,
        age_max=55,
    )
    assert flags == []
