"""Ranking components: each scores what a broker would expect and says why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from matching.rank import (
    WEIGHTS,
    Certificate,
    JobProfile,
    Ranked,
    WorkerProfile,
    availability,
    certificates,
    distance,
    freshness,
    occupation,
    rank,
    score,
    wage,
)

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
TODAY = date(2026, 6, 1)
VILLAGE = "500101001001"  # a 万州区 village
SAME_TOWNSHIP = "500101001002"
SAME_DISTRICT = "500101002001"
OTHER_DISTRICT = "500238100200"
WELDER = JobProfile(occupation_code="welder", title="电焊工")


# --- occupation ------------------------------------------------------------------------


def test_exact_occupation_scores_full():
    c = occupation(WorkerProfile(occupation_codes=["welder"]), WELDER)
    assert c.score == 100
    assert "电焊工" in c.reason


def test_job_by_national_code_matches_the_key():
    c = occupation(
        WorkerProfile(occupation_codes=["welder"]), JobProfile(occupation_code="6-18-02-04")
    )
    assert c.score == 100


def test_skill_text_through_the_normaliser():
    c = occupation(WorkerProfile(skills=["会二保焊"]), WELDER)
    assert c.score == 90
    assert "二保焊" in c.reason


def test_same_family_is_half():
    c = occupation(WorkerProfile(occupation_codes=["rebar_worker"]), WELDER)
    assert c.score == 50
    assert "建筑施工" in c.reason


def test_similar_characters_are_not_the_same_trade():
    # 电工 and 电焊工 share characters (rapidfuzz 80) but are different trades: same
    # family at best, never the trade itself.
    c = occupation(WorkerProfile(skills=["电工"], occupation_codes=["electrician"]), WELDER)
    assert c.score == 50


def test_unrelated_occupation_scores_zero():
    c = occupation(WorkerProfile(occupation_codes=["chinese_cook"]), WELDER)
    assert c.score == 0
    assert "不是电焊工" in c.reason


def test_job_title_is_normalised_when_no_code():
    c = occupation(WorkerProfile(occupation_codes=["welder"]), JobProfile(title="招聘电焊工若干名"))
    assert c.score == 100


def test_job_without_an_occupation_is_neutral():
    c = occupation(WorkerProfile(occupation_codes=["welder"]), JobProfile(title="杂活"))
    assert c.score == 50
    assert "未对应" in c.reason


# --- distance and mobility ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_code", "points", "label"),
    [
        (VILLAGE, 100, "同村"),
        (SAME_TOWNSHIP, 90, "同乡镇"),
        (SAME_DISTRICT, 75, "同区县"),
        ("500101", 75, "同区县"),  # a job located only to its district
        (OTHER_DISTRICT, 50, "重庆市内其他区县"),
        (None, 30, "重庆市外"),
    ],
)
def test_proximity_over_the_region_tree(job_code, points, label):
    c = distance(WorkerProfile(region_code=VILLAGE), JobProfile(region_code=job_code))
    assert c.score == points
    assert label in c.reason


def test_local_worker_refuses_another_district():
    c = distance(
        WorkerProfile(region_code=VILLAGE, mobility="local"), JobProfile(region_code=OTHER_DISTRICT)
    )
    assert c.score == 0
    assert "只在本区县" in c.reason


def test_chongqing_worker_refuses_outside_chongqing_but_not_inside():
    worker = WorkerProfile(region_code=VILLAGE, mobility="chongqing")
    assert distance(worker, JobProfile(region_code=None)).score == 0
    assert distance(worker, JobProfile(region_code=OTHER_DISTRICT)).score == 80


def test_anywhere_worker_minds_distance_less():
    worker = WorkerProfile(region_code=VILLAGE, mobility="anywhere")
    far = distance(worker, JobProfile(region_code=None))
    near = distance(worker, JobProfile(region_code=VILLAGE))
    assert far.score == 79
    assert near.score == 100
    assert "愿去外地" in far.reason


# --- wage ----------------------------------------------------------------------------------


def test_offer_from_its_minimum_reaches_expectation():
    c = wage(
        WorkerProfile(wage_min_fen=300_00, wage_unit="day"),
        JobProfile(wage_min_fen=300_00, wage_max_fen=350_00, wage_unit="day"),
    )
    assert c.score == 100
    assert "300 元/天" in c.reason


def test_offer_reaching_expectation_only_at_its_maximum():
    c = wage(
        WorkerProfile(wage_min_fen=320_00, wage_unit="day"),
        JobProfile(wage_min_fen=300_00, wage_max_fen=350_00, wage_unit="day"),
    )
    assert c.score == 80


def test_short_offer_loses_30_points_per_10_percent():
    c = wage(
        WorkerProfile(wage_min_fen=400_00, wage_unit="day"),
        JobProfile(wage_min_fen=360_00, wage_max_fen=360_00, wage_unit="day"),
    )
    assert c.score == 70
    assert "低于期望" in c.reason
    assert "10%" in c.reason


def test_units_are_converted_to_months():
    # 300 a day is 6,525 a month (21.75 days): a 6,000-a-month offer is 8% short.
    c = wage(
        WorkerProfile(wage_min_fen=300_00, wage_unit="day"),
        JobProfile(wage_min_fen=6_000_00, wage_max_fen=6_000_00, wage_unit="month"),
    )
    assert 70 < c.score < 80
    assert "折算" in c.reason


def test_piece_rates_do_not_compare_with_time_rates():
    c = wage(
        WorkerProfile(wage_min_fen=300_00, wage_unit="day"),
        JobProfile(wage_min_fen=50, wage_max_fen=80, wage_unit="piece"),
    )
    assert c.score == 50
    assert "无法比较" in c.reason


def test_no_expectation_or_no_offer():
    assert wage(WorkerProfile(), JobProfile(wage_min_fen=1, wage_unit="day")).score == 70
    assert wage(WorkerProfile(wage_min_fen=300_00, wage_unit="day"), JobProfile()).score == 50


# --- availability ------------------------------------------------------------------------


def test_available_before_start():
    c = availability(
        WorkerProfile(available_from=date(2026, 6, 5)),
        JobProfile(starts_on=date(2026, 6, 10)),
        today=TODAY,
    )
    assert c.score == 100
    assert "6月5日" in c.reason


def test_late_start_loses_ten_points_per_three_days():
    c = availability(
        WorkerProfile(available_from=date(2026, 6, 16)),
        JobProfile(starts_on=date(2026, 6, 10)),
        today=TODAY,
    )
    assert c.score == 80
    assert "晚 6 天" in c.reason
    month_late = WorkerProfile(available_from=date(2026, 7, 20))
    assert availability(month_late, JobProfile(starts_on=date(2026, 6, 10)), today=TODAY).score == 0


@pytest.mark.parametrize(
    ("status", "points"),
    [("seeking", 100), ("unknown", 60), ("employed_away", 40), ("not_in_labour_force", 0)],
)
def test_availability_without_a_date_follows_status(status, points):
    c = availability(WorkerProfile(employment_status=status), JobProfile(), today=TODAY)
    assert c.score == points


# --- certificates --------------------------------------------------------------------------


def test_no_certificate_required():
    assert certificates(WorkerProfile(), JobProfile(), today=TODAY).score == 100


def test_certificate_held_inside_a_longer_name():
    c = certificates(
        WorkerProfile(certificates=[Certificate("特种作业操作证（焊工证）", date(2028, 1, 1))]),
        JobProfile(certificates_required=["焊工证"]),
        today=TODAY,
    )
    assert c.score == 100


def test_expired_and_missing_certificates_are_named():
    c = certificates(
        WorkerProfile(certificates=[Certificate("焊工证", date(2026, 6, 5))]),
        JobProfile(certificates_required=["焊工证", "高处作业证"], starts_on=date(2026, 6, 10)),
        today=TODAY,
    )
    assert c.score == 0
    assert "已过期：焊工证（2026-06-05到期）" in c.reason
    assert "缺少：高处作业证" in c.reason


def test_half_of_the_certificates():
    c = certificates(
        WorkerProfile(certificates=[Certificate("电工证")]),
        JobProfile(certificates_required=["电工证", "高处作业证"]),
        today=TODAY,
    )
    assert c.score == 50


# --- freshness -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age_days", "points"), [(10, 100), (90, 100), (227, 75), (365, 50), (366, 20)]
)
def test_freshness_by_age(age_days, points):
    c = freshness(WorkerProfile(last_verified_at=NOW - timedelta(days=age_days)), now=NOW)
    assert c.score == pytest.approx(points, abs=0.5)


def test_never_verified():
    c = freshness(WorkerProfile(), now=NOW)
    assert c.score == 20
    assert "从未" in c.reason


# --- the total ---------------------------------------------------------------------------


def test_total_is_the_weighted_sum_and_lists_every_component():
    ranked = score(
        WorkerProfile(
            occupation_codes=["welder"],
            region_code=VILLAGE,
            mobility="local",
            wage_min_fen=300_00,
            wage_unit="day",
            employment_status="seeking",
            last_verified_at=NOW,
        ),
        JobProfile(
            occupation_code="welder",
            region_code=VILLAGE,
            wage_min_fen=300_00,
            wage_max_fen=300_00,
            wage_unit="day",
        ),
        now=NOW,
    )
    assert ranked.score == 100
    assert [c.name for c in ranked.components] == list(WEIGHTS)
    assert all(c.reason for c in ranked.components)


def test_rank_orders_best_first():
    near = WorkerProfile(occupation_codes=["welder"], region_code=VILLAGE)
    far = WorkerProfile(occupation_codes=["welder"], region_code=OTHER_DISTRICT)
    cook = WorkerProfile(occupation_codes=["chinese_cook"], region_code=VILLAGE)
    job = JobProfile(occupation_code="welder", region_code=VILLAGE)
    ranked = rank([cook, far, near], lambda w: score(w, job, now=NOW), limit=2)
    assert [w for w, _ in ranked] == [near, far]


# --- the memo ----------------------------------------------------------------------------


def _profiles() -> list[WorkerProfile]:
    """Workers that differ in one value at a time from a base one."""
    base = WorkerProfile(
        occupation_codes=("welder",),
        skills=("电焊",),
        region_code=VILLAGE,
        mobility="local",
        wage_min_fen=300_00,
        wage_unit="day",
    )
    return [
        base,
        replace(base, occupation_codes=("rebar_worker",)),
        replace(base, occupation_codes=["rebar_worker"]),  # a list
        replace(base, occupation_codes=(), skills=("会二保焊",)),
        replace(base, occupation_codes=(), skills=("炒菜",)),
        replace(base, region_code=OTHER_DISTRICT),
        replace(base, mobility="anywhere"),
        replace(base, mobility=None),
        replace(base, wage_min_fen=500_00),
        replace(base, wage_min_fen=None, wage_max_fen=600_00),
        replace(base, wage_unit="month", wage_min_fen=9000_00),
    ]


JOBS = [
    JobProfile(
        occupation_code="welder",
        title="电焊工",
        region_code=SAME_DISTRICT,
        wage_min_fen=300_00,
        wage_max_fen=380_00,
        wage_unit="day",
    ),
    WELDER,
    JobProfile(occupation_code="welder", title="电焊工", region_code=SAME_DISTRICT),
    JobProfile(title="招聘电焊工若干名", region_code=OTHER_DISTRICT, wage_min_fen=250_00),
    JobProfile(
        occupation_code="rebar_worker",
        title="钢筋工",
        region_code=VILLAGE,
        wage_min_fen=280_00,
        wage_max_fen=350_00,
        wage_unit="day",
    ),
    JobProfile(title="杂活", wage_min_fen=6000_00, wage_unit="month"),
]


def _all_scores(order: int) -> dict[tuple[int, int], Ranked]:
    pairs = [(w, j) for w in range(len(_profiles())) for j in range(len(JOBS))][::order]
    workers = _profiles()
    return {(w, j): score(workers[w], JOBS[j], now=NOW, today=TODAY) for w, j in pairs}


def test_remembered_components_answer_for_every_value_they_read() -> None:
    """Occupation, distance and wage keep their answers; an answer is never one made
    for another worker or job (each differs from the base in one value, computed in
    both orders from an empty memo, and without the memo for occupation)."""
    from matching import rank as ranking
    from matching.taxonomy import load_taxonomy

    memos = (ranking._occupation_packaged, ranking._distance, ranking._wage)
    for memo in memos:
        memo.cache_clear()
    forward = _all_scores(1)
    for memo in memos:
        memo.cache_clear()
    assert _all_scores(-1) == forward
    assert all(memo.cache_info().hits for memo in memos)
    workers = _profiles()
    for (w, j), ranked in forward.items():
        fresh = occupation(workers[w], JOBS[j], load_taxonomy())  # the memo's bypass
        assert ranked.component("occupation") == fresh
    base = forward[(0, 0)]
    assert [w for w in range(1, len(workers)) if forward[(w, 0)] == base] == []
