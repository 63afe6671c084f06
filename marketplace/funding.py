"""Funding sources of the public-service subsidies (资金来源).

Shared by the tasks (a task type names the source that pays it) and by billing (one
fund pool per district and source), so the two never disagree on a code.
"""

from __future__ import annotations

import re

# code -> label shown to users. Other departments that buy services from brokers
# (购买服务) each get their own code, so their money never mixes with the bureau's.
FUNDING_SOURCES: dict[str, str] = {
    "employment_subsidy": "就业补助资金",
    "migrant_worker_services": "进城务工农民综合服务经费",
    "purchase_medical_insurance": "医保部门购买服务",
    "purchase_civil_affairs": "民政部门购买服务",
    "purchase_agriculture": "农业农村部门购买服务",
}

_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def is_funding_source(code: str) -> bool:
    return code in FUNDING_SOURCES


def funding_label(code: str) -> str:
    return FUNDING_SOURCES.get(code, code)


def valid_code(code: str) -> bool:
    """Shape check for codes of new sources before they are added to the list."""
    return bool(_CODE.match(code))
