"""Taking the exam on a phone (docs/training.md, "Exams").

An applicant enters the tracking code and phone; the exam session token goes into an
http-only cookie scoped to ``/exams``, so a reload or a dropped connection resumes
the paper. A certified broker uses their login. Each answer is saved on change
(HTMX); ``/static/exam.js`` shows the countdown, retries unsaved answers when the
network returns and hands the paper in when the time is up (the server enforces the
limit either way).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from marketplace.access import Role
from marketplace.brokers import exams, exams_policy
from marketplace.brokers.exams import Caller
from marketplace.brokers.exams_models import AnswerInput, ExamPublic
from marketplace.clock import local, utcnow
from marketplace.errors import DomainError, Invalid
from web import ratelimit
from web.api.exams import OPEN
from web.auth import Principal, client_ip
from web.deps import Cipher, Db, RowId
from web.pages.base import render

EXAM_COOKIE = "laowu_exam"
KIND_HINTS = {"single": "单选题", "multiple": "多选题（全部选对才得分）", "true_false": "判断题"}


def _caller(request: Request[Any, Any, Any]) -> Caller:
    user = request.scope.get("user")
    actor = user.actor if isinstance(user, Principal) else None
    token = request.cookies.get(EXAM_COOKIE) or None
    # A broker sits with their login; otherwise an applicant's exam cookie wins (an
    # officer may be logged in on the phone an applicant borrows).
    if token and (actor is None or actor.role != Role.broker):
        return Caller(token=token)
    return Caller(actor=actor)


async def _entry(
    request: Request[Any, Any, Any],
    db: Db,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    return await render(
        request,
        db,
        "exams/start.html",
        status_code=status_code,
        errors=errors or {},
        form=form or {"tracking_code": "", "phone": ""},
        policy=exams_policy.policy_public(await exams_policy.current_policy(db)),
    )


@get("/exams", include_in_schema=False)
async def exam_start_page(request: Request[Any, Any, Any], db: Db) -> Template:
    return await _entry(request, db)


@post("/exams", include_in_schema=False)
async def exam_start(
    request: Request[Any, Any, Any], db: Db, cipher: Cipher
) -> Response[Any] | Template:
    form = await request.form()
    user = request.scope.get("user")
    token = None
    try:
        if isinstance(user, Principal) and user.actor.role == Role.broker:
            attempt = await exams.start_for_broker(session=db, actor=user.actor)
        else:
            ratelimit.check(request, OPEN)
            code = str(form.get("tracking_code") or "").strip()
            phone = str(form.get("phone") or "").strip()
            if not code:
                raise Invalid("tracking_code", "请填写申请跟踪码")
            if not phone:
                raise Invalid("phone", "请填写申请时登记的手机号")
            attempt, token = await exams.start_for_applicant(
                session=db,
                tracking_code=code,
                phone=phone,
                cipher=cipher,
                ip=client_ip(request.scope),
            )
    except DomainError as exc:
        await db.rollback()
        field = exc.field if exc.field in ("tracking_code", "phone") else "tracking_code"
        if exc.field == "code":
            field = "tracking_code"
        return await _entry(
            request,
            db,
            errors={field: exc.message},
            form={"tracking_code": str(form.get("tracking_code") or ""), "phone": ""},
            status_code=exc.status,
        )
    response: Response[Any] = Redirect(f"/exams/{attempt.id}", status_code=HTTP_303_SEE_OTHER)
    if token is not None:
        response.set_cookie(
            EXAM_COOKIE,
            token,
            httponly=True,
            secure=request.app.state.settings.security.secure_cookies,
            samesite="strict",
            path="/exams",
            max_age=(attempt.time_limit_minutes + 60) * 60,
        )
    return response


def _context(paper: ExamPublic) -> dict[str, Any]:
    return {
        "paper": paper,
        "deadline_local": local(paper.deadline_at).strftime("%H:%M:%S"),
        "kind_hints": KIND_HINTS,
        "letters": "ABCDEF",
    }


@get("/exams/{exam_id:int}", include_in_schema=False)
async def exam_page(
    request: Request[Any, Any, Any], db: Db, exam_id: RowId
) -> Response[Any] | Template:
    caller = _caller(request)
    if caller.actor is None and caller.token is None:
        return Redirect("/exams", status_code=HTTP_303_SEE_OTHER)
    paper = await exams.get(session=db, attempt_id=exam_id, caller=caller)
    return await render(request, db, "exams/paper.html", **_context(paper))


@post("/exams/{exam_id:int}/answers", include_in_schema=False)
async def exam_answer(request: Request[Any, Any, Any], db: Db, exam_id: RowId) -> Template:
    """One question's answer from its form (HTMX): the saved state, or the reason not."""
    form = await request.form()
    raw_id = str(form.get("question_id") or "")
    choices = [str(c) for c in form.getall("choices")] if "choices" in form else []
    question_id = int(raw_id) if raw_id.isdigit() else 0
    try:
        if not all(c.isdigit() for c in choices):
            raise Invalid("choices", "选项无效")
        await exams.save_answer(
            session=db,
            attempt_id=exam_id,
            caller=_caller(request),
            data=AnswerInput(question_id=max(question_id, 1), choices=[int(c) for c in choices]),
        )
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            raise
        await db.rollback()
        return await render(
            request,
            db,
            "exams/_saved.html",
            status_code=422,
            question_id=question_id,
            error=exc.message,
        )
    return await render(
        request,
        db,
        "exams/_saved.html",
        question_id=question_id,
        error=None,
        at=local(utcnow()).strftime("%H:%M:%S"),
    )


@post("/exams/{exam_id:int}/submit", include_in_schema=False)
async def exam_submit(request: Request[Any, Any, Any], db: Db, exam_id: RowId) -> Response[Any]:
    await exams.submit(session=db, attempt_id=exam_id, caller=_caller(request))
    return Redirect(f"/exams/{exam_id}", status_code=HTTP_303_SEE_OTHER)
