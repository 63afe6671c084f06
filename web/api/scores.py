"""Points, assessment and rankings (积分考核). Public disclosure is in web/pages/scores.py."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post, put
from litestar.params import JSONBody, QueryParameter

from marketplace.scoring import decisions, service
from marketplace.scoring.models import (
    AnnualReviewPublic,
    AppealPublic,
    AppealRequest,
    DecisionPublic,
    DecisionRequest,
    ModelCreate,
    ModelPublic,
    ReviewRequest,
    RunPublic,
    RunRequest,
    ScoreExplained,
    ScorePublic,
    TargetsRequest,
)
from marketplace.scoring.rules import Period
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import CurrentActor, Db, Paging, RowId

PeriodQuery = Annotated[str, QueryParameter(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]
RegionQuery = Annotated[str | None, QueryParameter(pattern=r"^\d{2,12}$")]


class ScoresController(Controller):
    path = "/api/v1/scores"
    tags = ["积分考核"]
    guards = [requires_login]

    @post("/runs")
    async def run(self, db: Db, actor: CurrentActor, data: JSONBody[RunRequest]) -> RunPublic:
        result = await service.compute(
            session=db, actor=actor, period=Period.parse(data.period), trigger="api"
        )
        model = await service.model_for(db, Period.parse(data.period))
        return RunPublic(
            id=result.run.id or 0,
            period=result.run.period,
            model_version=model.version,
            brokers=result.scored,
            inputs_digest=result.run.inputs_digest,
        )

    @get("/")
    async def list_scores(
        self,
        db: Db,
        actor: CurrentActor,
        page: Paging,
        period: PeriodQuery,
        region_code: RegionQuery = None,
    ) -> Paged[ScorePublic]:
        rows, total = await service.list_scores(
            session=db,
            actor=actor,
            period=Period.parse(period),
            region_code=region_code,
            limit=page.limit,
            offset=page.offset,
        )
        return Paged(items=[service.to_public(r) for r in rows], total=total)

    @get("/{score_id:int}")
    async def get_score(self, db: Db, actor: CurrentActor, score_id: RowId) -> ScoreExplained:
        score = await service.get_score(db, score_id)
        await service.check_read(db, actor, score)
        return service.to_explained(await service.explain(db, score))

    @post("/{score_id:int}/appeal", status_code=201)
    async def appeal(
        self, db: Db, actor: CurrentActor, score_id: RowId, data: JSONBody[AppealRequest]
    ) -> AppealPublic:
        row = await decisions.appeal(session=db, actor=actor, score_id=score_id, reason=data.reason)
        return AppealPublic.model_validate(row, from_attributes=True)

    @get("/appeals")
    async def appeals(
        self, db: Db, actor: CurrentActor, region_code: RegionQuery = None
    ) -> list[AppealPublic]:
        rows = await decisions.pending_appeals(session=db, actor=actor, region_code=region_code)
        return [AppealPublic.model_validate(a, from_attributes=True) for a, _ in rows]

    @post("/{score_id:int}/decision", status_code=200)
    async def decide(
        self, db: Db, actor: CurrentActor, score_id: RowId, data: JSONBody[DecisionRequest]
    ) -> DecisionPublic:
        if data.kind == "appeal":
            appeal = await decisions.decide_appeal(
                session=db,
                actor=actor,
                score_id=score_id,
                decision=data.decision,
                reason=data.reason,
                recompute=data.recompute,
            )
            return DecisionPublic(
                score_id=score_id,
                kind="appeal",
                decision=appeal.status,
                reason=appeal.decision_reason or "",
            )
        row = await decisions.decide_candidate(
            session=db,
            actor=actor,
            score_id=score_id,
            kind=data.kind,
            decision=data.decision,
            reason=data.reason,
        )
        return DecisionPublic(
            score_id=score_id, kind=row.kind, decision=row.decision, reason=row.reason
        )


class ScoreModelsController(Controller):
    path = "/api/v1/score-models"
    tags = ["积分考核"]
    guards = [requires_login]

    @get("/")
    async def list_models(self, db: Db, actor: CurrentActor) -> list[ModelPublic]:
        from marketplace.access import require

        require(actor, "score.view")
        return [
            ModelPublic.model_validate(m, from_attributes=True)
            for m in await service.list_models(db)
        ]

    @post("/")
    async def create_model(
        self, db: Db, actor: CurrentActor, data: JSONBody[ModelCreate]
    ) -> ModelPublic:
        model = await service.create_model(
            session=db,
            actor=actor,
            rules_json=data.rules,
            effective_from=data.effective_from,
            note=data.note,
        )
        return ModelPublic.model_validate(model, from_attributes=True)


class BrokerScoresController(Controller):
    path = "/api/v1/brokers/{broker_id:int}"
    tags = ["积分考核"]
    guards = [requires_login]

    @get("/scores")
    async def scores(self, db: Db, actor: CurrentActor, broker_id: RowId) -> list[ScorePublic]:
        rows = await service.broker_history(session=db, actor=actor, broker_id=broker_id)
        return [service.to_public(r) for r in rows]

    @put("/annual-review/targets")
    async def targets(
        self, db: Db, actor: CurrentActor, broker_id: RowId, data: JSONBody[TargetsRequest]
    ) -> AnnualReviewPublic:
        row = await decisions.set_targets(
            session=db, actor=actor, broker_id=broker_id, year=data.year, targets=data.targets
        )
        return AnnualReviewPublic.model_validate(row, from_attributes=True)

    @post("/annual-review", status_code=200)
    async def review(
        self, db: Db, actor: CurrentActor, broker_id: RowId, data: JSONBody[ReviewRequest]
    ) -> AnnualReviewPublic:
        row = await decisions.record_review(
            session=db,
            actor=actor,
            broker_id=broker_id,
            year=data.year,
            outcome=data.outcome,
            note=data.note,
        )
        return AnnualReviewPublic.model_validate(row, from_attributes=True)
