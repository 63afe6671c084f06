"""Task pages. Brokers (phone first): open tasks near me, my tasks, claim, submit
evidence with the camera, review results. Officers: publish (also for every village
of a region), the review queue with evidence side by side, spot checks."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Actor, Role, can
from marketplace.db import begin_write
from marketplace.errors import DomainError, Invalid, NotFound
from marketplace.funding import funding_label
from marketplace.regions import service as regions
from marketplace.tasks import evidence, rules, spotchecks, submissions
from marketplace.tasks import review as reviewing
from marketplace.tasks import service as tasks
from marketplace.tasks.models import (
    EVIDENCE_LABELS,
    STATUS_LABELS,
    BulkApproveResult,
    ReviewRequest,
    ServiceTask,
    SpotCheckCreate,
    SpotCheckResult,
    TaskCreate,
    TaskType,
    TaskTypeUpdate,
)
from marketplace.workers.models import Worker
from web.api.tasks import MAX_SUBMISSION_BYTES, TypeCode, evidence_response, parse_submission
from web.auth import requires_login
from web.deps import CurrentActor, Db, Paging, RowId
from web.pages.base import field_errors, refuse_in_form, render

SUBMISSION_LABELS = {
    "pending": "待审核",
    "township_checked": "乡镇已初审",
    "approved": "已通过",
    "partly_approved": "部分通过",
    "rejected": "已退回",
    "reversed": "抽查未通过，已追回",
}
LABELS: dict[str, Any] = {
    "STATUS_LABELS": STATUS_LABELS,
    "SUBMISSION_LABELS": SUBMISSION_LABELS,
    "EVIDENCE_LABELS": EVIDENCE_LABELS,
    "REASON_LABELS": rules.REASON_LABELS,
    "funding_label": funding_label,
    "yuan": lambda fen: "" if fen is None else f"{fen / 100:,.2f}",
}


def _store(request: Request[Any, Any, Any]) -> evidence.LocalEvidenceStore:
    return evidence.LocalEvidenceStore(request.app.state.settings.media_dir)


async def _names(db: AsyncSession, codes: set[str]) -> dict[str, str]:
    return await regions.names(session=db, codes=codes)


async def _show(
    request: Request[Any, Any, Any], db: AsyncSession, name: str, **ctx: Any
) -> Template:
    return await render(request, db, name, **LABELS, **ctx)


async def _types(db: AsyncSession, rows: list[ServiceTask]) -> dict[int, TaskType]:
    return await tasks.types_by_id(db, {t.task_type_id for t in rows})


# --- lists ---------------------------------------------------------------------------


@get("/tasks", guards=[requires_login], include_in_schema=False)
async def tasks_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    page: Paging,
    tab: Annotated[str, QueryParameter(max_length=8)] = "near",
    status: Annotated[str | None, QueryParameter(max_length=20)] = None,
    published: Annotated[int | None, QueryParameter(ge=0, le=100_000)] = None,
) -> Template:
    broker = actor.role == Role.broker
    mine = broker and tab == "mine"
    wanted = status if status in STATUS_LABELS else None
    rows, total = await tasks.list_tasks(
        session=db, actor=actor, limit=page.limit, offset=page.offset, mine=mine, status=wanted
    )
    return await _show(
        request,
        db,
        "tasks/list.html",
        rows=rows,
        total=total,
        page=page,
        types=await _types(db, rows),
        names=await _names(db, {t.region_code for t in rows}),
        broker=broker,
        tab="mine" if mine else "near",
        status=wanted or "",
        query={k: v for k, v in (("tab", tab if broker else None), ("status", wanted)) if v},
        can_publish=can(actor, "task.publish"),
        can_review=can(actor, "task.review"),
        can_spot_check=can(actor, "spot_check.view"),
        published=published,
    )


# --- publishing ------------------------------------------------------------------------


async def _publish_form(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    form: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    types = await tasks.list_types(session=db, actor=actor)
    return await _show(
        request,
        db,
        "tasks/new.html",
        types=[t for t in types if t.active],
        form=form,
        errors=errors,
        status_code=status_code,
    )


@get("/tasks/new", guards=[requires_login], include_in_schema=False)
async def task_new(request: Request[Any, Any, Any], db: Db, actor: CurrentActor) -> Template:
    if not can(actor, "task.publish"):
        raise NotFound("页面不存在")
    form = {"region_code": actor.region_code if len(actor.region_code) > 2 else "", "quantity": 1}
    return await _publish_form(request, db, actor, form, {})


@post("/tasks/new", guards=[requires_login], include_in_schema=False)
async def task_publish(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor
) -> Response[Any] | Template:
    form = {k: v for k, v in (await request.form()).items() if k != "_csrf_token"}
    bulk = form.get("each_village") == "1"
    try:
        deadline = datetime.fromisoformat(str(form.get("deadline") or ""))
    except ValueError:
        deadline = None
    errors: dict[str, str] = {}
    status = 422
    if deadline is None:
        errors["deadline"] = "请选择截止时间"
    else:
        try:
            data = TaskCreate(
                task_type=str(form.get("task_type") or ""),
                region_code=str(form.get("region_code") or "").strip(),
                quantity=int(str(form.get("quantity") or "0") or 0)
                if str(form.get("quantity") or "").isdigit()
                else 0,
                deadline=deadline,
                instructions=str(form.get("instructions") or ""),
                broker_id=int(str(form["broker_id"]))
                if str(form.get("broker_id") or "").isdigit()
                else None,
            )
            if bulk:
                result = await tasks.bulk_publish(session=db, actor=actor, data=data)
                return Redirect(
                    f"/tasks?published={result.created}", status_code=HTTP_303_SEE_OTHER
                )
            task = await tasks.publish(session=db, actor=actor, data=data)
            return Redirect(f"/tasks/{task.id}?saved=published", status_code=HTTP_303_SEE_OTHER)
        except ValidationError as exc:
            errors = field_errors(exc)
        except DomainError as exc:
            errors, status = {exc.field or "_": exc.message}, exc.status
    await refuse_in_form(request, db, status)
    return await _publish_form(request, db, actor, form, errors, status_code=status)


# --- one task ----------------------------------------------------------------------------


async def _my_workers(db: AsyncSession, actor: Actor) -> list[Worker]:
    broker, villages = await tasks.my_broker(db, actor)
    rows = await db.execute(
        select(Worker)
        .where(
            col(Worker.deleted_at).is_(None),
            (col(Worker.hukou_village_code).in_(villages)) | (col(Worker.broker_id) == broker.id),
        )
        .order_by(col(Worker.name))
        .limit(300)
    )
    return list(rows.scalars())


async def _task_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    task_id: int,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    notice: str | None = None,
) -> Template:
    task = await tasks.visible_task(db, actor, task_id)
    ttype = (await tasks.types_by_id(db, {task.task_type_id}))[task.task_type_id]
    subs = await submissions.submissions_of_task(session=db, actor=actor, task_id=task_id)
    broker = actor.role == Role.broker
    mine = False
    if broker:
        me, _ = await tasks.my_broker(db, actor)
        mine = task.broker_id == me.id
    may_submit = mine and task.status in ("claimed", "rejected")
    pending = next((s for s in subs if s.status in ("pending", "township_checked")), None)
    return await _show(
        request,
        db,
        "tasks/detail.html",
        task=task,
        ttype=ttype,
        subs=subs,
        names=await _names(db, {task.region_code}),
        broker=broker,
        mine=mine,
        may_claim=broker and task.status == "open",
        may_submit=may_submit,
        workers=await _my_workers(db, actor) if may_submit and ttype.per_person else [],
        may_review=can(actor, "task.review", region_code=task.region_code) and pending is not None,
        township=actor.role == Role.township_officer,
        pending=pending,
        errors=errors or {},
        notice=notice,
        upload_id=secrets.token_urlsafe(12),
        max_mb=evidence.MAX_FILE_BYTES // (1024 * 1024),
        status_code=status_code,
    )


NOTICES = {
    "published": "任务已发布。",
    "claimed": "已领取。完成服务后在下面上传证明材料。",
    "submitted": "已提交，等待审核。",
    "reviewed": "审核结果已保存，并已通知经纪人。",
}


@get("/tasks/{task_id:int}", guards=[requires_login], include_in_schema=False)
async def task_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    task_id: RowId,
    saved: Annotated[str | None, QueryParameter(max_length=16)] = None,
) -> Template:
    return await _task_page(request, db, actor, task_id, notice=NOTICES.get(saved or ""))


@post("/tasks/{task_id:int}/claim", guards=[requires_login], include_in_schema=False)
async def task_claim(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, task_id: RowId
) -> Response[Any] | Template:
    try:
        await tasks.claim(session=db, actor=actor, task_id=task_id)
    except DomainError as exc:
        await refuse_in_form(request, db, exc)
        return await _task_page(
            request, db, actor, task_id, errors={"claim": exc.message}, status_code=exc.status
        )
    return Redirect(f"/tasks/{task_id}?saved=claimed", status_code=HTTP_303_SEE_OTHER)


@post(
    "/tasks/{task_id:int}/submit",
    guards=[requires_login],
    include_in_schema=False,
    request_max_body_size=MAX_SUBMISSION_BYTES,
)
async def task_submit(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, task_id: RowId
) -> Response[Any] | Template:
    form = await request.form()
    try:
        fields = parse_submission(form, None)
        files = [
            (f.filename or "", await f.read())
            for f in (form.getall("files") if "files" in form else [])
            if isinstance(f, UploadFile) and f.filename
        ]
        await submissions.submit(
            session=db, actor=actor, store=_store(request), task_id=task_id, files=files, **fields
        )
    except DomainError as exc:
        if getattr(exc, "keep_changes", False):
            await db.commit()  # a refused double count is kept for the reviewer
            await begin_write(db)
        errors = await refuse_in_form(request, db, exc)
        return await _task_page(request, db, actor, task_id, errors=errors, status_code=exc.status)
    return Redirect(f"/tasks/{task_id}?saved=submitted", status_code=HTTP_303_SEE_OTHER)


@post("/tasks/{task_id:int}/review", guards=[requires_login], include_in_schema=False)
async def task_review(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, task_id: RowId
) -> Response[Any] | Template:
    form = await request.form()
    raw = str(form.get("approved_quantity") or "").strip()
    try:
        data = ReviewRequest(
            decision=str(form.get("decision") or ""),  # type: ignore[arg-type]
            approved_quantity=int(raw) if raw.isdigit() else None,
            comment=str(form.get("comment") or "") or None,
        )
        await reviewing.review(session=db, actor=actor, task_id=task_id, data=data)
    except ValidationError as exc:
        await refuse_in_form(request, db, 422)
        return await _task_page(
            request, db, actor, task_id, errors=field_errors(exc), status_code=422
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _task_page(request, db, actor, task_id, errors=errors, status_code=exc.status)
    return Redirect("/tasks/review?saved=reviewed", status_code=HTTP_303_SEE_OTHER)


@get("/tasks/evidence/{evidence_id:int}", guards=[requires_login], include_in_schema=False)
async def evidence_page(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, evidence_id: RowId
) -> Response[bytes]:
    """The same authorised, stripped copy as ``GET /api/v1/evidence/{id}``, for pages."""
    row, data = await submissions.evidence_file(
        session=db, actor=actor, store=_store(request), evidence_id=evidence_id
    )
    return evidence_response(row.media_type, row.id or 0, data)


# --- review queue ------------------------------------------------------------------------


@get("/tasks/review", guards=[requires_login], include_in_schema=False)
async def review_queue_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    page: Paging,
    saved: Annotated[str | None, QueryParameter(max_length=16)] = None,
) -> Template:
    items, total = await reviewing.queue(
        session=db, actor=actor, limit=page.limit, offset=page.offset
    )
    return await _show(
        request,
        db,
        "tasks/queue.html",
        items=items,
        total=total,
        page=page,
        query={},
        names=await _names(db, {i.region_code for i in items}),
        notice=NOTICES.get(saved or ""),
        result=None,
    )


@post("/tasks/review/bulk", guards=[requires_login], include_in_schema=False)
async def review_bulk(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, page: Paging
) -> Template:
    form = await request.form()
    ids = [
        int(v) for v in (form.getall("task_ids") if "task_ids" in form else []) if str(v).isdigit()
    ]
    result = (
        await reviewing.bulk_approve(session=db, actor=actor, task_ids=ids[:200])
        if ids
        else BulkApproveResult(approved=[], skipped={})
    )
    items, total = await reviewing.queue(
        session=db, actor=actor, limit=page.limit, offset=page.offset
    )
    return await _show(
        request,
        db,
        "tasks/queue.html",
        items=items,
        total=total,
        page=page,
        query={},
        names=await _names(db, {i.region_code for i in items}),
        notice=None,
        result=result,
    )


# --- spot checks ---------------------------------------------------------------------------


@get("/spot-checks", guards=[requires_login], include_in_schema=False)
async def spot_checks_page(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, page: Paging
) -> Template:
    rows, total = await spotchecks.list_checks(
        session=db, actor=actor, limit=page.limit, offset=page.offset
    )
    return await _show(
        request,
        db,
        "tasks/spot_checks.html",
        rows=rows,
        total=total,
        page=page,
        query={},
        names=await _names(db, {r.region_code for r in rows}),
        form={"region_code": actor.region_code, "period": tasks.current_period(), "sample_size": 5},
        errors={},
    )


@post("/spot-checks", guards=[requires_login], include_in_schema=False)
async def spot_check_draw(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, page: Paging
) -> Response[Any] | Template:
    form = {k: v for k, v in (await request.form()).items() if k != "_csrf_token"}
    raw_size, raw_seed = str(form.get("sample_size") or ""), str(form.get("seed") or "").strip()
    try:
        data = SpotCheckCreate(
            region_code=str(form.get("region_code") or "").strip(),
            period=str(form.get("period") or "").strip(),
            sample_size=int(raw_size) if raw_size.isdigit() else 0,
            seed=int(raw_seed) if raw_seed.isdigit() else None,
        )
        check = await spotchecks.draw(session=db, actor=actor, data=data)
    except ValidationError as exc:
        errors, status = field_errors(exc), 422
    except DomainError as exc:
        errors, status = {exc.field or "_": exc.message}, exc.status
    else:
        return Redirect(f"/spot-checks/{check.id}", status_code=HTTP_303_SEE_OTHER)
    await refuse_in_form(request, db, status)
    rows, total = await spotchecks.list_checks(
        session=db, actor=actor, limit=page.limit, offset=page.offset
    )
    return await _show(
        request,
        db,
        "tasks/spot_checks.html",
        rows=rows,
        total=total,
        page=page,
        query={},
        names=await _names(db, {r.region_code for r in rows}),
        form=form,
        errors=errors,
        status_code=status,
    )


async def _check_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    spot_check_id: int,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    check = await spotchecks.get(session=db, actor=actor, spot_check_id=spot_check_id)
    task_rows = {
        t.id: t
        for t in (
            await db.execute(
                select(ServiceTask).where(col(ServiceTask.id).in_([i.task_id for i in check.items]))
            )
        ).scalars()
    }
    return await _show(
        request,
        db,
        "tasks/spot_check.html",
        check=check,
        task_rows=task_rows,
        types=await _types(db, list(task_rows.values())),
        names=await _names(db, {check.region_code, *(t.region_code for t in task_rows.values())}),
        errors=errors or {},
        status_code=status_code,
    )


@get("/spot-checks/{spot_check_id:int}", guards=[requires_login], include_in_schema=False)
async def spot_check_page(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, spot_check_id: RowId
) -> Template:
    return await _check_page(request, db, actor, spot_check_id)


@post("/spot-checks/{spot_check_id:int}/results", guards=[requires_login], include_in_schema=False)
async def spot_check_record(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, spot_check_id: RowId
) -> Response[Any] | Template:
    form = await request.form()
    raw = str(form.get("task_id") or "")
    try:
        data = SpotCheckResult(
            task_id=int(raw) if raw.isdigit() else 0,
            result=str(form.get("result") or ""),
            notes=str(form.get("notes") or "") or None,
        )
        await spotchecks.record_result(
            session=db, actor=actor, spot_check_id=spot_check_id, data=data
        )
    except ValidationError as exc:
        await refuse_in_form(request, db, 422)
        errors = {f"{raw}:{k}": v for k, v in field_errors(exc).items()}
        return await _check_page(request, db, actor, spot_check_id, errors, 422)
    except DomainError as exc:
        await refuse_in_form(request, db, exc)
        errors = {f"{raw}:{exc.field or '_'}": exc.message}
        return await _check_page(request, db, actor, spot_check_id, errors, exc.status)
    return Redirect(f"/spot-checks/{spot_check_id}", status_code=HTTP_303_SEE_OTHER)


# --- task types and district settings ------------------------------------------------------


async def _types_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    notice: str | None = None,
) -> Template:
    rows = await tasks.list_types(session=db, actor=actor, all_versions=True)
    current = [t for t in rows if t.current]
    history: dict[str, list[TaskType]] = {}
    for t in rows:
        if not t.current:
            history.setdefault(t.code, []).append(t)
    setting = None
    if can(actor, "task.settings") and len(actor.region_code) == 6:
        setting = await tasks.district_setting(db, actor.region_code)
    return await _show(
        request,
        db,
        "tasks/types.html",
        current=current,
        history=history,
        can_manage=can(actor, "task_type.manage"),
        setting=setting,
        errors=errors or {},
        notice=notice,
        status_code=status_code,
    )


@get("/tasks/types", guards=[requires_login], include_in_schema=False)
async def types_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    saved: Annotated[str | None, QueryParameter(max_length=16)] = None,
) -> Template:
    notice = {"rate": "已保存为新版本；此后发布的任务按新标准计。", "settings": "设置已保存。"}
    return await _types_page(request, db, actor, notice=notice.get(saved or ""))


@post("/tasks/types/{type_code:str}", guards=[requires_login], include_in_schema=False)
async def type_update(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, type_code: TypeCode
) -> Response[Any] | Template:
    form = await request.form()
    raw = str(form.get("rate_yuan") or "").strip()
    try:
        fen = round(float(raw) * 100) if raw else -1
    except ValueError:
        fen = -1
    try:
        if fen < 0:
            raise Invalid("rate_fen", "请填写补贴标准（元，可带两位小数）")
        await tasks.update_type(
            session=db, actor=actor, code=type_code, data=TaskTypeUpdate(rate_fen=fen)
        )
    except ValidationError as exc:
        await refuse_in_form(request, db, 422)
        errors = {f"{type_code}:{k}": v for k, v in field_errors(exc).items()}
        return await _types_page(request, db, actor, errors, 422)
    except DomainError as exc:
        await refuse_in_form(request, db, exc)
        return await _types_page(
            request, db, actor, {f"{type_code}:{exc.field}": exc.message}, exc.status
        )
    return Redirect("/tasks/types?saved=rate", status_code=HTTP_303_SEE_OTHER)


@post("/tasks/settings", guards=[requires_login], include_in_schema=False)
async def settings_update(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor
) -> Response[Any] | Template:
    form = await request.form()
    raw = str(form.get("claim_limit") or "").strip()
    try:
        if not raw.isdigit() or not 1 <= int(raw) <= 200:
            raise Invalid("claim_limit", "领取上限应为 1–200 的整数")
        await tasks.set_district_setting(
            session=db,
            actor=actor,
            region_code=actor.region_code,
            township_check=form.get("township_check") == "1",
            claim_limit=int(raw),
        )
    except DomainError as exc:
        await refuse_in_form(request, db, exc)
        return await _types_page(request, db, actor, {exc.field or "_": exc.message}, exc.status)
    return Redirect("/tasks/types?saved=settings", status_code=HTTP_303_SEE_OTHER)


PAGES = [
    tasks_page,
    types_page,
    type_update,
    settings_update,
    task_new,
    task_publish,
    review_queue_page,
    review_bulk,
    evidence_page,
    task_page,
    task_claim,
    task_submit,
    task_review,
    spot_checks_page,
    spot_check_draw,
    spot_check_page,
    spot_check_record,
]
