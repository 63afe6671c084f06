"""Pure rules of the broker application chain and of broker status changes.

The chain is one table, ``TRANSITIONS``: (state, decision) -> (next state, the role
whose step it is). ``step`` answers every "may this decision happen now?" question;
the service only adds region scope, persistence and side effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from marketplace.access import Role
from marketplace.brokers.models import ApplicationStatus as S
from marketplace.brokers.models import Background, BrokerStatus
from marketplace.errors import Conflict, Invalid


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"
    # Sent back to the applicant for more information.
    return_ = "return"


@dataclass(frozen=True)
class Step:
    target: str
    role: Role


# Who decides in each state; reviewers may approve, reject or send back.
REVIEW_ROLE: dict[str, Role] = {
    S.submitted: Role.village_officer,
    S.recommended: Role.township_officer,
    S.township_reviewed: Role.district_admin,
    S.district_approved: Role.district_admin,
    S.in_training: Role.district_admin,
    S.exam_passed: Role.district_admin,
}

TRANSITIONS: dict[tuple[str, Decision], Step] = {
    (S.submitted, Decision.approve): Step(S.recommended, Role.village_officer),
    (S.recommended, Decision.approve): Step(S.township_reviewed, Role.township_officer),
    (S.township_reviewed, Decision.approve): Step(S.district_approved, Role.district_admin),
    # "Approve" on an approved application sends the applicant to training.
    (S.district_approved, Decision.approve): Step(S.in_training, Role.district_admin),
    (S.exam_passed, Decision.approve): Step(S.certified, Role.district_admin),
    # in_training -> exam_passed is not a decision: the exam records it (record_exam_passed).
    **{(state, Decision.reject): Step(S.rejected, role) for state, role in REVIEW_ROLE.items()},
    # More information can be asked for while the file is still being reviewed.
    (S.submitted, Decision.return_): Step(S.returned, Role.village_officer),
    (S.recommended, Decision.return_): Step(S.returned, Role.township_officer),
    (S.township_reviewed, Decision.return_): Step(S.returned, Role.district_admin),
}

OPEN_STATES = frozenset(set(S) - {S.certified, S.rejected})
FINAL_STATES = frozenset({S.certified, S.rejected})
# The state an application is in after the exam is passed, and before.
EXAM_FROM, EXAM_TO = S.in_training, S.exam_passed

STATUS_LABELS: dict[str, str] = {
    S.submitted: "待村（社区）推荐",
    S.recommended: "待乡镇（街道）审核",
    S.township_reviewed: "待区县审批",
    S.district_approved: "已审批，待安排培训",
    S.in_training: "培训中，待考试",
    S.exam_passed: "考试合格，待认证",
    S.certified: "已认证为劳务经纪人",
    S.rejected: "未通过",
    S.returned: "退回补充材料",
}

DECISION_LABELS: dict[str, str] = {
    "submit": "提交申请",
    "approve": "同意",
    "reject": "不予通过",
    "return": "退回补充材料",
    "resubmit": "补充后重新提交",
    "exam_passed": "考试合格",
}

ROLE_STEP_LABELS: dict[str, str] = {
    S.submitted: "村（社区）推荐",
    S.recommended: "乡镇（街道）审核",
    S.township_reviewed: "区县审批",
    S.district_approved: "安排培训",
    S.in_training: "培训考试",
    S.exam_passed: "区县认证",
}

BACKGROUND_LABELS: dict[str, str] = {
    Background.village_cadre: "村社干部（财政供养人员除外）",
    Background.grid_worker: "网格员",
    Background.social_security_clerk: "基层社保员",
    Background.hr_company_staff: "人力资源企业骨干",
    Background.rural_leader: "农村致富带头人",
    Background.labour_broker: "劳务经纪能人",
    Background.other: "其他",
}


def step(status: str, decision: str, role: str) -> Step:
    """The step ``decision`` takes from ``status`` for ``role``; Conflict (409) when the
    decision is not legal now or the step is another role's (a decision out of turn)."""
    try:
        parsed = Decision(decision)
    except ValueError:
        raise Invalid(
            "decision", "决定只能是 approve（同意）、reject（不予通过）或 return（退回）"
        ) from None
    found = TRANSITIONS.get((status, parsed))
    if found is None:
        label = STATUS_LABELS.get(status, status)
        raise Conflict(
            f"申请当前状态为“{label}”，不能执行“{DECISION_LABELS[parsed.value]}”", field="decision"
        )
    if role != found.role:
        who = REVIEW_ROLE_LABELS[found.role]
        raise Conflict(f"申请当前等待{who}办理（{ROLE_STEP_LABELS[status]}），不是您的环节")
    return found


REVIEW_ROLE_LABELS: dict[Role, str] = {
    Role.village_officer: "村（社区）经办人",
    Role.township_officer: "乡镇（街道）经办人",
    Role.district_admin: "区县人力社保局",
}


def states_for_role(role: str) -> list[str]:
    """The states whose next step is ``role``'s: that role's queue."""
    return [state for state, who in REVIEW_ROLE.items() if who == role]


def check_reason(decision: str, comment: str | None) -> str | None:
    """A rejection or a return must say why: the applicant reads it."""
    text = (comment or "").strip() or None
    if decision in (Decision.reject, Decision.return_) and text is None:
        raise Invalid("comment", "不予通过或退回时必须填写原因，申请人会看到")
    if text is not None and len(text) > 500:
        raise Invalid("comment", "意见不能超过 500 个字")
    return text


# --- broker status ---------------------------------------------------------------------


class StatusAction(StrEnum):
    suspend = "suspend"
    reinstate = "reinstate"
    retire = "retire"
    eliminate = "eliminate"


STATUS_ACTIONS: dict[StatusAction, tuple[frozenset[str], BrokerStatus]] = {
    StatusAction.suspend: (frozenset({BrokerStatus.active}), BrokerStatus.suspended),
    StatusAction.reinstate: (frozenset({BrokerStatus.suspended}), BrokerStatus.active),
    StatusAction.retire: (
        frozenset({BrokerStatus.active, BrokerStatus.suspended}),
        BrokerStatus.retired,
    ),
    StatusAction.eliminate: (
        frozenset({BrokerStatus.active, BrokerStatus.suspended}),
        BrokerStatus.eliminated,
    ),
}

BROKER_STATUS_LABELS: dict[str, str] = {
    BrokerStatus.active: "在岗",
    BrokerStatus.suspended: "暂停",
    BrokerStatus.retired: "退出",
    BrokerStatus.eliminated: "淘汰",
}

ACTION_LABELS: dict[str, str] = {
    StatusAction.suspend: "暂停",
    StatusAction.reinstate: "恢复",
    StatusAction.retire: "退出",
    StatusAction.eliminate: "淘汰",
}


def status_change(current: str, action: str) -> BrokerStatus:
    """The status ``action`` leads to from ``current``; retired and eliminated are final."""
    try:
        parsed = StatusAction(action)
    except ValueError:
        raise Invalid("action", "操作只能是 suspend、reinstate、retire 或 eliminate") from None
    allowed, target = STATUS_ACTIONS[parsed]
    if current not in allowed:
        raise Conflict(
            f"经纪人当前状态为“{BROKER_STATUS_LABELS.get(current, current)}”，"
            f"不能{ACTION_LABELS[parsed]}",
            field="action",
        )
    return target


def check_status_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise Invalid("reason", "请填写原因")
    if len(text) > 500:
        raise Invalid("reason", "原因不能超过 500 个字")
    return text


def broker_no(district_code: str, application_id: int) -> str:
    """经纪人编号: the district and the application, so it is unique without a counter."""
    return f"JJ{district_code}{application_id:06d}"
