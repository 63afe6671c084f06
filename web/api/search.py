"""Worker and job search (docs/search.md)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get
from litestar.params import QueryParameter
from sqlmodel import SQLModel

from marketplace.jobs.models import Job
from marketplace.workers import records
from marketplace.workers.models import EmploymentStatus, WageUnit, WorkerPublic
from matching.search import SearchBackend
from matching.search import service as search
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, Paging

RegionCode = Annotated[
    str | None, QueryParameter(pattern=r"^\d{2,12}$", description="区划代码（含下级）")
]
Keyword = Annotated[str | None, QueryParameter(description="关键词（最多 50 个字）")]
Occupation = Annotated[
    str | None, QueryParameter(max_length=50, description="工种（名称、编号或常见叫法）")
]


class JobSearchItem(SQLModel):
    id: int
    organization_id: int
    organization_name: str
    title: str
    occupation_code: str | None
    headcount: int
    wage_min_fen: int
    wage_max_fen: int
    wage_unit: str
    work_region_code: str
    work_location_text: str | None
    starts_on: date
    ends_on: date | None
    board: bool
    lodging: bool
    social_insurance: bool
    status: str


def _backend(request: Request[Any, Any, Any]) -> SearchBackend:
    backend: SearchBackend = request.app.state.search
    return backend


def _job_item(job: Job, organization_name: str) -> JobSearchItem:
    return JobSearchItem.model_validate(
        {**job.model_dump(), "organization_name": organization_name}
    )


class SearchController(Controller):
    path = "/api/v1"
    tags = ["搜索"]
    guards = [requires_login]

    @get("/workers/search")
    async def workers(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        page: Paging,
        q: Keyword = None,
        occupation: Occupation = None,
        village_code: RegionCode = None,
        employment_status: Annotated[EmploymentStatus | None, QueryParameter()] = None,
        available_by: Annotated[
            date | None, QueryParameter(description="此日期前可上岗（未填可上岗日期视为随时）")
        ] = None,
        sort: Annotated[
            Literal["relevance", "updated", "available"], QueryParameter(description="排序")
        ] = "relevance",
    ) -> Paged[WorkerPublic]:
        items, total = await search.search_workers(
            session=db,
            backend=_backend(request),
            actor=actor,
            params=search.WorkerSearch(
                q=q,
                occupation=occupation,
                village_code=village_code,
                employment_status=employment_status,
                available_by=available_by,
                sort=sort,
                limit=page.limit,
                offset=page.offset,
            ),
        )
        return Paged(items=[records.to_public(w, cipher) for w in items], total=total)

    @get("/jobs/search")
    async def jobs(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        page: Paging,
        q: Keyword = None,
        occupation: Occupation = None,
        region_code: RegionCode = None,
        wage_min_fen: Annotated[
            int | None, QueryParameter(ge=0, le=10**9, description="最低工资（分）：岗位最高可达")
        ] = None,
        wage_unit: Annotated[WageUnit | None, QueryParameter()] = None,
        starts_from: Annotated[date | None, QueryParameter(description="开工不早于")] = None,
        starts_until: Annotated[date | None, QueryParameter(description="开工不晚于")] = None,
        board: Annotated[bool | None, QueryParameter(description="包吃")] = None,
        lodging: Annotated[bool | None, QueryParameter(description="包住")] = None,
        sort: Annotated[
            Literal["relevance", "updated", "wage", "starts"], QueryParameter(description="排序")
        ] = "relevance",
    ) -> Paged[JobSearchItem]:
        hits, total = await search.search_jobs(
            session=db,
            backend=_backend(request),
            params=search.JobSearch(
                q=q,
                occupation=occupation,
                region_code=region_code,
                wage_floor_fen=wage_min_fen,
                wage_unit=wage_unit,
                starts_from=starts_from,
                starts_until=starts_until,
                board=board,
                lodging=lodging,
                sort=sort,
                limit=page.limit,
                offset=page.offset,
            ),
        )
        return Paged(items=[_job_item(h.job, h.organization_name) for h in hits], total=total)
