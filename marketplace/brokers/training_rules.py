"""The training-days rule, as pure functions (docs/training.md, "Compliance").

Every broker active on the report date needs ``REQUIRED_DAYS_PER_YEAR`` days of
centralised training in the calendar year (Asia/Shanghai) in which sessions start.
All three modes count (线下集中培训, 线上培训, 以会代训); days a broker attended as an
applicant in training count for that year too. Refresher days (复训 sessions) count
towards the four and are also reported on their own: a broker who trained last year
and has no refresher day this year is flagged ``needs_refresher``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from marketplace.brokers.training_models import REQUIRED_DAYS_PER_YEAR, ComplianceRow


def short_by(days: int, required: int = REQUIRED_DAYS_PER_YEAR) -> int:
    """How many days are missing (0 when the broker has enough)."""
    return max(0, required - days)


@dataclass(frozen=True)
class BrokerFacts:
    broker_id: int
    broker_no: str | None
    name: str
    village_code: str


def compliance_rows(
    brokers: Iterable[BrokerFacts],
    days: Mapping[int, int],
    refresher_days: Mapping[int, int],
    trained_last_year: set[int],
    required: int = REQUIRED_DAYS_PER_YEAR,
) -> list[ComplianceRow]:
    rows = []
    for b in brokers:
        total = days.get(b.broker_id, 0)
        refresher = refresher_days.get(b.broker_id, 0)
        last_year = b.broker_id in trained_last_year
        rows.append(
            ComplianceRow(
                broker_id=b.broker_id,
                broker_no=b.broker_no,
                name=b.name,
                village_code=b.village_code,
                days=total,
                refresher_days=refresher,
                short_by=short_by(total, required),
                trained_last_year=last_year,
                needs_refresher=last_year and refresher == 0,
            )
        )
    # Who is furthest behind first, then by village.
    rows.sort(key=lambda r: (-r.short_by, r.village_code, r.broker_id))
    return rows
