"""The worker register (我的劳动者) for brokers, read-only for officers: list, add,
edit, a record with its history, verify, reveal, delete, likely duplicates."""

from __future__ import annotations

from itertools import groupby
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.access import Actor, can
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.errors import DomainError, Invalid
from marketplace.regions import service as regions
from marketplace.workers import dedupe, records, scope
from marketplace.workers import service as workers
from marketplace.workers.models import (
    DeleteReason,
    DismissRequest,
    DuplicatePair,
    WorkerChangePublic,
)
from marketplace.workers.rules import is_stale
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, Occupations, Paging, RowId
from web.pages.base import field_errors, is_htmx, refuse_in_form, render
from web.pages.worker_forms import (
    NEW_CERT_ROWS,
    DismissForm,
    MergeForm,
    ReasonForm,
    WorkerForm,
    fen_to_yuan,
    form_of,
    input_errors,
    show_value,
    to_create,
    to_update,
)

STATUS_LABELS: dict[str, Any] = {
    "employed_local": "本地就业",
    "employed_away": "外出务工",
    "seeking": "正在找工作",
    "not_in_labour_force": "非劳动力",
    "unknown": "未知",
}
UNIT_LABELS = {"hour": "元/小时", "day": "元/天", "month": "元/月", "piece": "元/件"}
MOBILITY_LABELS = {"local": "只在本地", "chongqing": "重庆市内", "anywhere": "全国都行"}
CONSENT_METHODS = ("书面", "口头", "电子")
DELETE_REASONS = {
    "person_request": "本人要求删除",
    "deceased": "本人已去世",
    "other": "其他原因",
}
REASON_LABELS = {
    "same_phone_similar_name": "手机号相同、姓名相近",
    "same_village_birth_date": "同村且出生日期相同",
}
ACTION_LABELS = {
    "create": "登记",
    "update": "修改",
    "merge": "合并",
    "delete": "删除",
    "verify": "已与本人核实",
}
FIELD_LABELS = {
    "name": "姓名",
    "id_number": "身份证号",
    "phone": "手机号",
    "hukou_village_code": "户籍村（社区）",
    "current_region_code": "现居地区划",
    "current_location_text": "现居地",
    "employment_status": "就业状态",
    "skills": "技能",
    "occupation_codes": "工种",
    "certificates": "证书",
    "wage_min_fen": "期望工资下限",
    "wage_max_fen": "期望工资上限",
    "wage_unit": "计薪单位",
    "available_from": "可上岗日期",
    "mobility": "外出意愿",
    "training_wishes": "培训意愿",
    "consent_to_recommend": "同意推荐",
    "consent_method": "同意方式",
    "note": "备注",
    "last_verified_at": "核实时间",
    "merged_from": "合并自",
    "deleted_reason": "删除原因",
}
LABELS: dict[str, Any] = {
    "STATUS_LABELS": STATUS_LABELS,
    "UNIT_LABELS": UNIT_LABELS,
    "MOBILITY_LABELS": MOBILITY_LABELS,
    "CONSENT_METHODS": CONSENT_METHODS,
    "DELETE_REASONS": DELETE_REASONS,
    "REASON_LABELS": REASON_LABELS,
    "ACTION_LABELS": ACTION_LABELS,
    "FIELD_LABELS": FIELD_LABELS,
    "yuan": fen_to_yuan,
    "show_value": show_value,
}
# Values shown by their label in the history.
VALUE_LABELS = {
    "employment_status": STATUS_LABELS,
    "wage_unit": UNIT_LABELS,
    "mobility": MOBILITY_LABELS,
    "deleted_reason": DELETE_REASONS,
}


def _grouped(history: list[WorkerChangePublic]) -> list[tuple[Any, list[WorkerChangePublic]]]:
    """Newest first, the rows of one change (same time, action and origin) together."""
    rows = sorted(sorted(history, key=lambda h: h.id), key=lambda h: h.at, reverse=True)
    return [
        (key, list(group))
        for key, group in groupby(rows, key=lambda h: (h.at, h.action, h.origin_worker_id))
    ]


async def _names(db: AsyncSession, codes: set[str]) -> dict[str, str]:
    """Region names by code, in one query; a code that names no region shows as itself."""
    found = await regions.names(session=db, codes=codes)
    return {code: found.get(code, code) for code in codes}


async def _my_villages(db: AsyncSession, actor: Actor) -> list[tuple[str, str]]:
    """The broker's villages as (code, name) options; none for officers."""
    if not can(actor, "worker.edit"):
        return []
    reach = await scope.reach(db, actor, "worker.edit")
    return _options(reach, await _names(db, set(reach.villages)))


def _options(reach: scope.Reach, names: dict[str, str]) -> list[tuple[str, str]]:
    return [(code, names[code]) for code in sorted(reach.villages)]


async def _show(
    request: Request[Any, Any, Any], db: AsyncSession, name: str, **context: Any
) -> Template:
    return await render(request, db, name, **LABELS, **context)


# --- list ---------------------------------------------------------------------------


@get("/workers", guards=[requires_login], include_in_schema=False)
async def workers_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    page: Paging,
    q: Annotated[str | None, QueryParameter(max_length=32)] = None,
    village_code: Annotated[str | None, QueryParameter(max_length=12)] = None,
    employment_status: Annotated[str | None, QueryParameter(max_length=24)] = None,
    deleted: FromQuery[bool] = False,
) -> Template:
    village = (village_code or "").strip()
    if village and not village.isdigit():
        raise Invalid("village_code", "区划代码只能是数字")
    status = employment_status if employment_status in STATUS_LABELS else None
    reach = await scope.reach(db, actor)
    items, total = await workers.list_lines(
        session=db,
        reach=reach,
        cipher=cipher,
        limit=page.limit,
        offset=page.offset,
        q=(q or "").strip() or None,
        village_code=village or None,
        employment_status=status,
    )
    now = utcnow()
    rows = [(w, is_stale(w.last_verified_at, now)) for w in items]
    query = {
        k: v for k, v in (("q", q), ("village_code", village), ("employment_status", status)) if v
    }
    can_edit = can(actor, "worker.edit")
    # The broker's villages (the filter's options) and the rows' villages, named at once.
    mine = reach.villages if can_edit else frozenset()
    names = await _names(db, {w.hukou_village_code for w in items} | mine)
    return await _show(
        request,
        db,
        "workers/_results.html" if is_htmx(request) else "workers/list.html",
        rows=rows,
        total=total,
        page=page,
        query=query,
        q=q or "",
        village_code=village,
        employment_status=status or "",
        villages=_options(reach, names) if can_edit else [],
        names=names,
        can_edit=can_edit,
        notice="记录已删除，个人信息已清除。" if deleted else None,
    )


# --- add and edit ---------------------------------------------------------------------


async def _form_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    form: WorkerForm,
    errors: dict[str, str],
    *,
    worker: Any = None,
    status_code: int = 200,
) -> Template:
    existing = len(worker.certificates) if worker else 0
    return await render(
        request,
        db,
        "workers/form.html",
        status_code=status_code,
        **LABELS,
        form=form,
        errors=input_errors(errors),
        worker=worker,
        villages=await _my_villages(db, actor),
        cert_rows=range(existing, existing + NEW_CERT_ROWS),
    )


@get("/workers/new", guards=[requires_login], include_in_schema=False)
async def worker_new(request: Request[Any, Any, Any], db: Db, actor: CurrentActor) -> Template:
    await scope.reach(db, actor, "worker.edit")  # 403 for officers
    villages = await _my_villages(db, actor)
    form = WorkerForm(hukou_village_code=villages[0][0] if len(villages) == 1 else "")
    return await _form_page(request, db, actor, form, {})


@post("/workers", guards=[requires_login], include_in_schema=False)
async def worker_create(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    occupations: Occupations,
    data: URLEncodedBody[WorkerForm],
) -> Response[Any] | Template:
    try:
        worker = await workers.register(
            session=db, actor=actor, cipher=cipher, data=to_create(data), occupations=occupations
        )
    except ValidationError as exc:
        errors, status = field_errors(exc), 422
    except DomainError as exc:
        errors, status = {exc.field or "_": exc.message}, exc.status
    else:
        return Redirect(f"/workers/{worker.id}?saved=created", status_code=HTTP_303_SEE_OTHER)
    await refuse_in_form(request, db, status)
    return await _form_page(request, db, actor, data, errors, status_code=status)


@get("/workers/{worker_id:int}/edit", guards=[requires_login], include_in_schema=False)
async def worker_edit(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, cipher: Cipher, worker_id: RowId
) -> Template:
    await scope.load_for_edit(db, actor, worker_id)  # 404 / 403 before showing the form
    worker = await workers.get_worker(session=db, actor=actor, cipher=cipher, worker_id=worker_id)
    return await _form_page(request, db, actor, form_of(worker), {}, worker=worker)


@post("/workers/{worker_id:int}", guards=[requires_login], include_in_schema=False)
async def worker_update(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    occupations: Occupations,
    worker_id: RowId,
    data: URLEncodedBody[WorkerForm],
) -> Response[Any] | Template:
    _, stored = await scope.load_for_edit(db, actor, worker_id)
    try:
        changes = to_update(data, records.state(stored, cipher)["certificates"])
        await workers.update_worker(
            session=db,
            actor=actor,
            cipher=cipher,
            worker_id=worker_id,
            data=changes,
            occupations=occupations,
        )
    except ValidationError as exc:
        errors, status = field_errors(exc), 422
    except DomainError as exc:
        errors, status = {exc.field or "_": exc.message}, exc.status
    else:
        return Redirect(f"/workers/{worker_id}?saved=updated", status_code=HTTP_303_SEE_OTHER)
    await refuse_in_form(request, db, status)
    worker = await workers.get_worker(session=db, actor=actor, cipher=cipher, worker_id=worker_id)
    return await _form_page(request, db, actor, data, errors, worker=worker, status_code=status)


# --- one record ---------------------------------------------------------------------


async def _pairs_with(
    db: AsyncSession, actor: Actor, cipher: DataCipher, worker_id: int
) -> list[DuplicatePair]:
    pairs = await dedupe.likely_duplicates(session=db, actor=actor, cipher=cipher)
    return [p for p in pairs if worker_id in (p.a.id, p.b.id)]


async def _record_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    cipher: DataCipher,
    worker_id: int,
    *,
    reveal: bool = False,
    notice: str | None = None,
    duplicates: list[DuplicatePair] | None = None,
) -> Template:
    reach = await scope.reach(db, actor)
    row = await scope.load(db, reach, worker_id)
    worker = await workers.get_worker(
        session=db, actor=actor, cipher=cipher, worker_id=worker_id, reveal=reveal
    )
    history = await workers.history(session=db, actor=actor, cipher=cipher, worker_id=worker_id)
    names = await _names(
        db, {c for c in (worker.hukou_village_code, worker.current_region_code) if c}
    )
    return await _show(
        request,
        db,
        "workers/detail.html",
        worker=worker,
        revealed=reveal,
        history=_grouped(history),
        VALUE_LABELS=VALUE_LABELS,
        names=names,
        may_reveal=reach.may_reveal(row),
        can_edit=can(actor, "worker.edit"),
        stale=is_stale(worker.last_verified_at, utcnow()),
        notice=notice,
        duplicates=duplicates or [],
    )


@get("/workers/{worker_id:int}", guards=[requires_login], include_in_schema=False)
async def worker_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    worker_id: RowId,
    saved: Annotated[str | None, QueryParameter(max_length=16)] = None,
) -> Template:
    notice = {"created": "已登记。", "updated": "已保存。", "merged": "已合并。"}.get(saved or "")
    duplicates = (
        await _pairs_with(db, actor, cipher, worker_id)
        if notice and can(actor, "worker.edit")
        else []
    )
    return await _record_page(
        request, db, actor, cipher, worker_id, notice=notice, duplicates=duplicates
    )


@post("/workers/{worker_id:int}/reveal", guards=[requires_login], include_in_schema=False)
async def worker_reveal(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, cipher: Cipher, worker_id: RowId
) -> Template:
    """Full numbers, once, on a POST: the service audits the view."""
    return await _record_page(request, db, actor, cipher, worker_id, reveal=True)


@post("/workers/{worker_id:int}/verify", guards=[requires_login], include_in_schema=False)
async def worker_verify(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, worker_id: RowId
) -> Response[Any] | Template:
    worker = await workers.verify(session=db, actor=actor, worker_id=worker_id)
    if not is_htmx(request):
        return Redirect(f"/workers/{worker_id}", status_code=HTTP_303_SEE_OTHER)
    return await _show(
        request, db, "workers/_verified.html", worker=worker, stale=False, can_edit=True
    )


@get("/workers/{worker_id:int}/delete", guards=[requires_login], include_in_schema=False)
async def worker_delete_confirm(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, cipher: Cipher, worker_id: RowId
) -> Template:
    await scope.load_for_edit(db, actor, worker_id)
    worker = await workers.get_worker(session=db, actor=actor, cipher=cipher, worker_id=worker_id)
    return await _show(request, db, "workers/delete.html", worker=worker, errors={})


@post("/workers/{worker_id:int}/delete", guards=[requires_login], include_in_schema=False)
async def worker_delete(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    worker_id: RowId,
    data: URLEncodedBody[ReasonForm],
) -> Response[Any] | Template:
    if data.reason not in DELETE_REASONS:
        await refuse_in_form(request, db, 422)
        worker = await workers.get_worker(
            session=db, actor=actor, cipher=cipher, worker_id=worker_id
        )
        errors = {"reason": "请选择删除原因"}
        return await render(
            request,
            db,
            "workers/delete.html",
            status_code=422,
            worker=worker,
            errors=errors,
            **LABELS,
        )
    await workers.delete_worker(
        session=db, actor=actor, worker_id=worker_id, reason=DeleteReason(data.reason)
    )
    return Redirect("/workers?deleted=true", status_code=HTTP_303_SEE_OTHER)


# --- likely duplicates --------------------------------------------------------------------


@get("/workers/duplicates", guards=[requires_login], include_in_schema=False)
async def duplicates_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    done: Annotated[str | None, QueryParameter(max_length=16)] = None,
) -> Template:
    pairs = await dedupe.likely_duplicates(session=db, actor=actor, cipher=cipher)
    notice = {"merged": "已合并。", "dismissed": "已标记为不同的人。"}.get(done or "")
    return await _show(request, db, "workers/duplicates.html", pairs=pairs, notice=notice)


def _id(value: str, field: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 2_147_483_647:
        raise Invalid(field, "记录编号有误")
    return int(value)


def _back(value: str, fallback: str) -> str:
    """Only back to a worker page of this site."""
    return value if value.startswith("/workers") and "//" not in value else fallback


@post("/workers/{worker_id:int}/merge", guards=[requires_login], include_in_schema=False)
async def worker_merge(
    db: Db, actor: CurrentActor, cipher: Cipher, worker_id: RowId, data: URLEncodedBody[MergeForm]
) -> Response[Any]:
    """Merge the other record into this one, which survives."""
    await dedupe.merge(
        session=db,
        actor=actor,
        cipher=cipher,
        worker_id=worker_id,
        other_id=_id(data.other_id, "other_id"),
    )
    return Redirect(f"/workers/{worker_id}?saved=merged", status_code=HTTP_303_SEE_OTHER)


@post("/workers/duplicates/dismiss", guards=[requires_login], include_in_schema=False)
async def duplicates_dismiss(
    db: Db, actor: CurrentActor, data: URLEncodedBody[DismissForm]
) -> Response[Any]:
    pair = DismissRequest(a=_id(data.a, "a"), b=_id(data.b, "b"))
    await dedupe.dismiss(session=db, actor=actor, data=pair)
    back = _back(data.back, "/workers/duplicates?done=dismissed")
    return Redirect(back, status_code=HTTP_303_SEE_OTHER)
