"""Public-service tasks: types, tasks, claims, evidence submissions, review, spot checks."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody, PathParameter, QueryParameter
from pydantic import BaseModel, Field

from marketplace.access import require
from marketplace.errors import Invalid
from marketplace.tasks import evidence, spotchecks, submissions
from marketplace.tasks import review as reviewing
from marketplace.tasks import service as tasks
from marketplace.tasks.models import (
    BulkApproveRequest,
    BulkApproveResult,
    BulkResult,
    QueueItem,
    ReviewRequest,
    SpotCheckCreate,
    SpotCheckItemPublic,
    SpotCheckPublic,
    SpotCheckResult,
    SubmissionPublic,
    TaskCreate,
    TaskPublic,
    TaskStatus,
    TaskTypeCreate,
    TaskTypePublic,
    TaskTypeUpdate,
    public_task,
    public_type,
)
from web.api.schemas import Paged
from web.auth import principal_of, requires_login
from web.deps import CurrentActor, Db, Paging, RowId

TypeCode = Annotated[str, PathParameter(max_length=40, description="任务类型代码")]
RegionCode = Annotated[str, PathParameter(pattern=r"^\d{6,12}$", description="区县或其下区划代码")]

# A phone sends a few photos at a time; each file is at most 10 MB.
MAX_SUBMISSION_BYTES = 5 * evidence.MAX_FILE_BYTES + 256 * 1024


def provide_store(request: Request[Any, Any, Any]) -> evidence.LocalEvidenceStore:
    return evidence.LocalEvidenceStore(request.app.state.settings.media_dir)


Store = NamedDependency[evidence.LocalEvidenceStore]
STORE = {"store": Provide(provide_store, sync_to_thread=False)}


async def may_submit(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse roles that may not submit before reading a large upload."""
    require(principal_of(connection).actor, "task.submit")


class SettingsBody(BaseModel):
    township_check: bool
    claim_limit: int = Field(default=10, ge=1, le=200)


class SettingsPublic(BaseModel):
    district_code: str
    township_check: bool
    claim_limit: int


async def _public_tasks(db: Db, rows: list[Any]) -> list[TaskPublic]:
    types = await tasks.types_by_id(db, {t.task_type_id for t in rows})
    return [public_task(t, types[t.task_type_id]) for t in rows]


class TaskTypesController(Controller):
    path = "/api/v1/task-types"
    tags = ["公共服务任务"]
    guards = [requires_login]

    @get("/")
    async def list_types(
        self,
        db: Db,
        actor: CurrentActor,
        all_versions: Annotated[bool, QueryParameter(description="含历史版本")] = False,
    ) -> list[TaskTypePublic]:
        rows = await tasks.list_types(session=db, actor=actor, all_versions=all_versions)
        return [public_type(r) for r in rows]

    @post("/")
    async def create(
        self, db: Db, actor: CurrentActor, data: JSONBody[TaskTypeCreate]
    ) -> TaskTypePublic:
        return public_type(await tasks.create_type(session=db, actor=actor, data=data))

    @patch("/{type_code:str}")
    async def update(
        self, db: Db, actor: CurrentActor, type_code: TypeCode, data: JSONBody[TaskTypeUpdate]
    ) -> TaskTypePublic:
        return public_type(
            await tasks.update_type(session=db, actor=actor, code=type_code, data=data)
        )


class TasksController(Controller):
    path = "/api/v1/tasks"
    tags = ["公共服务任务"]
    guards = [requires_login]
    dependencies = STORE

    @post("/")
    async def publish(self, db: Db, actor: CurrentActor, data: JSONBody[TaskCreate]) -> TaskPublic:
        task = await tasks.publish(session=db, actor=actor, data=data)
        return (await _public_tasks(db, [task]))[0]

    @post("/bulk")
    async def bulk_publish(
        self, db: Db, actor: CurrentActor, data: JSONBody[TaskCreate]
    ) -> BulkResult:
        return await tasks.bulk_publish(session=db, actor=actor, data=data)

    @get("/")
    async def list_tasks(
        self,
        db: Db,
        actor: CurrentActor,
        page: Paging,
        mine: Annotated[bool, QueryParameter(description="经纪人：我领取或被指派的任务")] = False,
        status: Annotated[TaskStatus | None, QueryParameter()] = None,
        region_code: Annotated[str | None, QueryParameter(pattern=r"^\d{2,12}$")] = None,
        task_type: Annotated[str | None, QueryParameter(max_length=40)] = None,
    ) -> Paged[TaskPublic]:
        rows, total = await tasks.list_tasks(
            session=db,
            actor=actor,
            limit=page.limit,
            offset=page.offset,
            mine=mine,
            status=status,
            region_code=region_code,
            task_type=task_type,
        )
        return Paged(items=await _public_tasks(db, rows), total=total)

    @get("/{task_id:int}")
    async def get_task(self, db: Db, actor: CurrentActor, task_id: RowId) -> TaskPublic:
        task = await tasks.visible_task(db, actor, task_id)
        return (await _public_tasks(db, [task]))[0]

    @post("/{task_id:int}/claim", status_code=200)
    async def claim(self, db: Db, actor: CurrentActor, task_id: RowId) -> TaskPublic:
        task = await tasks.claim(session=db, actor=actor, task_id=task_id)
        return (await _public_tasks(db, [task]))[0]

    @post(
        "/{task_id:int}/submissions",
        guards=[may_submit],
        request_max_body_size=MAX_SUBMISSION_BYTES,
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        actor: CurrentActor,
        store: Store,
        task_id: RowId,
    ) -> Response[SubmissionPublic]:
        form = await request.form()
        fields = parse_submission(form, request.headers.get("idempotency-key"))
        files = [
            (f.filename or "", await f.read())
            for f in (form.getall("files") if "files" in form else [])
            if isinstance(f, UploadFile)
        ]
        sub, replayed = await submissions.submit(
            session=db, actor=actor, store=store, task_id=task_id, files=files, **fields
        )
        body = await submissions.to_public(db, actor, sub, replayed=replayed)
        return Response(body, status_code=200 if replayed else 201)

    @get("/{task_id:int}/submissions")
    async def list_submissions(
        self, db: Db, actor: CurrentActor, task_id: RowId
    ) -> list[SubmissionPublic]:
        return await submissions.submissions_of_task(session=db, actor=actor, task_id=task_id)

    @post("/{task_id:int}/review", status_code=200)
    async def review(
        self, db: Db, actor: CurrentActor, task_id: RowId, data: JSONBody[ReviewRequest]
    ) -> SubmissionPublic:
        sub = await reviewing.review(session=db, actor=actor, task_id=task_id, data=data)
        return await submissions.to_public(db, actor, sub, replayed=False)

    @post("/review-bulk", status_code=200)
    async def bulk_approve(
        self, db: Db, actor: CurrentActor, data: JSONBody[BulkApproveRequest]
    ) -> BulkApproveResult:
        return await reviewing.bulk_approve(session=db, actor=actor, task_ids=data.task_ids)


def parse_submission(form: Any, header_key: str | None) -> dict[str, Any]:
    """The non-file fields of a submission form, with errors that name the field."""
    raw_quantity = str(form.get("quantity") or "").strip()
    if not raw_quantity.isdigit():
        raise Invalid("quantity", "请填写数量（正整数）")
    worker_ids: list[int] = []
    for value in form.getall("worker_ids") if "worker_ids" in form else []:
        for part in str(value).replace("，", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or len(part) > 10:
                raise Invalid("worker_ids", f"劳动者编号 {part[:12]} 不正确")
            worker_ids.append(int(part))
    note = str(form.get("note") or "")
    if len(note) > 1000:
        raise Invalid("note", "说明最多 1000 个字")
    upload_key = header_key or (str(form.get("upload_id")) if form.get("upload_id") else None)
    return {
        "quantity": int(raw_quantity[:9]),
        "note": note,
        "worker_ids": worker_ids,
        "upload_key": upload_key,
    }


class ReviewQueueController(Controller):
    path = "/api/v1/review-queue"
    tags = ["公共服务任务"]
    guards = [requires_login]

    @get("/")
    async def queue(self, db: Db, actor: CurrentActor, page: Paging) -> Paged[QueueItem]:
        items, total = await reviewing.queue(
            session=db, actor=actor, limit=page.limit, offset=page.offset
        )
        return Paged(items=items, total=total)


class EvidenceController(Controller):
    path = "/api/v1/evidence"
    tags = ["公共服务任务"]
    guards = [requires_login]
    dependencies = STORE

    @get("/{evidence_id:int}")
    async def show(
        self, db: Db, actor: CurrentActor, store: Store, evidence_id: RowId
    ) -> Response[bytes]:
        row, data = await submissions.evidence_file(
            session=db, actor=actor, store=store, evidence_id=evidence_id
        )
        return evidence_response(row.media_type, row.id or 0, data)


def evidence_response(media_type: str, evidence_id: int, data: bytes) -> Response[bytes]:
    ext = evidence.EXTENSIONS[media_type]
    return Response(
        data,
        media_type=media_type,
        headers={
            "Content-Disposition": f"inline; filename=evidence-{evidence_id}.{ext}",
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )


class SpotChecksController(Controller):
    path = "/api/v1/spot-checks"
    tags = ["公共服务任务"]
    guards = [requires_login]

    @post("/")
    async def draw(
        self, db: Db, actor: CurrentActor, data: JSONBody[SpotCheckCreate]
    ) -> SpotCheckPublic:
        check = await spotchecks.draw(session=db, actor=actor, data=data)
        return await spotchecks.get(session=db, actor=actor, spot_check_id=check.id or 0)

    @get("/")
    async def list_checks(
        self, db: Db, actor: CurrentActor, page: Paging
    ) -> Paged[SpotCheckPublic]:
        rows, total = await spotchecks.list_checks(
            session=db, actor=actor, limit=page.limit, offset=page.offset
        )
        return Paged(
            items=[SpotCheckPublic.model_validate(r, from_attributes=True) for r in rows],
            total=total,
        )

    @get("/{spot_check_id:int}")
    async def get_check(self, db: Db, actor: CurrentActor, spot_check_id: RowId) -> SpotCheckPublic:
        return await spotchecks.get(session=db, actor=actor, spot_check_id=spot_check_id)

    @post("/{spot_check_id:int}/results", status_code=200)
    async def record(
        self, db: Db, actor: CurrentActor, spot_check_id: RowId, data: JSONBody[SpotCheckResult]
    ) -> SpotCheckItemPublic:
        item = await spotchecks.record_result(
            session=db, actor=actor, spot_check_id=spot_check_id, data=data
        )
        return SpotCheckItemPublic.model_validate(item, from_attributes=True)


class TaskSettingsController(Controller):
    """Per district: whether townships check evidence first, and the claim limit."""

    path = "/api/v1/task-settings"
    tags = ["公共服务任务"]
    guards = [requires_login]

    @get("/{code:str}")
    async def show(self, db: Db, actor: CurrentActor, code: RegionCode) -> SettingsPublic:
        require(actor, "task.settings", region_code=code[:6])
        row = await tasks.district_setting(db, code[:6])
        return SettingsPublic(
            district_code=row.district_code,
            township_check=row.township_check,
            claim_limit=row.claim_limit,
        )

    @put("/{code:str}")
    async def update(
        self, db: Db, actor: CurrentActor, code: RegionCode, data: JSONBody[SettingsBody]
    ) -> SettingsPublic:
        row = await tasks.set_district_setting(
            session=db,
            actor=actor,
            region_code=code,
            township_check=data.township_check,
            claim_limit=data.claim_limit,
        )
        return SettingsPublic(
            district_code=row.district_code,
            township_check=row.township_check,
            claim_limit=row.claim_limit,
        )


CONTROLLERS = [
    TaskTypesController,
    TasksController,
    ReviewQueueController,
    EvidenceController,
    SpotChecksController,
    TaskSettingsController,
]
