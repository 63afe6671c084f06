"""The worker register (劳动者实名台账)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.params import JSONBody, QueryParameter

from marketplace.workers import dedupe, records
from marketplace.workers import service as workers
from marketplace.workers.models import (
    DeleteRequest,
    DismissRequest,
    DuplicatePair,
    EmploymentStatus,
    MergeRequest,
    WorkerChangePublic,
    WorkerCreate,
    WorkerPublic,
    WorkerUpdate,
)
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, Occupations, Paging, RowId


class WorkersController(Controller):
    path = "/api/v1/workers"
    tags = ["劳动者"]
    guards = [requires_login]

    @post("/")
    async def create(
        self,
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        occupations: Occupations,
        data: JSONBody[WorkerCreate],
    ) -> WorkerPublic:
        worker = await workers.register(
            session=db, actor=actor, cipher=cipher, data=data, occupations=occupations
        )
        return records.to_public(worker, cipher)

    @get("/")
    async def list_workers(
        self,
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        page: Paging,
        q: Annotated[str | None, QueryParameter(max_length=32, description="姓名")] = None,
        village_code: Annotated[
            str | None, QueryParameter(pattern=r"^\d{2,12}$", description="户籍区划代码前缀")
        ] = None,
        employment_status: Annotated[EmploymentStatus | None, QueryParameter()] = None,
        broker_id: Annotated[int | None, QueryParameter(ge=1, le=2_147_483_647)] = None,
    ) -> Paged[WorkerPublic]:
        items, total = await workers.list_workers(
            session=db,
            actor=actor,
            limit=page.limit,
            offset=page.offset,
            q=q,
            village_code=village_code,
            employment_status=employment_status,
            broker_id=broker_id,
        )
        return Paged(items=[records.to_public(w, cipher) for w in items], total=total)

    @get("/duplicates")
    async def duplicates(
        self, db: Db, actor: CurrentActor, cipher: Cipher, page: Paging
    ) -> Paged[DuplicatePair]:
        pairs = await dedupe.likely_duplicates(session=db, actor=actor, cipher=cipher)
        return Paged(items=pairs[page.offset : page.offset + page.limit], total=len(pairs))

    @post("/duplicates/dismiss", status_code=204)
    async def dismiss(self, db: Db, actor: CurrentActor, data: JSONBody[DismissRequest]) -> None:
        await dedupe.dismiss(session=db, actor=actor, data=data)

    @get("/{worker_id:int}")
    async def get_worker(
        self,
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        worker_id: RowId,
        reveal: Annotated[
            bool, QueryParameter(description="显示完整证件号和手机号（留审计记录）")
        ] = False,
    ) -> WorkerPublic:
        return await workers.get_worker(
            session=db, actor=actor, cipher=cipher, worker_id=worker_id, reveal=reveal
        )

    @patch("/{worker_id:int}")
    async def update(
        self,
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        occupations: Occupations,
        worker_id: RowId,
        data: JSONBody[WorkerUpdate],
    ) -> WorkerPublic:
        worker = await workers.update_worker(
            session=db,
            actor=actor,
            cipher=cipher,
            worker_id=worker_id,
            data=data,
            occupations=occupations,
        )
        return records.to_public(worker, cipher)

    @delete("/{worker_id:int}", status_code=204)
    async def remove(
        self, db: Db, actor: CurrentActor, worker_id: RowId, data: JSONBody[DeleteRequest]
    ) -> None:
        await workers.delete_worker(
            session=db, actor=actor, worker_id=worker_id, reason=data.reason
        )

    @get("/{worker_id:int}/history")
    async def history(
        self, db: Db, actor: CurrentActor, cipher: Cipher, page: Paging, worker_id: RowId
    ) -> Paged[WorkerChangePublic]:
        rows = await workers.history(session=db, actor=actor, cipher=cipher, worker_id=worker_id)
        return Paged(items=rows[page.offset : page.offset + page.limit], total=len(rows))

    @post("/{worker_id:int}/verify", status_code=200)
    async def verify(
        self, db: Db, actor: CurrentActor, cipher: Cipher, worker_id: RowId
    ) -> WorkerPublic:
        worker = await workers.verify(session=db, actor=actor, worker_id=worker_id)
        return records.to_public(worker, cipher)

    @post("/{worker_id:int}/merge", status_code=200)
    async def merge(
        self,
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        worker_id: RowId,
        data: JSONBody[MergeRequest],
    ) -> WorkerPublic:
        worker = await dedupe.merge(
            session=db, actor=actor, cipher=cipher, worker_id=worker_id, other_id=data.other_id
        )
        return records.to_public(worker, cipher)
