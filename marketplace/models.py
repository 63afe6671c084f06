"""Imports every table module so ``SQLModel.metadata`` knows the whole schema."""

from marketplace.accounts.models import AuthSession, User, UserActivityDay
from marketplace.audit.models import AuditEntry, AuditHead
from marketplace.brokers.models import Broker, BrokerVillage
from marketplace.events import OutboxDelivery, OutboxEvent
from marketplace.notifications.models import Notification
from marketplace.regions.models import Region
from marketplace.scoring.models import (
    AnnualReview,
    BrokerScore,
    ScoreAppeal,
    ScoreDecision,
    ScoreModel,
    ScoreRun,
)
from marketplace.workers.models import DuplicateDismissal, Worker, WorkerChange

__all__ = [
    "AnnualReview",
    "AuditEntry",
    "AuditHead",
    "AuthSession",
    "Broker",
    "BrokerScore",
    "BrokerVillage",
    "DuplicateDismissal",
    "Notification",
    "OutboxDelivery",
    "OutboxEvent",
    "Region",
    "ScoreAppeal",
    "ScoreDecision",
    "ScoreModel",
    "ScoreRun",
    "User",
    "UserActivityDay",
    "Worker",
    "WorkerChange",
]
