"""The question bank editor for the city (docs/training.md, "Question bank"): list and
filter, write, edit (a new version each time), retire, import CSV/XLSX."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.access import Actor, can
from marketplace.brokers import questions
from marketplace.brokers.questions_import import MAX_UPLOAD_BYTES
from marketplace.brokers.questions_models import (
    CATEGORIES,
    DIFFICULTY_LABELS,
    KIND_LABELS,
    MAX_OPTIONS,
    QuestionInput,
    QuestionPublic,
)
from marketplace.errors import DomainError, Forbidden, Invalid
from marketplace.workers.importing import format_of
from web.auth import requires_login
from web.deps import CurrentActor, Db, Page, Paging, RowId
from web.pages.base import field_errors, refuse_in_form, render

LETTERS = "ABCDEF"
KINDS = {k.value: v for k, v in KIND_LABELS.items()}
DIFFICULTIES = {k.value: v for k, v in DIFFICULTY_LABELS.items()}
Text = Annotated[str | None, QueryParameter(max_length=50)]


def _blank() -> dict[str, Any]:
    return {
        "code": "",
        "kind": "single",
        "category": CATEGORIES[0],
        "difficulty": "medium",
        "stem": "",
        "options": [""] * 4,
        "correct": [],
        "explanation": "",
        "source": "",
    }


def _from_public(q: QuestionPublic) -> dict[str, Any]:
    options = list(q.options) if q.kind != "true_false" else []
    return {
        "code": q.code,
        "kind": q.kind,
        "category": q.category,
        "difficulty": q.difficulty,
        "stem": q.stem,
        "options": options + [""] * max(0, 4 - len(options)),
        "correct": list(q.correct),
        "explanation": q.explanation,
        "source": q.source or "",
    }


def _from_form(raw: Any) -> dict[str, Any]:
    kind = str(raw.get("kind") or "single")
    options = [str(raw.get(f"option_{i}") or "").strip() for i in range(MAX_OPTIONS)]
    while options and not options[-1]:
        options.pop()
    if kind == "true_false":
        correct = [int(raw.get("tf"))] if str(raw.get("tf") or "") in ("0", "1") else []
    else:
        picked = raw.getall("correct") if "correct" in raw else []
        correct = [int(c) for c in picked if str(c).isdigit()]
    return {
        "code": str(raw.get("code") or "").strip(),
        "kind": kind,
        "category": str(raw.get("category") or "").strip(),
        "difficulty": str(raw.get("difficulty") or "medium"),
        "stem": str(raw.get("stem") or ""),
        "options": options,
        "correct": correct,
        "explanation": str(raw.get("explanation") or ""),
        "source": str(raw.get("source") or ""),
    }


def _input(form: dict[str, Any]) -> QuestionInput:
    return QuestionInput.model_validate(
        {
            **form,
            "code": form["code"] or None,
            "options": form["options"] if form["kind"] != "true_false" else [],
            "source": form["source"] or None,
        }
    )


async def _list_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    *,
    limit: int = 50,
    offset: int = 0,
    filters: dict[str, Any] | None = None,
    report: Any = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    filters = filters or {}
    rows, total = await questions.list_questions(
        session=db, actor=actor, limit=limit, offset=offset, **filters
    )
    return await render(
        request,
        db,
        "questions/list.html",
        status_code=status_code,
        rows=rows,
        total=total,
        filters=filters,
        counts=await questions.categories(session=db),
        kinds=KINDS,
        difficulties=DIFFICULTIES,
        categories=CATEGORIES,
        may_edit=can(actor, "question.edit"),
        report=report,
        errors=errors or {},
        page=Page(limit=limit, offset=offset),
        query={k: v for k, v in filters.items() if v},
    )


@get("/questions", guards=[requires_login], include_in_schema=False)
async def questions_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    page: Paging,
    category: Text = None,
    difficulty: Text = None,
    kind: Text = None,
    q: Text = None,
) -> Template:
    filters = {
        "category": category or None,
        "difficulty": difficulty if difficulty in DIFFICULTIES else None,
        "kind": kind if kind in KINDS else None,
        "q": q or None,
    }
    return await _list_page(
        request, db, actor, limit=page.limit, offset=page.offset, filters=filters
    )


async def _edit_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    *,
    form: dict[str, Any],
    question: QuestionPublic | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    versions = (
        await questions.versions(session=db, actor=actor, question_id=question.id)
        if question
        else []
    )
    options = form["options"] + [""] * max(0, MAX_OPTIONS - len(form["options"]))
    return await render(
        request,
        db,
        "questions/edit.html",
        status_code=status_code,
        form=form,
        options=options,
        question=question,
        versions=versions,
        kinds=KINDS,
        difficulties=DIFFICULTIES,
        categories=CATEGORIES,
        letters=LETTERS,
        may_edit=can(actor, "question.edit"),
        errors=errors or {},
        notice=notice,
    )


@get("/questions/new", guards=[requires_login], include_in_schema=False)
async def question_new(request: Request[Any, Any, Any], db: Db, actor: CurrentActor) -> Template:
    if not can(actor, "question.edit"):
        raise Forbidden("只有市级管理员可以编辑题库")
    return await _edit_page(request, db, actor, form=_blank())


@post("/questions", guards=[requires_login], include_in_schema=False)
async def question_create(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor
) -> Response[Any] | Template:
    form = _from_form(await request.form())
    try:
        made = await questions.create(session=db, actor=actor, data=_input(form))
    except ValidationError as exc:
        return await _edit_page(
            request, db, actor, form=form, errors=field_errors(exc), status_code=422
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _edit_page(
            request, db, actor, form=form, errors=errors, status_code=exc.status
        )
    return Redirect(f"/questions/{made.id}?saved=1", status_code=HTTP_303_SEE_OTHER)


@get("/questions/{question_id:int}", guards=[requires_login], include_in_schema=False)
async def question_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    question_id: RowId,
    saved: Annotated[int, QueryParameter(ge=0, le=1)] = 0,
) -> Template:
    question = await questions.get(session=db, actor=actor, question_id=question_id)
    return await _edit_page(
        request,
        db,
        actor,
        form=_from_public(question),
        question=question,
        notice=f"已保存为第 {question.version} 版" if saved else None,
    )


@post("/questions/{question_id:int}", guards=[requires_login], include_in_schema=False)
async def question_update(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, question_id: RowId
) -> Response[Any] | Template:
    form = _from_form(await request.form())
    current = await questions.get(session=db, actor=actor, question_id=question_id)
    form["code"] = current.code
    try:
        await questions.update(session=db, actor=actor, question_id=question_id, data=_input(form))
    except ValidationError as exc:
        return await _edit_page(
            request,
            db,
            actor,
            form=form,
            question=current,
            errors=field_errors(exc),
            status_code=422,
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _edit_page(
            request, db, actor, form=form, question=current, errors=errors, status_code=exc.status
        )
    return Redirect(f"/questions/{question_id}?saved=1", status_code=HTTP_303_SEE_OTHER)


@post("/questions/{question_id:int}/active", guards=[requires_login], include_in_schema=False)
async def question_active(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, question_id: RowId
) -> Response[Any]:
    raw = await request.form()
    await questions.set_active(
        session=db, actor=actor, question_id=question_id, active=raw.get("active") == "1"
    )
    return Redirect(f"/questions/{question_id}", status_code=HTTP_303_SEE_OTHER)


@dataclass
class ImportForm:
    file: UploadFile | None = None


@post(
    "/questions/import",
    guards=[requires_login],
    include_in_schema=False,
    request_max_body_size=MAX_UPLOAD_BYTES + 64 * 1024,
)
async def questions_import(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> Template:
    upload = data.file
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("file", "请选择要导入的 CSV 或 XLSX 文件")
        report = await questions.import_questions(
            session=db, actor=actor, stream=upload.file, file_format=format_of(upload.filename)
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _list_page(request, db, actor, errors=errors, status_code=exc.status)
    finally:
        if isinstance(upload, UploadFile):
            await upload.close()
    if report.errors:
        await db.rollback()
    return await _list_page(
        request, db, actor, report=report, status_code=422 if report.errors else 200
    )
