"""Points (积分): pure rules. Component formulas, the weighted score, ranks, lines,
and what would close a gap. No database here; docs/scoring.md has a worked example.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from marketplace.clock import SHANGHAI
from marketplace.errors import Invalid

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

# Rate components: a numerator over a denominator, normalised to 0-100.
RATE_COMPONENTS = ("login_activity", "register_update", "task_completion", "job_match")
# Components that are not rates: training days against the yearly rule, the exam.
LEVEL_COMPONENTS = ("training_days", "exam_score")
COMPONENTS = RATE_COMPONENTS + LEVEL_COMPONENTS

LABELS = {
    "login_activity": "登录活跃度",
    "register_update": "名册更新率",
    "task_completion": "任务完成率",
    "job_match": "岗位匹配率",
    "training_days": "培训天数",
    "exam_score": "考试成绩",
    "spot_check_failures": "抽查未通过",
    "arrears_resolved": "欠薪化解",
}
# What one more unit of a component's numerator is, for "what would close the gap".
UNITS = {
    "login_activity": ("再登录", "个工作日"),
    "register_update": ("再核实或更新", "名劳动者"),
    "task_completion": ("再按期完成", "项任务"),
    "job_match": ("再促成", "人上岗"),
    "training_days": ("再参加", "天培训"),
}
TRAINING_DAYS_REQUIRED = 4


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A calendar month in Chongqing time, as ``[start, end)`` in UTC."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str, field_name: str = "period") -> Period:
        match = _PERIOD.match(text or "")
        if not match:
            raise Invalid(field_name, "期间格式应为 YYYY-MM，例如 2026-11")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    @property
    def start(self) -> datetime:
        return _local_midnight(self.first_day)

    @property
    def end(self) -> datetime:
        return _local_midnight(self.last_day + timedelta(days=1))

    @property
    def year_start(self) -> datetime:
        return _local_midnight(date(self.year, 1, 1))

    def previous(self) -> Period:
        return Period(self.year - 1, 12) if self.month == 1 else Period(self.year, self.month - 1)

    def back(self, months: int) -> Period:
        period = self
        for _ in range(months):
            period = period.previous()
        return period


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(UTC)


def working_days(first: date, last: date) -> int:
    """Monday to Friday in ``[first, last]``. Statutory holidays and the weekend days
    swapped for them are not modelled (docs/scoring.md)."""
    if last < first:
        return 0
    total = (last - first).days + 1
    weeks, extra = divmod(total, 7)
    days = weeks * 5
    for offset in range(extra):
        if (first + timedelta(days=weeks * 7 + offset)).weekday() < 5:
            days += 1
    return days


# ----------------------------------------------------------------------- the model

DEFAULT_MODEL: dict[str, Any] = {
    "components": {
        "login_activity": {"weight": 15, "min_count": 5, "when_none": "exclude"},
        "register_update": {"weight": 25, "min_count": 10, "when_none": "zero"},
        "task_completion": {"weight": 25, "min_count": 3, "when_none": "exclude"},
        "job_match": {"weight": 20, "min_count": 3, "when_none": "zero"},
        "training_days": {"weight": 10},
        "exam_score": {"weight": 5, "when_none": "zero"},
    },
    "spot_check_penalty": 5,
    "spot_check_penalty_cap": 20,
    "arrears_bonus": 2,
    "arrears_bonus_cap": 6,
    "promotion_share": 0.10,
    "elimination_share": 0.10,
    "pass_line": 60,
    "grades": [[90, "优秀"], [75, "良好"], [60, "合格"], [0, "不合格"]],
}


@dataclass(frozen=True)
class ComponentRule:
    weight: float
    min_count: int = 0
    when_none: str = "exclude"  # zero | exclude


@dataclass(frozen=True)
class ScoreModelRules:
    components: Mapping[str, ComponentRule]
    spot_check_penalty: float
    spot_check_penalty_cap: float
    arrears_bonus: float
    arrears_bonus_cap: float
    promotion_share: float
    elimination_share: float
    pass_line: float
    grades: Sequence[tuple[float, str]]


def _number(raw: Mapping[str, Any], key: str, where: str, low: float, high: float) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{where}{key}", "应为数字")
    if not low <= value <= high:
        raise Invalid(f"{where}{key}", f"应在 {low:g} 到 {high:g} 之间")
    return float(value)


def parse_model(raw: Mapping[str, Any]) -> ScoreModelRules:
    """Validate a model's JSON; every problem names its field."""
    if not isinstance(raw, Mapping):
        raise Invalid("model", "应为对象")
    comps = raw.get("components")
    if not isinstance(comps, Mapping) or not comps:
        raise Invalid("components", "至少需要一个计分项")
    unknown = sorted(set(comps) - set(COMPONENTS))
    if unknown:
        raise Invalid(f"components.{unknown[0]}", "未知的计分项")
    components: dict[str, ComponentRule] = {}
    for name, spec in comps.items():
        where = f"components.{name}."
        if not isinstance(spec, Mapping):
            raise Invalid(f"components.{name}", "应为对象")
        weight = _number(spec, "weight", where, 0, 100)
        min_count = int(
            _number({"min_count": spec.get("min_count", 0)}, "min_count", where, 0, 1000)
        )
        when_none = spec.get("when_none", "exclude")
        if when_none not in ("zero", "exclude"):
            raise Invalid(f"{where}when_none", "应为 zero 或 exclude")
        components[name] = ComponentRule(weight, min_count, when_none)
    if sum(rule.weight for rule in components.values()) <= 0:
        raise Invalid("components", "权重之和必须大于 0")
    grades_raw = raw.get("grades", DEFAULT_MODEL["grades"])
    try:
        grades = sorted(((float(line), str(label)) for line, label in grades_raw), reverse=True)
    except (TypeError, ValueError) as exc:
        raise Invalid("grades", "应为 [分数线, 等级] 的列表") from exc
    if not grades or grades[-1][0] > 0:
        raise Invalid("grades", "最低一档的分数线应为 0")
    return ScoreModelRules(
        components=components,
        spot_check_penalty=_number(raw, "spot_check_penalty", "", 0, 100),
        spot_check_penalty_cap=_number(raw, "spot_check_penalty_cap", "", 0, 100),
        arrears_bonus=_number(raw, "arrears_bonus", "", 0, 100),
        arrears_bonus_cap=_number(raw, "arrears_bonus_cap", "", 0, 100),
        promotion_share=_number(raw, "promotion_share", "", 0, 0.5),
        elimination_share=_number(raw, "elimination_share", "", 0, 0.5),
        pass_line=_number(raw, "pass_line", "", 0, 100),
        grades=grades,
    )


# ------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Counts:
    """A component's input: ``num`` of ``den`` (e.g. 18 of 21 working days)."""

    num: float
    den: float


@dataclass
class BrokerInputs:
    """Everything one broker's score is computed from, recorded with the score."""

    broker_id: int
    rates: dict[str, Counts] = field(default_factory=dict)  # RATE_COMPONENTS
    training_days: float = 0.0
    exam_score: float | None = None
    spot_check_failures: int = 0
    arrears_resolved: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "rates": {k: [v.num, v.den] for k, v in sorted(self.rates.items())},
            "training_days": self.training_days,
            "exam_score": self.exam_score,
            "spot_check_failures": self.spot_check_failures,
            "arrears_resolved": self.arrears_resolved,
        }


@dataclass(frozen=True)
class Component:
    name: str
    value: float | None  # 0-100; None when excluded for lack of activity
    weight: float
    points: float  # contribution to the total (negative for a penalty)
    explanation: str
    num: float | None = None
    den: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": LABELS[self.name],
            "value": self.value,
            "weight": self.weight,
            "points": self.points,
            "explanation": self.explanation,
            "num": self.num,
            "den": self.den,
        }


@dataclass(frozen=True)
class Scored:
    broker_id: int
    score: float
    components: list[Component]
    grade: str
    passed: bool


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _rate(name: str, rule: ComponentRule, counts: Counts, prior: float) -> tuple[float | None, str]:
    """Value 0-100 of a rate component and its explanation. Too little activity is
    handled explicitly: none at all follows ``when_none``; fewer than ``min_count``
    is shrunk toward the city average (``prior``), so one lucky try is not 100."""
    label = LABELS[name]
    num, den = counts.num, counts.den
    if den <= 0:
        if rule.when_none == "zero":
            return 0.0, f"{label}：本期没有可计算的记录，按 0 分计"
        return None, f"{label}：本期没有可计算的记录，不计入总分（权重由其他项分摊）"
    raw = min(max(num / den, 0.0), 1.0)
    if den < rule.min_count:
        m = rule.min_count
        shrunk = (num + prior * m) / (den + m)
        value = round(min(max(shrunk, 0.0), 1.0) * 100, 2)
        return value, (
            f"{label}：{_fmt(num)}/{_fmt(den)}，样本少于 {m}，"
            f"按全市平均 {prior * 100:.0f}% 修正为 {value:.1f}"
        )
    value = round(raw * 100, 2)
    return value, f"{label}：{_fmt(num)}/{_fmt(den)} = {value:.1f}%"


def score_broker(
    model: ScoreModelRules, inputs: BrokerInputs, priors: Mapping[str, float]
) -> Scored:
    """The broker's score: the weighted mean of the included components, minus the
    spot-check penalty, plus the arrears bonus, clamped to 0-100."""
    values: list[tuple[str, float | None, str, float | None, float | None]] = []
    for name, rule in model.components.items():
        if name in RATE_COMPONENTS:
            counts = inputs.rates.get(name, Counts(0, 0))
            value, why = _rate(name, rule, counts, priors.get(name, 0.0))
            values.append((name, value, why, counts.num, counts.den))
        elif name == "training_days":
            days = inputs.training_days
            value = round(min(days / TRAINING_DAYS_REQUIRED, 1.0) * 100, 2)
            why = f"培训天数：本年已参加 {_fmt(days)} 天，要求 {TRAINING_DAYS_REQUIRED} 天"
            values.append((name, value, why, days, float(TRAINING_DAYS_REQUIRED)))
        else:  # exam_score
            if inputs.exam_score is None:
                if rule.when_none == "zero":
                    values.append((name, 0.0, "考试成绩：没有考试记录，按 0 分计", None, None))
                else:
                    values.append((name, None, "考试成绩：没有考试记录，不计入总分", None, None))
            else:
                exam = min(max(inputs.exam_score, 0.0), 100.0)
                values.append((name, exam, f"考试成绩：最近一次 {_fmt(exam)} 分", exam, 100.0))
    total_weight = sum(model.components[n].weight for n, v, *_ in values if v is not None)
    components: list[Component] = []
    base = 0.0
    for name, value, why, num, den in values:
        weight = model.components[name].weight
        points = 0.0
        if value is not None and total_weight > 0:
            points = round(value * weight / total_weight, 2)
            base += value * weight / total_weight
        components.append(Component(name, value, weight, points, why, num, den))
    penalty = min(
        inputs.spot_check_failures * model.spot_check_penalty, model.spot_check_penalty_cap
    )
    components.append(
        Component(
            "spot_check_failures",
            None,
            model.spot_check_penalty,
            -round(penalty, 2) if penalty else 0.0,
            f"抽查未通过 {inputs.spot_check_failures} 次，每次扣 {_fmt(model.spot_check_penalty)} 分"
            f"（最多扣 {_fmt(model.spot_check_penalty_cap)} 分）",
            float(inputs.spot_check_failures),
            None,
        )
    )
    bonus = min(inputs.arrears_resolved * model.arrears_bonus, model.arrears_bonus_cap)
    components.append(
        Component(
            "arrears_resolved",
            None,
            model.arrears_bonus,
            round(bonus, 2),
            f"协助化解欠薪 {inputs.arrears_resolved} 件，每件加 {_fmt(model.arrears_bonus)} 分"
            f"（最多加 {_fmt(model.arrears_bonus_cap)} 分）",
            float(inputs.arrears_resolved),
            None,
        )
    )
    score = round(min(max(base - penalty + bonus, 0.0), 100.0), 2)
    return Scored(
        inputs.broker_id, score, components, grade_of(model, score), score >= model.pass_line
    )


def grade_of(model: ScoreModelRules, score: float) -> str:
    for line, label in model.grades:
        if score >= line:
            return label
    return model.grades[-1][1]


def priors(inputs: Iterable[BrokerInputs]) -> dict[str, float]:
    """City-wide pooled rate per component this period, the target of shrinkage."""
    num: dict[str, float] = {}
    den: dict[str, float] = {}
    for item in inputs:
        for name, counts in item.rates.items():
            num[name] = num.get(name, 0.0) + counts.num
            den[name] = den.get(name, 0.0) + counts.den
    return {name: (num[name] / den[name] if den[name] > 0 else 0.0) for name in den}


# ------------------------------------------------------------------- ranks and lines


def competition_ranks(scores: Mapping[int, float]) -> dict[int, int]:
    """1, 2, 2, 4: equal scores share a rank; ordering is by score only."""
    ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    ranks: dict[int, int] = {}
    previous: float | None = None
    rank = 0
    for position, (broker_id, score) in enumerate(ordered, start=1):
        if score != previous:
            rank = position
            previous = score
        ranks[broker_id] = rank
    return ranks


def share_size(count: int, share: float) -> int:
    """How many brokers a share covers: at least one in any group that has brokers."""
    return 0 if count == 0 or share <= 0 else max(1, math.ceil(count * share))


@dataclass(frozen=True)
class Lines:
    promotion: float | None  # the lowest score still in the top share
    elimination: float | None  # the highest score still in the bottom share


def lines(scores: Sequence[float], promotion_share: float, elimination_share: float) -> Lines:
    ordered = sorted(scores, reverse=True)
    top = share_size(len(ordered), promotion_share)
    bottom = share_size(len(ordered), elimination_share)
    return Lines(
        promotion=ordered[top - 1] if top else None,
        elimination=ordered[len(ordered) - bottom] if bottom else None,
    )


def in_top(score: float, line_: Lines) -> bool:
    return line_.promotion is not None and score >= line_.promotion


def in_bottom(score: float, line_: Lines, count: int) -> bool:
    # A lone broker, or a district where everyone ties, is not "the bottom".
    return (
        line_.elimination is not None
        and count > 1
        and score <= line_.elimination
        and line_.promotion != line_.elimination
    )


# ------------------------------------------------------------ what would close it


@dataclass(frozen=True)
class Suggestion:
    component: str
    units: int
    component_gain: float
    total_gain: float
    message: str


def close_gap(model: ScoreModelRules, scored: Scored, gap: float) -> list[Suggestion]:
    """For each component with room left, how many more units (verified workers,
    completed tasks, active days, hires, training days) raise the total by ``gap``
    on their own. Fewest units first."""
    if gap <= 0:
        return []
    included = [c for c in scored.components if c.value is not None and c.name in model.components]
    total_weight = sum(c.weight for c in included)
    out: list[Suggestion] = []
    for comp in included:
        if comp.name not in UNITS or comp.den is None or comp.num is None or comp.den <= 0:
            continue
        room = comp.den - comp.num
        if room <= 0:
            continue
        rule = model.components[comp.name]
        # Under the sample threshold the rate is shrunk: one unit moves it less.
        shrink = rule.min_count if comp.name in RATE_COMPONENTS and comp.den < rule.min_count else 0
        per_unit_value = 100.0 / (comp.den + shrink)
        per_unit_total = per_unit_value * comp.weight / total_weight
        if per_unit_total <= 0:
            continue
        units = math.ceil(gap / per_unit_total - 1e-9)
        if units > room:
            continue
        verb, noun = UNITS[comp.name]
        gain = per_unit_value * units
        out.append(
            Suggestion(
                comp.name,
                units,
                round(gain, 1),
                round(per_unit_total * units, 1),
                f"{verb} {units} {noun}，{LABELS[comp.name]}提高 {gain:.1f} 分，"
                f"总分提高 {per_unit_total * units:.1f} 分",
            )
        )
    return sorted(out, key=lambda s: (s.units, s.component))
