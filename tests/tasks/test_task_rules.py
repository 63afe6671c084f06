"""Pure rules: the state machine, periods, sampling (reproducible, weighted), the
completion rate and its edge cases."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

from marketplace.tasks import rules
from marketplace.tasks.models import TaskStatus as S

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_state_machine_allows_the_documented_paths_only() -> None:
    happy = [S.open, S.claimed, S.submitted, S.township_checked, S.partly_approved, S.closed]
    for old, new in itertools.pairwise(happy):
        assert rules.may_move(old, new), (old, new)
    resubmitted = [S.claimed, S.submitted, S.rejected, S.submitted, S.approved, S.closed]
    for old, new in itertools.pairwise(resubmitted):
        assert rules.may_move(old, new), (old, new)
    assert rules.may_move(S.open, S.expired)
    assert not rules.may_move(S.open, S.submitted)  # claim first
    assert not rules.may_move(S.claimed, S.approved)  # nothing to approve
    assert not rules.may_move(S.approved, S.rejected)  # decided is decided
    assert not rules.may_move(S.expired, S.claimed)
    assert not rules.may_move(S.closed, S.submitted)


def test_decided_status_and_amount() -> None:
    assert rules.decided_status(5, 5) == S.approved
    assert rules.decided_status(5, 3) == S.partly_approved
    assert rules.decided_status(5, 0) == S.rejected
    assert rules.amount_fen(3, 20000) == 60000


def test_periods_are_shanghai_months() -> None:
    # 2026-11-30 17:00 UTC is already 1 December in Chongqing.
    assert rules.period_of(datetime(2026, 11, 30, 17, tzinfo=UTC)) == "2026-12"
    start, end = rules.period_bounds("2026-12")
    assert start == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert end == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert rules.period_deadline("2026-12") == end - timedelta(seconds=1)


def test_dispatch_covers_villages_and_their_townships() -> None:
    villages = {"500103001003"}
    assert rules.covers("500103001003", villages)
    assert rules.covers("500103001", villages)
    assert not rules.covers("500103001006", villages)
    assert not rules.covers("500103002", villages)


def _pool() -> list[rules.Candidate]:
    old = NOW - timedelta(days=900)
    pool = [rules.Candidate(i, "job_referral", 3, old, 0) for i in range(1, 41)]
    pool.append(rules.Candidate(41, "job_referral", 3, NOW - timedelta(days=30), 0))
    pool.append(rules.Candidate(42, "job_referral", 30, old, 0))
    pool.append(rules.Candidate(43, "job_referral", 3, old, 2))
    return pool


def test_weights_name_their_reasons() -> None:
    weighted = {w.task_id: w for w in rules.weigh(_pool(), NOW)}
    assert weighted[1].weight == 1.0
    assert weighted[1].reasons == ()
    assert weighted[41].reasons == ("new_broker",)
    assert weighted[42].reasons == ("high_volume",)
    assert weighted[43].reasons == ("evidence_conflict",)
    assert weighted[43].weight > weighted[41].weight > weighted[1].weight


def test_sampling_is_reproducible_from_the_seed() -> None:
    weighted = rules.weigh(_pool(), NOW)
    first = [w.task_id for w in rules.draw(weighted, 5, seed=20261127)]
    again = [w.task_id for w in rules.draw(list(reversed(weighted)), 5, seed=20261127)]
    other = [w.task_id for w in rules.draw(weighted, 5, seed=7)]
    assert first == again  # same candidates and seed, in any order: the same sample
    assert first != other
    assert len(set(first)) == 5


def test_sampling_favours_the_risky() -> None:
    weighted = rules.weigh(_pool(), NOW)
    hits: Counter[int] = Counter()
    for seed in range(600):
        hits.update(w.task_id for w in rules.draw(weighted, 3, seed))
    plain = sum(hits[i] for i in range(1, 41)) / 40
    assert hits[43] > 2.5 * plain  # conflict: weight 4
    assert hits[41] > 2 * plain  # new broker: weight 3
    assert hits[42] > 2 * plain  # high volume: weight 3


def _o(
    deadline_days: int,
    submitted_days: int | None,
    *,
    reversed_: bool = False,
    awaiting: bool = False,
) -> rules.TaskOutcome:
    deadline = NOW + timedelta(days=deadline_days)
    submitted = None if submitted_days is None else NOW + timedelta(days=submitted_days)
    return rules.TaskOutcome(deadline, submitted, reversed_, awaiting)


def test_completion_rate_and_its_edge_cases() -> None:
    assert rules.completion([], NOW).rate is None  # nothing due is not 0 %
    outcomes = [
        _o(-5, -6),  # approved, submitted in time: completed
        _o(-5, -1),  # approved, but submitted after the deadline: not completed
        _o(-5, None),  # claimed, never done, deadline passed: not completed
        _o(-5, -6, reversed_=True),  # failed its spot check: not completed
        _o(5, None),  # deadline ahead, not done yet: left out
        _o(5, -1),  # approved early: counts at once
        _o(-5, None, awaiting=True),  # with an officer: left out until decided
    ]
    result = rules.completion(outcomes, NOW)
    assert (result.completed, result.counted) == (2, 5)
    assert result.rate == 0.4
