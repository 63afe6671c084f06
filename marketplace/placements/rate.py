"""A broker's job-match rate for a period (docs/matching.md, "Job-match rate").

rate = recommendations made in the period that led to a hire ÷ recommendations made
in the period. The period is the cohort: a recommendation belongs to the period it
was made in, and a hire that comes in a later period still counts for it (so a
period's rate can rise after it ends, until its recommendations are settled).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.placements.models import Recommendation, RecommendationStatus

S = RecommendationStatus
# Led to a hire: hired, or further, onboarded. A hire that fell through before the
# start (no-show, or withdrawn after the hire) did not lead to one.
HIRED = (S.hired, S.onboarded)
# Not settled yet: the employer may still hire.
OPEN = (S.recommended, S.shortlisted)


@dataclass(frozen=True)
class MatchRate:
    made: int  # every recommendation made in the period, withdrawn and lapsed too
    hired: int
    open: int  # still waiting for the employer: the rate may still rise
    rate: float | None  # None when nothing was recommended (not 0: nothing to judge)

    @property
    def final(self) -> bool:
        return self.open == 0


def match_rate_of(statuses: list[str]) -> MatchRate:
    """The rate over the statuses of a period's recommendations (pure)."""
    made = len(statuses)
    hired = sum(1 for s in statuses if s in HIRED)
    still_open = sum(1 for s in statuses if s in OPEN)
    return MatchRate(made, hired, still_open, hired / made if made else None)


async def match_rate(
    *, session: AsyncSession, broker_id: int, start: datetime, end: datetime
) -> MatchRate:
    """Over recommendations created in [start, end) by ``broker_id``, as of now."""
    rows = await session.execute(
        select(col(Recommendation.status), func.count())
        .where(
            col(Recommendation.broker_id) == broker_id,
            col(Recommendation.created_at) >= start,
            col(Recommendation.created_at) < end,
        )
        .group_by(col(Recommendation.status))
    )
    statuses: list[str] = []
    for status, count in rows.all():
        statuses += [str(status)] * int(count)
    return match_rate_of(statuses)
