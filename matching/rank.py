"""Score a worker against a job from named components, each with a reason in Chinese.

Pure: plain values in (``WorkerProfile``, ``JobProfile``), a ``Ranked`` out. Each
component scores 0-100 on its own scale; the total is the weighted sum (weights add up
to 100, so the total is 0-100 too). See docs/matching.md for the tables behind each
component, which a broker can read next to the reasons on screen.

| component      | weight | what it asks                                              |
| -------------- | ------ | --------------------------------------------------------- |
| occupation     | 35     | does the worker do this job (exact, same family, skills)  |
| distance       | 20     | how far is the work, and will the worker go that far      |
| wage           | 15     | does the offer reach what the worker expects (per unit)   |
| availability   | 15     | can the worker start by the job's start date              |
| certificates   | 10     | does the worker hold the required, unexpired certificates |
| freshness      | 5      | how recently the broker verified the record               |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TypeVar

from matching.normalize import default_normalizer
from matching.taxonomy import Occupation, Taxonomy, fold, load_taxonomy

WEIGHTS: dict[str, int] = {
    "occupation": 35,
    "distance": 20,
    "wage": 15,
    "availability": 15,
    "certificates": 10,
    "freshness": 5,
}
assert sum(WEIGHTS.values()) == 100

FAMILY_LABELS = {
    "construction": "建筑施工",
    "manufacturing": "制造加工",
    "logistics": "物流仓储",
    "domestic_care": "家政护理",
    "catering": "餐饮",
    "agriculture": "农林牧渔",
    "security_cleaning": "保安保洁",
    "transport": "交通运输",
    "mining": "采矿",
    "textile": "纺织服装",
    "ecommerce": "电商",
    "services": "生活服务",
}
UNIT_LABELS = {"hour": "小时", "day": "天", "month": "月", "piece": "件"}
# Monthly equivalents: the statutory 21.75 paid days a month and 8 hours a day
# (人社部 月计薪天数). Piece rates convert to nothing: they compare only with piece rates.
PER_MONTH = {"hour": 21.75 * 8, "day": 21.75, "month": 1.0}
CHONGQING = "50"
T = TypeVar("T")
# Occupation, distance and wage depend on a few values only (no date, no clock), and a
# job's pool repeats them (one village, one skill, round wages): each keeps its
# latest answers. Keyed on every value it reads, so an edited record is scored anew.
MEMO = 4096


@dataclass(frozen=True, slots=True)
class Certificate:
    type: str
    expires_on: date | None = None


@dataclass(frozen=True, slots=True)
class WorkerProfile:
    """What ranking reads of a worker (no personal identifiers)."""

    occupation_codes: Sequence[str] = ()  # taxonomy keys
    skills: Sequence[str] = ()  # as typed, for occupations the codes missed
    region_code: str | None = None  # where they live now (Chongqing code), else hukou
    mobility: str | None = None  # local | chongqing | anywhere
    wage_min_fen: int | None = None
    wage_max_fen: int | None = None
    wage_unit: str | None = None
    available_from: date | None = None
    employment_status: str = "unknown"
    certificates: Sequence[Certificate] = ()
    last_verified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobProfile:
    occupation_code: str | None = None  # taxonomy key or national code
    title: str = ""
    region_code: str | None = None  # Chongqing code at any level; None = outside Chongqing
    wage_min_fen: int | None = None
    wage_max_fen: int | None = None
    wage_unit: str | None = None
    starts_on: date | None = None
    certificates_required: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    score: float  # 0-100
    weight: int
    reason: str

    @property
    def weighted(self) -> float:
        return self.score * self.weight / 100


@dataclass(frozen=True, slots=True)
class Ranked:
    score: float  # 0-100
    components: tuple[Component, ...] = field(default=())

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)


def _c(name: str, score: float, reason: str) -> Component:
    return Component(name, round(max(0.0, min(100.0, score)), 1), WEIGHTS[name], reason)


# --- occupation ----------------------------------------------------------------------


def job_occupation(job: JobProfile, taxonomy: Taxonomy | None = None) -> Occupation | None:
    """The job's occupation: its code, else what its title normalises to (or None)."""
    if taxonomy is None:
        return _job_occupation(job.occupation_code, job.title)
    if job.occupation_code:
        occ = taxonomy.lookup(job.occupation_code)
        if occ is not None:
            return occ
    return _normalise(job.title) if job.title else None


@lru_cache(maxsize=10_000)
def _job_occupation(code: str | None, title: str) -> Occupation | None:
    """The packaged taxonomy's answer, cached: ranking asks it once per candidate."""
    return job_occupation(JobProfile(occupation_code=code, title=title), load_taxonomy())


@lru_cache(maxsize=50_000)
def _normalise(text: str) -> Occupation | None:
    match = default_normalizer().normalize(text)
    return load_taxonomy().get(match.key) if match else None


@lru_cache(maxsize=50_000)
def skill_keys(skill: str) -> tuple[tuple[str, str], ...]:
    """(occupation key, the skill text) for every occupation a skill names."""
    return tuple((m.key, skill) for m in default_normalizer().extract(skill))


def occupation(
    worker: WorkerProfile, job: JobProfile, taxonomy: Taxonomy | None = None
) -> Component:
    """Exact occupation 100; a registered skill that the normaliser maps onto the job's
    occupation 90; another occupation of the same family 50; else 0. rapidfuzz only
    repairs the spelling of a term inside the normaliser: characters in common
    (电工 ~ 电焊工) never count as a match here."""
    codes, skills = tuple(worker.occupation_codes), tuple(worker.skills)
    if taxonomy is None:  # the packaged taxonomy: the same answer for the same values
        return _occupation_packaged(codes, skills, job.occupation_code, job.title)
    return _occupation(codes, skills, job, taxonomy)


@lru_cache(maxsize=MEMO)
def _occupation_packaged(
    codes: tuple[str, ...], skills: tuple[str, ...], code: str | None, title: str
) -> Component:
    return _occupation(codes, skills, JobProfile(occupation_code=code, title=title), None)


def _occupation(
    codes: tuple[str, ...], skills: tuple[str, ...], job: JobProfile, taxonomy: Taxonomy | None
) -> Component:
    tax = taxonomy or load_taxonomy()
    wanted = job_occupation(job, taxonomy)
    if wanted is None:
        return _c("occupation", 50, f"岗位“{job.title[:20]}”未对应到标准职业，无法比对工种")
    if wanted.key in codes:
        return _c("occupation", 100, f"登记工种就是{wanted.name}")
    for skill in skills:
        for key, text in skill_keys(skill):
            if key == wanted.key:
                return _c("occupation", 90, f"技能“{text}”即{wanted.name}")
    own = [o for o in (tax.get(k) for k in codes) if o is not None]
    same = [o for o in own if o.family == wanted.family]
    if same:
        label = FAMILY_LABELS.get(wanted.family, wanted.family)
        return _c(
            "occupation", 50, f"会{same[0].name}，与{wanted.name}同属{label}类，需确认能否胜任"
        )
    if own:
        return _c(
            "occupation", 0, f"登记工种（{'、'.join(o.name for o in own[:3])}）不是{wanted.name}"
        )
    return _c("occupation", 0, f"未登记与{wanted.name}相关的技能")


# --- distance and mobility -----------------------------------------------------------

# (level, code length shared, label, proximity score)
_LEVELS = (
    ("village", 12, "同村（社区）", 100),
    ("township", 9, "同乡镇（街道）", 90),
    ("district", 6, "同区县", 75),
)
_MOBILITY_LABELS = {
    "local": "只在本区县务工",
    "chongqing": "愿在重庆市内务工",
    "anywhere": "愿去外地务工",
}


def _proximity(worker_code: str | None, job_code: str | None) -> tuple[str, int, str]:
    """(level, score, label): village / township / district / chongqing / elsewhere.
    A job located only to its district is "same district" for everyone inside it."""
    if job_code is None or not job_code.startswith(CHONGQING):
        return "elsewhere", 30, "岗位在重庆市外"
    if worker_code is None:
        return "chongqing", 50, "岗位在重庆市内（劳动者现居地未登记）"
    for level, length, label, points in _LEVELS:
        if len(job_code) >= length and worker_code[:length] == job_code[:length]:
            return level, points, label
    if len(job_code) < 6:
        return "chongqing", 50, "岗位在重庆市内"
    return "chongqing", 50, "岗位在重庆市内其他区县"


def distance(worker: WorkerProfile, job: JobProfile) -> Component:
    """Proximity over the region tree, then the worker's willingness to go that far:
    a job beyond it scores 0; within it, a worker who will go away minds the distance
    less (anywhere: 70 + 30% of proximity; chongqing: 60 + 40% inside Chongqing)."""
    return _distance(worker.region_code, worker.mobility, job.region_code)


@lru_cache(maxsize=MEMO)
def _distance(region_code: str | None, mobility: str | None, job_region: str | None) -> Component:
    level, proximity, label = _proximity(region_code, job_region)
    if mobility is None:
        return _c("distance", proximity, f"{label}；外出意愿未登记")
    willing = _MOBILITY_LABELS.get(mobility, "外出意愿未登记")
    if mobility == "local" and level in ("chongqing", "elsewhere"):
        return _c("distance", 0, f"{label}，本人{willing}")
    if mobility == "chongqing" and level == "elsewhere":
        return _c("distance", 0, f"{label}，本人只{willing}")
    if mobility == "anywhere":
        return _c("distance", 70 + 0.3 * proximity, f"{label}，本人{willing}")
    if mobility == "chongqing":
        return _c("distance", 60 + 0.4 * proximity, f"{label}，本人{willing}")
    return _c("distance", proximity, f"{label}，本人{willing}")


# --- wage ----------------------------------------------------------------------------


def yuan(fen: int, unit: str | None) -> str:
    per = UNIT_LABELS.get(unit or "", "")
    amount = f"{fen / 100:,.2f}".rstrip("0").rstrip(".")
    return f"{amount} 元/{per}" if per else f"{amount} 元"


def _monthly(fen: int, unit: str) -> float | None:
    factor = PER_MONTH.get(unit)
    return fen * factor if factor is not None else None


def wage(worker: WorkerProfile, job: JobProfile) -> Component:
    """The offer against the worker's lowest acceptable wage, in monthly equivalents
    when the units differ. Offer reaches it from its minimum 100, only at its maximum
    80; short of it, 30 points off per 10% short (33% short scores 0)."""
    want = worker.wage_min_fen or worker.wage_max_fen
    offer_max = job.wage_max_fen or job.wage_min_fen
    offer_min = job.wage_min_fen or job.wage_max_fen
    return _wage(want, worker.wage_unit, offer_min, offer_max, job.wage_unit)


@lru_cache(maxsize=MEMO)
def _wage(
    want: int | None,
    want_unit: str | None,
    offer_min: int | None,
    offer_max: int | None,
    unit: str | None,
) -> Component:
    if want is None or want_unit is None:
        return _c("wage", 70, "劳动者未登记期望工资")
    if offer_max is None or offer_min is None or unit is None:
        return _c("wage", 50, "岗位未写明工资")
    if want_unit == unit:
        want_m, max_m, min_m = float(want), float(offer_max), float(offer_min)
        note = ""
    else:
        w, hi, lo = (
            _monthly(want, want_unit),
            _monthly(offer_max, unit),
            _monthly(offer_min, unit),
        )
        if w is None or hi is None or lo is None:
            return _c(
                "wage",
                50,
                f"计薪方式不同（期望按{UNIT_LABELS.get(want_unit, want_unit)}，"
                f"岗位按{UNIT_LABELS.get(unit, unit)}），无法比较",
            )
        want_m, max_m, min_m = w, hi, lo
        note = "（按每月21.75天、每天8小时折算）"
    offered = yuan(offer_min, unit)
    if offer_max != offer_min:
        offered = f"{yuan(offer_min, unit)}～{yuan(offer_max, unit)}"
    expected = yuan(want, want_unit)
    if min_m >= want_m:
        return _c("wage", 100, f"岗位工资 {offered} 达到期望 {expected}{note}")
    if max_m >= want_m:
        return _c("wage", 80, f"岗位工资 {offered}，最高可达期望 {expected}{note}")
    short = 1 - max_m / want_m
    return _c(
        "wage",
        100 - 300 * short,
        f"岗位工资 {offered}，低于期望 {expected} 约 {round(short * 100)}%{note}",
    )


# --- availability --------------------------------------------------------------------


def _md(day: date) -> str:
    return f"{day.month}月{day.day}日"


def availability(worker: WorkerProfile, job: JobProfile, *, today: date) -> Component:
    """Free by the start date 100; later, 100 less 10 points for every 3 days late
    (a month late scores 0). Without a date: seeking 100, unknown 60, employed 40;
    not in the labour force 0. A job without a start date starts today."""
    start = job.starts_on or today
    status = worker.employment_status
    if status == "not_in_labour_force":
        return _c("availability", 0, "登记为不在劳动力范围（在读、年老或丧失劳动能力等）")
    if worker.available_from is None:
        if status == "seeking":
            return _c("availability", 100, "正在找工作，随时可上岗")
        if status in ("employed_local", "employed_away"):
            return _c("availability", 40, "目前在岗，未登记何时可上岗")
        return _c("availability", 60, "未登记可上岗日期，需电话确认")
    if worker.available_from <= start:
        return _c(
            "availability",
            100,
            f"{_md(worker.available_from)}起可上岗，赶得上{_md(start)}开工",
        )
    late = (worker.available_from - start).days
    return _c(
        "availability",
        100 - late * 10 / 3,
        f"{_md(worker.available_from)}起才能上岗，比{_md(start)}开工晚 {late} 天",
    )


# --- certificates --------------------------------------------------------------------


def _same_certificate(required: str, held: str) -> bool:
    """Free-text certificate names: equal, or one inside the other (焊工证 in
    特种作业操作证（焊工证）) once folded."""
    a, b = fold(required), fold(held)
    return bool(a) and bool(b) and (a == b or a in b or b in a)


def certificates(worker: WorkerProfile, job: JobProfile, *, today: date) -> Component:
    """Share of the required certificates held and valid on the start date (or today,
    whichever is later)."""
    required = [r.strip() for r in job.certificates_required if r.strip()]
    if not required:
        return _c("certificates", 100, "岗位不要求证书")
    on = max(job.starts_on or today, today)
    valid, expired, missing = [], [], []
    for need in required:
        held = [c for c in worker.certificates if _same_certificate(need, c.type)]
        good = [c for c in held if c.expires_on is None or c.expires_on >= on]
        if good:
            valid.append(need)
        elif held:
            expiry = max(c.expires_on for c in held if c.expires_on is not None)
            expired.append(f"{need}（{expiry:%Y-%m-%d}到期）")
        else:
            missing.append(need)
    parts = []
    if valid:
        parts.append(f"持有{'、'.join(valid)}")
    if expired:
        parts.append(f"已过期：{'、'.join(expired)}")
    if missing:
        parts.append(f"缺少：{'、'.join(missing)}")
    return _c("certificates", 100 * len(valid) / len(required), "；".join(parts))


# --- freshness -----------------------------------------------------------------------

FRESH = timedelta(days=90)
STALE = timedelta(days=365)  # the register's 12-month rule (marketplace.workers.rules)


def freshness(worker: WorkerProfile, *, now: datetime) -> Component:
    """Verified within 3 months 100, falling to 50 at 12 months; older or never 20."""
    at = worker.last_verified_at
    if at is None:
        return _c("freshness", 20, "从未与本人核实过，信息可能已过时")
    age = now - at
    months = max(0, age.days // 30)
    if age <= FRESH:
        return _c("freshness", 100, "近3个月内核实过" if months else "本月核实过")
    if age <= STALE:
        share = (age - FRESH) / (STALE - FRESH)
        return _c("freshness", 100 - 50 * share, f"{months}个月前核实过")
    return _c("freshness", 20, "超过12个月未核实，信息可能已过时")


# --- the total -----------------------------------------------------------------------


def score(
    worker: WorkerProfile,
    job: JobProfile,
    *,
    now: datetime,
    today: date | None = None,
    taxonomy: Taxonomy | None = None,
) -> Ranked:
    """Every component and the weighted total. ``today`` is the caller's local
    (Shanghai) date; it defaults to the UTC date of ``now``."""
    day = today or now.date()
    parts = (
        occupation(worker, job, taxonomy),
        distance(worker, job),
        wage(worker, job),
        availability(worker, job, today=day),
        certificates(worker, job, today=day),
        freshness(worker, now=now),
    )
    return Ranked(round(sum(c.weighted for c in parts), 1), parts)


def rank(
    items: Sequence[T],
    score_of: Callable[[T], Ranked],
    *,
    limit: int,
) -> list[tuple[T, Ranked]]:
    """The ``limit`` best items, best first (ties keep the input order)."""
    scored = [(item, score_of(item)) for item in items]
    scored.sort(key=lambda pair: -pair[1].score)
    return scored[:limit]
