"""Who sees which job (docs/jobs.md).

The posting organisation (the employer, and the agency that posted for it) sees its
jobs in every state; officers see the jobs waiting for review in their region; every
logged-in user sees jobs that have been public (published, filled, closed, expired).
Anything else is a 404, so a draft's existence is not confirmed.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_
from sqlmodel import col

from marketplace.access import OFFICER_ROLES, Actor, in_scope
from marketplace.jobs.models import Job, JobStatus

PUBLIC_STATES = frozenset(
    {JobStatus.published, JobStatus.filled, JobStatus.closed, JobStatus.expired}
)


def in_region(actor: Actor, job: Job) -> bool:
    return in_scope(actor, job.review_district_code) or in_scope(actor, job.work_region_code)


def sees(actor: Actor, job: Job, org_id: int | None) -> bool:
    if actor.is_system:
        return True
    if org_id is not None and org_id in (job.organization_id, job.agency_id):
        return True
    if job.status in PUBLIC_STATES:
        return True
    return (
        actor.role in OFFICER_ROLES
        and job.status == JobStatus.pending_review
        and in_region(actor, job)
    )


def visible_where(actor: Actor, org_id: int | None, *, own_only: bool) -> ColumnElement[bool]:
    """The SQL form of ``sees`` for lists; ``own_only`` limits an organisation's
    accounts to their own jobs (the list they manage)."""
    mine = (
        or_(col(Job.organization_id) == org_id, col(Job.agency_id) == org_id)
        if org_id is not None
        else false()
    )
    if own_only:
        return mine
    public = col(Job.status).in_([s.value for s in PUBLIC_STATES])
    if actor.role in OFFICER_ROLES:
        pending = and_(
            col(Job.status) == JobStatus.pending_review,
            or_(
                col(Job.review_district_code).startswith(actor.region_code),
                col(Job.work_region_code).startswith(actor.region_code),
            )
            if len(actor.region_code) <= 6
            else col(Job.work_region_code).startswith(actor.region_code),
        )
        return or_(mine, public, pending)
    return or_(mine, public)
