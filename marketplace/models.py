"""Imports every table module so ``SQLModel.metadata`` knows the whole schema."""

from marketplace.accounts.models import AuthSession, User
from marketplace.audit.models import AuditEntry, AuditHead
from marketplace.brokers.models import Broker, BrokerVillage
from marketplace.events import OutboxDelivery, OutboxEvent
from marketplace.jobs.models import Job
from marketplace.notifications.models import Notification
from marketplace.organizations.models import AgencyAuthorization, Organization, OrganizationMember
from marketplace.placements.models import (
    ArrearsCase,
    Placement,
    Recommendation,
    WageReport,
    WorkerOccupation,
)
from marketplace.regions.models import Region
from marketplace.workers.models import DuplicateDismissal, Worker, WorkerChange

__all__ = [
    "AgencyAuthorization",
    "ArrearsCase",
    "AuditEntry",
    "AuditHead",
    "AuthSession",
    "Broker",
    "BrokerVillage",
    "DuplicateDismissal",
    "Job",
    "Notification",
    "Organization",
    "OrganizationMember",
    "OutboxDelivery",
    "OutboxEvent",
    "Placement",
    "Recommendation",
    "Region",
    "User",
    "WageReport",
    "Worker",
    "WorkerChange",
    "WorkerOccupation",
]
