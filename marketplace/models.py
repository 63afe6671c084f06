"""Imports every table module so ``SQLModel.metadata`` knows the whole schema."""

from marketplace.accounts.models import AuthSession, User
from marketplace.audit.models import AuditEntry, AuditHead
from marketplace.brokers.models import Broker, BrokerVillage
from marketplace.events import OutboxDelivery, OutboxEvent
from marketplace.notifications.models import Notification
from marketplace.regions.models import Region
from marketplace.workers.models import DuplicateDismissal, ImportJob, Worker, WorkerChange

__all__ = [
    "AuditEntry",
    "AuditHead",
    "AuthSession",
    "Broker",
    "BrokerVillage",
    "DuplicateDismissal",
    "ImportJob",
    "Notification",
    "OutboxDelivery",
    "OutboxEvent",
    "Region",
    "User",
    "Worker",
    "WorkerChange",
]
