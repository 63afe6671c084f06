"""The application state machine and the broker status rules, as pure functions:
every (state, decision, role) combination is either the one legal step or refused."""

from __future__ import annotations

import itertools

import pytest

from marketplace.access import Role
from marketplace.brokers import rules
from marketplace.brokers.models import ApplicationStatus as S
from marketplace.brokers.models import BrokerStatus
from marketplace.errors import Conflict, Invalid

V, T, D = Role.village_officer, Role.township_officer, Role.district_admin

# The whole chain, written out once by hand: (state, decision) -> (next state, role).
LEGAL = {
    (S.submitted, "approve"): (S.recommended, V),
    (S.submitted, "reject"): (S.rejected, V),
    (S.submitted, "return"): (S.returned, V),
    (S.recommended, "approve"): (S.township_reviewed, T),
    (S.recommended, "reject"): (S.rejected, T),
    (S.recommended, "return"): (S.returned, T),
    (S.township_reviewed, "approve"): (S.district_approved, D),
    (S.township_reviewed, "reject"): (S.rejected, D),
    (S.township_reviewed, "return"): (S.returned, D),
    (S.district_approved, "approve"): (S.in_training, D),
    (S.district_approved, "reject"): (S.rejected, D),
    (S.in_training, "reject"): (S.rejected, D),
    (S.exam_passed, "approve"): (S.certified, D),
    (S.exam_passed, "reject"): (S.rejected, D),
}
ALL_ROLES = list(Role)


@pytest.mark.parametrize(
    ("state", "decision", "role"),
    list(itertools.product(list(S), ["approve", "reject", "return"], ALL_ROLES)),
)
def test_every_state_decision_and_role(state: str, decision: str, role: str) -> None:
    legal = LEGAL.get((state, decision))
    if legal is not None and legal[1] == role:
        assert rules.step(state, decision, role).target == legal[0]
    else:
        with pytest.raises(Conflict):
            rules.step(state, decision, role)


def test_final_and_waiting_states_accept_no_decision() -> None:
    for state in (S.certified, S.rejected, S.returned):
        for decision in ("approve", "reject", "return"):
            with pytest.raises(Conflict, match="不能执行"):
                rules.step(state, decision, D)
    # Passing the exam is recorded by the exam, not decided by anyone.
    with pytest.raises(Conflict):
        rules.step(S.in_training, "approve", D)


def test_an_unknown_decision_names_the_field() -> None:
    with pytest.raises(Invalid) as caught:
        rules.step(S.submitted, "maybe", V)
    assert caught.value.field == "decision"


def test_reject_and_return_need_a_reason_the_applicant_can_read() -> None:
    for decision in ("reject", "return"):
        with pytest.raises(Invalid) as caught:
            rules.check_reason(decision, "  ")
        assert caught.value.field == "comment"
    assert rules.check_reason("approve", "  ") is None
    assert rules.check_reason("reject", " 非本村户籍 ") == "非本村户籍"


def test_each_officer_queue_is_the_states_waiting_for_that_role() -> None:
    assert rules.states_for_role(V) == [S.submitted]
    assert rules.states_for_role(T) == [S.recommended]
    assert set(rules.states_for_role(D)) == {
        S.township_reviewed,
        S.district_approved,
        S.in_training,
        S.exam_passed,
    }
    assert rules.states_for_role(Role.broker) == []


@pytest.mark.parametrize(
    ("current", "action", "expected"),
    [
        (BrokerStatus.active, "suspend", BrokerStatus.suspended),
        (BrokerStatus.suspended, "reinstate", BrokerStatus.active),
        (BrokerStatus.active, "retire", BrokerStatus.retired),
        (BrokerStatus.suspended, "retire", BrokerStatus.retired),
        (BrokerStatus.active, "eliminate", BrokerStatus.eliminated),
        (BrokerStatus.suspended, "eliminate", BrokerStatus.eliminated),
    ],
)
def test_legal_status_changes(current: str, action: str, expected: str) -> None:
    assert rules.status_change(current, action) == expected


@pytest.mark.parametrize(
    ("current", "action"),
    [
        (BrokerStatus.active, "reinstate"),
        (BrokerStatus.suspended, "suspend"),
        *[(final, a) for final in ("retired", "eliminated") for a in rules.StatusAction],
    ],
)
def test_illegal_status_changes_conflict(current: str, action: str) -> None:
    with pytest.raises(Conflict):
        rules.status_change(current, action)


def test_status_change_needs_a_reason_and_a_known_action() -> None:
    with pytest.raises(Invalid) as caught:
        rules.check_status_reason(" ")
    assert caught.value.field == "reason"
    with pytest.raises(Invalid) as caught:
        rules.status_change(BrokerStatus.active, "fire")
    assert caught.value.field == "action"
