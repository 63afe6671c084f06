"""Imports every table module so ``SQLModel.metadata`` knows the whole schema."""

from marketplace.accounts.models import AuthSession, User, UserActivityDay
from marketplace.audit.models import AuditEntry, AuditHead
from marketplace.brokers.exams_models import ExamAttempt, ExamItem, ExamPolicy
from marketplace.brokers.models import (
    ApplicationDecision,
    Broker,
    BrokerApplication,
    BrokerStatusChange,
    BrokerVillage,
)
from marketplace.brokers.questions_models import Question, QuestionVersion
from marketplace.brokers.training_models import (
    TrainingAttendance,
    TrainingCourse,
    TrainingMaterial,
    TrainingSession,
)
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
from marketplace.scoring.models import (
    AnnualReview,
    BrokerScore,
    ScoreAppeal,
    ScoreDecision,
    ScoreModel,
    ScoreRun,
)
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
from marketplace.workers.models import DuplicateDismissal, ImportJob, Worker, WorkerChange

__all__ = [
    "AgencyAuthorization",
    "AnnualReview",
    "ApplicationDecision",
    "ArrearsCase",
    "AuditEntry",
    "AuditHead",
    "AuthSession",
    "Broker",
    "BrokerApplication",
    "BrokerScore",
    "BrokerStatusChange",
    "BrokerVillage",
    "DistrictTaskSetting",
    "DuplicateDismissal",
    "EvidenceFile",
    "ExamAttempt",
    "ExamItem",
    "ExamPolicy",
    "ImportJob",
    "Job",
    "Notification",
    "Organization",
    "OrganizationMember",
    "OutboxDelivery",
    "OutboxEvent",
    "PersonConflict",
    "PersonCount",
    "Placement",
    "Question",
    "QuestionVersion",
    "Recommendation",
    "Region",
    "ScoreAppeal",
    "ScoreDecision",
    "ScoreModel",
    "ScoreRun",
    "ServiceTask",
    "SpotCheck",
    "SpotCheckItem",
    "TaskSubmission",
    "TaskType",
    "TrainingAttendance",
    "TrainingCourse",
    "TrainingMaterial",
    "TrainingSession",
    "User",
    "UserActivityDay",
    "WageReport",
    "Worker",
    "WorkerChange",
    "WorkerOccupation",
]
