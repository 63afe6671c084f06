"""Exams (docs/training.md, "Exams").

An applicant in training has no account: ``POST /api/v1/exams`` with the tracking
code and the phone on file opens (or resumes) their attempt and answers with a token;
later calls carry it in the ``X-Exam-Token`` header. A certified broker calls the same
routes with their bearer token. Officers read results of their region.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post, put
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody

from marketplace.brokers import exams, exams_policy
from marketplace.brokers.exams import Caller
from marketplace.brokers.exams_models import (
    AnswerInput,
    ExamPolicyInput,
    ExamPolicyPublic,
    ExamPublic,
    ExamStart,
    ExamSummary,
)
from marketplace.errors import Invalid
from web import ratelimit
from web.api.schemas import Paged
from web.api.training import RegionCode
from web.auth import Principal, client_ip, requires_login
from web.deps import Cipher, CurrentActor, Db, Paging, RowId

TOKEN_HEADER = "x-exam-token"  # noqa: S105 - a header name, not a secret
# Opening an exam session checks a tracking code and a phone, like the status lookup.
OPEN = ("exam_open", 30, 600.0)


def caller_of(request: Request[Any, Any, Any]) -> Caller:
    user = request.scope.get("user")
    actor = user.actor if isinstance(user, Principal) else None
    token = request.headers.get(TOKEN_HEADER) or None
    return Caller(actor=actor, token=token)


async def requires_candidate(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """A login or an exam session token, checked before the body is read."""
    if not isinstance(connection.scope.get("user"), Principal) and not connection.headers.get(
        TOKEN_HEADER
    ):
        raise NotAuthorizedException(
            connection.scope.get("auth_error") or "请先用跟踪码和手机号进入考试，或登录后再试"
        )


class ExamsController(Controller):
    path = "/api/v1/exams"
    tags = ["考试"]

    @post("/")
    async def start(
        self, request: Request[Any, Any, Any], db: Db, cipher: Cipher, data: JSONBody[ExamStart]
    ) -> ExamPublic:
        caller = caller_of(request)
        if caller.actor is not None:
            attempt = await exams.start_for_broker(session=db, actor=caller.actor)
            return await exams.get(session=db, attempt_id=attempt.id or 0, caller=caller)
        ratelimit.check(request, OPEN)
        if not data.tracking_code:
            raise Invalid("tracking_code", "请填写申请跟踪码")
        if not data.phone:
            raise Invalid("phone", "请填写申请时登记的手机号")
        attempt, token = await exams.start_for_applicant(
            session=db,
            tracking_code=data.tracking_code,
            phone=data.phone,
            cipher=cipher,
            ip=client_ip(request.scope),
        )
        paper = await exams.get(session=db, attempt_id=attempt.id or 0, caller=Caller(token=token))
        paper.token = token
        return paper

    @get("/", guards=[requires_login])
    async def list_exams(
        self, db: Db, actor: CurrentActor, page: Paging, region_code: RegionCode = None
    ) -> Paged[ExamSummary]:
        items, total = await exams.list_attempts(
            session=db, actor=actor, region_code=region_code, limit=page.limit, offset=page.offset
        )
        return Paged(items=items, total=total)

    @get("/policy", guards=[requires_login])
    async def policy(self, db: Db) -> ExamPolicyPublic:
        return exams_policy.policy_public(await exams_policy.current_policy(db))

    @put("/policy", guards=[requires_login])
    async def set_policy(
        self, db: Db, actor: CurrentActor, data: JSONBody[ExamPolicyInput]
    ) -> ExamPolicyPublic:
        return await exams_policy.set_policy(session=db, actor=actor, data=data)

    @get("/{exam_id:int}", guards=[requires_candidate])
    async def get_exam(self, request: Request[Any, Any, Any], db: Db, exam_id: RowId) -> ExamPublic:
        """The paper while open (saved answers included); results once graded. An open
        attempt past its time limit is graded now."""
        return await exams.get(session=db, attempt_id=exam_id, caller=caller_of(request))

    @post("/{exam_id:int}/answers", status_code=200, guards=[requires_candidate])
    async def answer(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        exam_id: RowId,
        data: JSONBody[AnswerInput],
    ) -> ExamPublic:
        """Save one answer (the same answer twice changes nothing)."""
        return await exams.save_answer(
            session=db, attempt_id=exam_id, caller=caller_of(request), data=data
        )

    @post("/{exam_id:int}/submit", status_code=200, guards=[requires_candidate])
    async def submit(self, request: Request[Any, Any, Any], db: Db, exam_id: RowId) -> ExamPublic:
        return await exams.submit(session=db, attempt_id=exam_id, caller=caller_of(request))
