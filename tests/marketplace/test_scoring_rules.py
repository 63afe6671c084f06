"""The points formulas on their edge cases: no activity, small samples, caps,
ranks with ties, the promotion and elimination lines, and gap suggestions."""

from __future__ import annotations

from datetime import date

import pytest

from marketplace.errors import Invalid
from marketplace.scoring import rules
from marketplace.scoring.rules import BrokerInputs, Counts, Period

MODEL = rules.parse_model(rules.DEFAULT_MODEL)


def inputs(**rates: tuple[float, float]) -> BrokerInputs:
    item = BrokerInputs(broker_id=1, training_days=4, exam_score=100)
    for name, (num, den) in rates.items():
        item.rates[name] = Counts(num, den)
    return item


def component(scored: rules.Scored, name: str) -> rules.Component:
    return next(c for c in scored.components if c.name == name)


def full(**overrides: tuple[float, float]) -> BrokerInputs:
    base = {
        "login_activity": (20, 20),
        "register_update": (100, 100),
        "task_completion": (10, 10),
        "job_match": (10, 10),
    }
    base.update(overrides)
    return inputs(**base)


def test_period_bounds_are_chongqing_months() -> None:
    period = Period.parse("2026-11")
    assert period.start.isoformat() == "2026-10-31T16:00:00+00:00"
    assert period.end.isoformat() == "2026-11-30T16:00:00+00:00"
    assert str(Period.parse("2026-01").previous()) == "2025-12"
    for bad in ("2026-13", "2026-1", "", "26-11", "2026-00"):
        with pytest.raises(Invalid) as err:
            Period.parse(bad)
        assert err.value.field == "period"


def test_working_days_count_weekdays_only() -> None:
    assert rules.working_days(date(2026, 11, 1), date(2026, 11, 30)) == 21
    assert rules.working_days(date(2026, 11, 28), date(2026, 11, 29)) == 0  # a weekend
    assert rules.working_days(date(2026, 11, 30), date(2026, 11, 1)) == 0


def test_perfect_broker_scores_100_and_passes() -> None:
    scored = rules.score_broker(MODEL, full(), {})
    assert scored.score == 100
    assert scored.grade == "优秀"
    assert scored.passed


def test_rate_is_numerator_over_denominator() -> None:
    scored = rules.score_broker(MODEL, full(register_update=(40, 100)), {})
    comp = component(scored, "register_update")
    assert comp.value == 40
    assert "40/100" in comp.explanation
    # 25 of 100 weight points at 40 % instead of 100 %: 15 points lost.
    assert scored.score == 85


def test_no_activity_is_never_divided_by_zero_nor_full_marks() -> None:
    # Register empty → "zero" policy: 0 points, said so.
    scored = rules.score_broker(MODEL, full(register_update=(0, 0)), {})
    comp = component(scored, "register_update")
    assert comp.value == 0
    assert "按 0 分计" in comp.explanation
    assert scored.score == 75
    # No tasks claimed → "exclude" policy: not counted, weights shared by the rest.
    scored = rules.score_broker(MODEL, full(task_completion=(0, 0)), {})
    comp = component(scored, "task_completion")
    assert comp.value is None
    assert comp.points == 0
    assert "不计入" in comp.explanation
    assert scored.score == 100
    other = component(scored, "register_update")
    assert other.points == pytest.approx(25 / 75 * 100, abs=0.01)


def test_small_samples_shrink_toward_the_city_average() -> None:
    # One recommendation, one hire: not 100 %, pulled toward the city's 20 %.
    scored = rules.score_broker(MODEL, full(job_match=(1, 1)), {"job_match": 0.2})
    comp = component(scored, "job_match")
    assert comp.value == pytest.approx((1 + 0.2 * 3) / (1 + 3) * 100, abs=0.01)
    assert "样本少于 3" in comp.explanation
    # At the threshold the raw rate stands.
    scored = rules.score_broker(MODEL, full(job_match=(3, 3)), {"job_match": 0.2})
    assert component(scored, "job_match").value == 100


def test_training_days_and_exam() -> None:
    item = full()
    item.training_days = 2
    item.exam_score = None
    scored = rules.score_broker(MODEL, item, {})
    assert component(scored, "training_days").value == 50
    exam = component(scored, "exam_score")
    assert exam.value == 0
    assert "没有考试记录" in exam.explanation
    item.training_days = 9  # more than required is not more than full marks
    assert component(rules.score_broker(MODEL, item, {}), "training_days").value == 100


def test_penalty_and_bonus_are_capped_and_score_clamped() -> None:
    item = full()
    item.spot_check_failures = 10
    scored = rules.score_broker(MODEL, item, {})
    assert component(scored, "spot_check_failures").points == -20
    assert scored.score == 80
    item.spot_check_failures = 0
    item.arrears_resolved = 5
    assert rules.score_broker(MODEL, item, {}).score == 100  # clamped
    low = full(
        login_activity=(0, 20),
        register_update=(0, 100),
        task_completion=(0, 10),
        job_match=(0, 10),
    )
    low.training_days = 0
    low.exam_score = 0
    low.spot_check_failures = 3
    scored = rules.score_broker(MODEL, low, {})
    assert scored.score == 0
    assert not scored.passed
    assert scored.grade == "不合格"


def test_priors_pool_the_city() -> None:
    a = inputs(job_match=(1, 4))
    b = inputs(job_match=(3, 6))
    assert rules.priors([a, b])["job_match"] == pytest.approx(0.4)


def test_competition_ranks_share_ties() -> None:
    assert rules.competition_ranks({1: 90, 2: 80, 3: 80, 4: 70}) == {1: 1, 2: 2, 3: 2, 4: 4}


def test_lines_and_zones() -> None:
    scores = [float(s) for s in range(10, 110, 10)]  # 10 brokers: 10 … 100
    line = rules.lines(scores, 0.1, 0.1)
    assert line.promotion == 100
    assert line.elimination == 10
    assert rules.in_top(100, line)
    assert not rules.in_top(90, line)
    assert rules.in_bottom(10, line, 10)
    assert not rules.in_bottom(20, line, 10)
    # 15 brokers: 10 % is 1.5, so two in each zone.
    line = rules.lines([float(s) for s in range(15)], 0.1, 0.1)
    assert line.promotion == 13
    assert line.elimination == 1
    # A lone broker or a district that ties is not "the bottom".
    assert not rules.in_bottom(50, rules.lines([50.0], 0.1, 0.1), 1)
    assert not rules.in_bottom(50, rules.lines([50.0, 50.0, 50.0], 0.1, 0.1), 3)


def test_close_gap_says_what_to_do() -> None:
    scored = rules.score_broker(MODEL, full(register_update=(50, 100)), {})
    suggestions = rules.close_gap(MODEL, scored, 1.0)
    update = next(s for s in suggestions if s.component == "register_update")
    # One more verified worker: +1 point of update rate, +0.25 total → 4 workers.
    assert update.units == 4
    assert update.message.startswith("再核实或更新 4 名劳动者")
    assert rules.close_gap(MODEL, scored, 0) == []
    # A gap no single component can close yields nothing rather than a false promise.
    assert all(s.component != "login_activity" for s in rules.close_gap(MODEL, scored, 60))


def test_model_validation_names_the_field() -> None:
    bad = {**rules.DEFAULT_MODEL, "components": {"charm": {"weight": 5}}}
    with pytest.raises(Invalid) as err:
        rules.parse_model(bad)
    assert err.value.field == "components.charm"
    bad = {**rules.DEFAULT_MODEL, "pass_line": 120}
    with pytest.raises(Invalid) as err:
        rules.parse_model(bad)
    assert err.value.field == "pass_line"
    comps = {"login_activity": {"weight": 10, "when_none": "full"}}
    with pytest.raises(Invalid) as err:
        rules.parse_model({**rules.DEFAULT_MODEL, "components": comps})
    assert err.value.field == "components.login_activity.when_none"
