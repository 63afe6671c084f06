"""Imports every table module so ``SQLModel.metadata`` knows the whole schema."""

from marketplace.accounts.models import AuthSession, User
from marketplace.audit.models import AuditEntry, AuditHead
from marketplace.brokers.models import Broker, BrokerVillage
from marketplace.events import OutboxDelivery, OutboxEvent
from marketplace.notifications.models import Notification
from marketplace.regions.models import Region
from marketplace.tasks.models import (
    DistrictTaskSetting,
    EvidenceFile,
    PersonConflict,
    PersonCount,
    ServiceTask,
    SpotCheck,
    SpotCheckItem,
    TaskSubmission,
    TaskType,
)
from marketplace.workers.models import DuplicateDismissal, Worker, WorkerChange

__all__ = [
    "AuditEntry",
    "AuditHead",
    "AuthSession",
    "Broker",
    "BrokerVillage",
    "DistrictTaskSetting",
    "DuplicateDismissal",
    "EvidenceFile",
    "Notification",
    "OutboxDelivery",
    "OutboxEvent",
    "PersonConflict",
    "PersonCount",
    "Region",
    "ServiceTask",
    "SpotCheck",
    "SpotCheckItem",
    "TaskSubmission",
    "TaskType",
    "User",
    "Worker",
    "WorkerChange",
]
