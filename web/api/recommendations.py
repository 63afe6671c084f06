"""Recommendations, their status, placements and the first-wage report."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import JSONBody, QueryParameter
from pydantic import BaseModel, Field

from marketplace.clock import local, utcnow
from marketplace.placements import followup, queries, service
from marketplace.placements.models import (
    PlacementPublic,
    RecommendationCreate,
    RecommendationPublic,
    RecommendationStatus,
    StatusChange,
    WageReportCreate,
)
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, Paging, RowId

OptionalId = Annotated[int | None, QueryParameter(ge=1, le=2_147_483_647)]


def _today() -> date:
    """Today in Chongqing: start dates and the wage follow-up are local dates."""
    return local(utcnow()).date()


class RecommendationsController(Controller):
    path = "/api/v1/recommendations"
    tags = ["推荐"]
    guards = [requires_login]

    @post("/")
    async def create(
        self, db: Db, actor: CurrentActor, cipher: Cipher, data: JSONBody[RecommendationCreate]
    ) -> RecommendationPublic:
        rec = await service.recommend(session=db, actor=actor, data=data)
        assert rec.id is not None
        return await queries.get_recommendation(
            session=db, actor=actor, cipher=cipher, recommendation_id=rec.id, today=_today()
        )

    @get("/")
    async def list_recommendations(
        self,
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        page: Paging,
        job_id: OptionalId = None,
        worker_id: OptionalId = None,
        status: Annotated[RecommendationStatus | None, QueryParameter()] = None,
    ) -> Paged[RecommendationPublic]:
        items, total = await queries.list_recommendations(
            session=db,
            actor=actor,
            cipher=cipher,
            today=_today(),
            job_id=job_id,
            worker_id=worker_id,
            status=status,
            limit=page.limit,
            offset=page.offset,
        )
        return Paged(items=items, total=total)

    @get("/{recommendation_id:int}")
    async def get_one(
        self, db: Db, actor: CurrentActor, cipher: Cipher, recommendation_id: RowId
    ) -> RecommendationPublic:
        return await queries.get_recommendation(
            session=db,
            actor=actor,
            cipher=cipher,
            recommendation_id=recommendation_id,
            today=_today(),
        )

    @post("/{recommendation_id:int}/status", status_code=200)
    async def change_status(
        self,
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        recommendation_id: RowId,
        data: JSONBody[StatusChange],
    ) -> RecommendationPublic:
        await service.change_status(
            session=db,
            actor=actor,
            recommendation_id=recommendation_id,
            data=data,
            today=_today(),
        )
        return await queries.get_recommendation(
            session=db,
            actor=actor,
            cipher=cipher,
            recommendation_id=recommendation_id,
            today=_today(),
        )


class ArrearsResolve(BaseModel):
    note: str = Field(max_length=500)


class PlacementsController(Controller):
    path = "/api/v1/placements"
    tags = ["推荐"]
    guards = [requires_login]

    @get("/{placement_id:int}")
    async def get_one(self, db: Db, actor: CurrentActor, placement_id: RowId) -> PlacementPublic:
        return await queries.get_placement(session=db, actor=actor, placement_id=placement_id)

    @post("/{placement_id:int}/arrears/resolve", status_code=200)
    async def resolve_arrears(
        self, db: Db, actor: CurrentActor, placement_id: RowId, data: JSONBody[ArrearsResolve]
    ) -> PlacementPublic:
        await followup.resolve_arrears(
            session=db, actor=actor, placement_id=placement_id, note=data.note
        )
        return await queries.get_placement(session=db, actor=actor, placement_id=placement_id)

    @post("/{placement_id:int}/wage-reports", status_code=201)
    async def report_wage(
        self, db: Db, actor: CurrentActor, placement_id: RowId, data: JSONBody[WageReportCreate]
    ) -> PlacementPublic:
        await followup.report_wage(
            session=db, actor=actor, placement_id=placement_id, data=data, today=_today()
        )
        return await queries.get_placement(session=db, actor=actor, placement_id=placement_id)
