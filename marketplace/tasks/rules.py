"""Pure rules of the task workflow: periods, transitions, dispatch, sampling, rates."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from marketplace.clock import SHANGHAI, as_utc
from marketplace.tasks.models import TaskStatus

S = TaskStatus

# Which status may follow which (the state machine of docs/tasks.md).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.open: frozenset({S.claimed, S.expired}),
    S.claimed: frozenset({S.submitted, S.closed}),
    S.submitted: frozenset({S.township_checked, S.approved, S.partly_approved, S.rejected}),
    S.township_checked: frozenset({S.approved, S.partly_approved, S.rejected}),
    S.rejected: frozenset({S.submitted, S.closed}),
    S.approved: frozenset({S.closed}),
    S.partly_approved: frozenset({S.closed}),
    S.closed: frozenset(),
    S.expired: frozenset(),
}


def may_move(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())


def period_of(moment: datetime) -> str:
    """The calendar month (Asia/Shanghai) a moment falls in, as YYYY-MM."""
    return as_utc(moment).astimezone(SHANGHAI).strftime("%Y-%m")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a YYYY-MM period in UTC (Shanghai midnights)."""
    year, month = int(period[:4]), int(period[5:7])
    start = datetime(year, month, 1, tzinfo=SHANGHAI)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=SHANGHAI)
    return start.astimezone(UTC), end.astimezone(UTC)


def period_deadline(period: str) -> datetime:
    """The last moment of the period: 23:59:59 Shanghai on its last day."""
    return period_bounds(period)[1] - timedelta(seconds=1)


def district_of(region_code: str) -> str:
    return region_code[:6]


def covers(task_region: str, villages: Iterable[str]) -> bool:
    """A task for a village or township is open to brokers serving a village in it."""
    return any(v.startswith(task_region) for v in villages)


def amount_fen(quantity: int, rate_fen: int) -> int:
    return quantity * rate_fen


def decided_status(submitted: int, approved: int) -> str:
    if approved <= 0:
        return S.rejected
    return S.approved if approved >= submitted else S.partly_approved


# --- spot-check sampling -----------------------------------------------------------------

NEW_BROKER_DAYS = 180
WEIGHT_BASE = 1.0
WEIGHT_NEW_BROKER = 2.0
WEIGHT_HIGH_VOLUME = 2.0
WEIGHT_CONFLICT = 3.0
HIGH_VOLUME_FACTOR = 2.0  # approved quantity at least this times the median of its type


@dataclass(frozen=True)
class Candidate:
    task_id: int
    task_type_code: str
    approved_quantity: int
    broker_since: datetime  # certification, or the broker row's creation
    conflicts: int


@dataclass(frozen=True)
class Weighted:
    task_id: int
    weight: float
    reasons: tuple[str, ...]


def _median(values: Sequence[int]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return float(ordered[mid]) if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def weigh(candidates: Sequence[Candidate], as_of: datetime) -> list[Weighted]:
    """Each candidate's weight and the reasons for it (shown to the checker)."""
    by_type: dict[str, list[int]] = {}
    for c in candidates:
        by_type.setdefault(c.task_type_code, []).append(c.approved_quantity)
    medians = {code: _median(values) for code, values in by_type.items()}
    out = []
    for c in candidates:
        weight, reasons = WEIGHT_BASE, []
        if as_of - as_utc(c.broker_since) < timedelta(days=NEW_BROKER_DAYS):
            weight += WEIGHT_NEW_BROKER
            reasons.append("new_broker")
        median = medians[c.task_type_code]
        if len(by_type[c.task_type_code]) > 1 and c.approved_quantity >= max(
            HIGH_VOLUME_FACTOR * median, median + 1
        ):
            weight += WEIGHT_HIGH_VOLUME
            reasons.append("high_volume")
        if c.conflicts:
            weight += WEIGHT_CONFLICT
            reasons.append("evidence_conflict")
        out.append(Weighted(c.task_id, weight, tuple(reasons)))
    return out


def draw(weighted: Sequence[Weighted], size: int, seed: int) -> list[Weighted]:
    """Weighted sampling without replacement (Efraimidis–Spirakis): each item gets the
    key u^(1/w) from one seeded generator in task-id order; the largest keys win. The
    same candidates and seed always give the same sample."""
    rng = random.Random(seed)  # noqa: S311  (reproducible sampling, not secrecy)
    keyed = []
    for item in sorted(weighted, key=lambda w: w.task_id):
        u = rng.random() or 1e-12
        keyed.append((math.log(u) / item.weight, item.task_id, item))
    keyed.sort(key=lambda k: (k[0], -k[1]), reverse=True)
    return [k[2] for k in keyed[:size]]


REASON_LABELS = {
    "new_broker": "新经纪人",
    "high_volume": "数量异常偏高",
    "evidence_conflict": "存在重复计人冲突",
}


# --- completion rate ---------------------------------------------------------------------


@dataclass(frozen=True)
class TaskOutcome:
    deadline: datetime
    approved_submitted_at: datetime | None  # when the approved submission came in
    reversed: bool  # a spot check reversed the approval
    awaiting_review: bool  # a submission is with an officer


@dataclass(frozen=True)
class CompletionRate:
    completed: int
    counted: int

    @property
    def rate(self) -> float | None:
        """None when the broker had nothing due: no tasks is not a 0 % record."""
        return None if self.counted == 0 else self.completed / self.counted


def completion(outcomes: Iterable[TaskOutcome], as_of: datetime) -> CompletionRate:
    """Tasks completed and approved by their deadline ÷ tasks claimed or assigned.

    Completed: approved (fully or partly), not reversed by a spot check, and the
    approved submission came in by the deadline (a slow review does not count against
    the broker). Left out as not yet known: a submission still awaiting review, and a
    task whose deadline is ahead and that is not approved yet. See docs/tasks.md.
    """
    completed = counted = 0
    for o in outcomes:
        done = (
            o.approved_submitted_at is not None
            and not o.reversed
            and as_utc(o.approved_submitted_at) <= as_utc(o.deadline)
        )
        if not done and (o.awaiting_review or as_utc(o.deadline) > as_of):
            continue
        counted += 1
        completed += int(done)
    return CompletionRate(completed, counted)
