"""Jobs: post, manage, submit for review, review (search and candidates live in
web/api/search.py and the matching routes)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.params import JSONBody, QueryParameter

from marketplace.jobs import service as jobs
from marketplace.jobs.models import JobCreate, JobPublic, JobStatus, JobUpdate, ReviewRequest
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import CurrentActor, Db, JobOccupationsDep, Paging, RowId


class JobsController(Controller):
    path = "/api/v1/jobs"
    tags = ["岗位"]
    guards = [requires_login]

    @post("/")
    async def create(
        self,
        db: Db,
        actor: CurrentActor,
        job_occupations: JobOccupationsDep,
        data: JSONBody[JobCreate],
    ) -> JobPublic:
        job = await jobs.create(session=db, actor=actor, data=data, occupations=job_occupations)
        return jobs.to_public(job)

    @get("/")
    async def list_jobs(
        self,
        db: Db,
        actor: CurrentActor,
        page: Paging,
        status: Annotated[JobStatus | None, QueryParameter()] = None,
        organization_id: Annotated[int | None, QueryParameter(ge=1, le=2_147_483_647)] = None,
        region_code: Annotated[
            str | None, QueryParameter(pattern=r"^\d{2,12}$", description="工作地点区划代码前缀")
        ] = None,
        queue: Annotated[
            bool, QueryParameter(description="审核队列：本区县待审核岗位，有提示的在前")
        ] = False,
    ) -> Paged[JobPublic]:
        items, total = await jobs.list_jobs(
            session=db,
            actor=actor,
            limit=page.limit,
            offset=page.offset,
            status=status,
            organization_id=organization_id,
            region_code=region_code,
            queue=queue,
        )
        return Paged(items=[jobs.to_public(j) for j in items], total=total)

    @get("/{job_id:int}")
    async def get_job(self, db: Db, actor: CurrentActor, job_id: RowId) -> JobPublic:
        return jobs.to_public(await jobs.get(db, actor, job_id))

    @patch("/{job_id:int}")
    async def update(
        self,
        db: Db,
        actor: CurrentActor,
        job_occupations: JobOccupationsDep,
        job_id: RowId,
        data: JSONBody[JobUpdate],
    ) -> JobPublic:
        job = await jobs.update(
            session=db, actor=actor, job_id=job_id, data=data, occupations=job_occupations
        )
        return jobs.to_public(job)

    @post("/{job_id:int}/submit", status_code=200)
    async def submit(self, db: Db, actor: CurrentActor, job_id: RowId) -> JobPublic:
        job = await jobs.submit(session=db, actor=actor, job_id=job_id, today=jobs.today_local())
        return jobs.to_public(job)

    @post("/{job_id:int}/review", status_code=200)
    async def review(
        self, db: Db, actor: CurrentActor, job_id: RowId, data: JSONBody[ReviewRequest]
    ) -> JobPublic:
        job = await jobs.review(
            session=db, actor=actor, job_id=job_id, data=data, today=jobs.today_local()
        )
        return jobs.to_public(job)
