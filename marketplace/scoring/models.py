"""Points and assessment (积分与考核): the versioned score model, scoring runs, each
broker's score per period with every component and the inputs it came from,
promotion and phase-out decisions, appeals and the annual review."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class ScoreModel(SQLModel, table=True):
    """One version of the rules. A period is scored with the newest version whose
    ``effective_from`` is not after it; versions are never edited, only added."""

    __tablename__ = "score_model"

    id: int | None = Field(default=None, primary_key=True)
    version: int = Field(unique=True)
    effective_from: str = Field(max_length=7, index=True)  # YYYY-MM
    rules: dict[str, Any] = Field(sa_type=JSON)
    note: str = Field(default="", max_length=500)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ScoreRun(SQLModel, table=True):
    """One computation of a period: which model, how many brokers, and a digest of
    every input, so a rerun can show it saw the same data."""

    __tablename__ = "score_run"

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=7, index=True)
    model_id: int = Field(foreign_key="score_model.id")
    trigger: str = Field(max_length=16)  # cli | worker | api | appeal
    inputs_digest: str = Field(max_length=64)
    broker_count: int = 0
    actor_user_id: int | None = Field(default=None, foreign_key="user_account.id")
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BrokerScore(SQLModel, table=True):
    __tablename__ = "broker_score"
    __table_args__ = (
        UniqueConstraint("period", "broker_id"),
        Index("ix_broker_score_period_district", "period", "district_code", "score"),
    )

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=7)
    broker_id: int = Field(foreign_key="broker.id", index=True)
    model_id: int = Field(foreign_key="score_model.id")
    run_id: int = Field(foreign_key="score_run.id")
    district_code: str = Field(max_length=6)
    village_code: str = Field(max_length=12)
    score: float
    grade: str = Field(max_length=16)
    passed: bool  # the assessment gate billing reads
    assessment_rule: str = Field(max_length=200)
    rank_district: int
    rank_city: int
    district_count: int
    city_count: int
    in_top: bool = False
    in_bottom: bool = False
    promotion_candidate: bool = False
    elimination_candidate: bool = False
    components: list[dict[str, Any]] = Field(sa_type=JSON)
    inputs: dict[str, Any] = Field(sa_type=JSON)
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ScoreDecision(SQLModel, table=True):
    """A district admin's ruling on a promotion or elimination candidate."""

    __tablename__ = "score_decision"
    __table_args__ = (UniqueConstraint("score_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    score_id: int = Field(foreign_key="broker_score.id")
    kind: str = Field(max_length=16)  # promotion | elimination
    decision: str = Field(max_length=16)  # confirmed | overruled
    reason: str = Field(max_length=500)
    decided_by: int = Field(foreign_key="user_account.id")
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ScoreAppeal(SQLModel, table=True):
    """A broker may appeal a period's score once; the district decides."""

    __tablename__ = "score_appeal"

    id: int | None = Field(default=None, primary_key=True)
    score_id: int = Field(foreign_key="broker_score.id", unique=True)
    broker_id: int = Field(foreign_key="broker.id", index=True)
    reason: str = Field(max_length=1000)
    status: str = Field(default="pending", max_length=16)  # pending | upheld | dismissed
    decision_reason: str | None = Field(default=None, max_length=1000)
    decided_by: int | None = Field(default=None, foreign_key="user_account.id")
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recompute_run_id: int | None = Field(default=None, foreign_key="score_run.id")
    score_before: float | None = None
    score_after: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AnnualReview(SQLModel, table=True):
    """年度履职评审: the district's targets for a broker's year and, at its end, the
    outcome with the year's scores."""

    __tablename__ = "annual_review"
    __table_args__ = (UniqueConstraint("broker_id", "year"),)

    id: int | None = Field(default=None, primary_key=True)
    broker_id: int = Field(foreign_key="broker.id")
    year: int = Field(index=True)
    targets: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    targets_set_by: int | None = Field(default=None, foreign_key="user_account.id")
    average_score: float | None = None
    months_scored: int = 0
    outcome: str | None = Field(default=None, max_length=16)
    note: str | None = Field(default=None, max_length=1000)
    decided_by: int | None = Field(default=None, foreign_key="user_account.id")
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# ------------------------------------------------------------------ I/O schemas


class ComponentPublic(SQLModel):
    name: str
    label: str
    value: float | None
    weight: float
    points: float
    explanation: str


class ScorePublic(SQLModel):
    id: int
    broker_id: int
    period: str
    score: float
    grade: str
    passed: bool
    assessment_rule: str
    rank: int
    rank_city: int
    district_count: int
    city_count: int
    promotion_candidate: bool
    elimination_candidate: bool
    components: list[ComponentPublic]


class Suggestion(SQLModel):
    component: str
    units: int
    total_gain: float
    message: str


class ScoreExplained(ScorePublic):
    promotion_line: float | None
    elimination_line: float | None
    gap_to_promotion: float | None
    gap_to_safety: float | None
    to_promotion: list[Suggestion]
    to_safety: list[Suggestion]
    inputs: dict[str, Any]


class RunRequest(SQLModel):
    period: str = Field(schema_extra={"pattern": r"^\d{4}-\d{2}$"})


class RunPublic(SQLModel):
    id: int
    period: str
    model_version: int
    brokers: int
    inputs_digest: str


class ModelCreate(SQLModel):
    effective_from: str = Field(schema_extra={"pattern": r"^\d{4}-\d{2}$"})
    rules: dict[str, Any]
    note: str = Field(default="", max_length=500)


class ModelPublic(SQLModel):
    id: int
    version: int
    effective_from: str
    rules: dict[str, Any]
    note: str
    created_at: datetime


class AppealRequest(SQLModel):
    reason: str = Field(max_length=1000)


class AppealPublic(SQLModel):
    id: int
    score_id: int
    broker_id: int
    reason: str
    status: str
    decision_reason: str | None
    score_before: float | None
    score_after: float | None
    created_at: datetime


class DecisionRequest(SQLModel):
    """``kind``: promotion | elimination (a candidate) or appeal; ``decision``:
    confirm | overrule for candidates, uphold | dismiss for appeals."""

    kind: str
    decision: str
    reason: str = Field(max_length=1000)
    recompute: bool = False


class DecisionPublic(SQLModel):
    score_id: int
    kind: str
    decision: str
    reason: str


class TargetsRequest(SQLModel):
    year: int
    targets: dict[str, float]


class ReviewRequest(SQLModel):
    year: int
    outcome: str
    note: str | None = Field(default=None, max_length=1000)


class AnnualReviewPublic(SQLModel):
    id: int
    broker_id: int
    year: int
    targets: dict[str, Any]
    average_score: float | None
    months_scored: int
    outcome: str | None
    note: str | None
