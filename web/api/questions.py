"""The question bank (docs/training.md): the city writes and imports questions;
editing makes a new version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, get, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.handlers import BaseRouteHandler
from litestar.params import Body, JSONBody, QueryParameter
from pydantic import BaseModel

from marketplace.access import require
from marketplace.brokers import questions
from marketplace.brokers.questions_import import MAX_UPLOAD_BYTES
from marketplace.brokers.questions_models import (
    Difficulty,
    QuestionImportReport,
    QuestionInput,
    QuestionKind,
    QuestionPublic,
    QuestionVersionPublic,
)
from marketplace.workers.importing import format_of
from web.api.schemas import Paged
from web.auth import principal_of, requires_login
from web.deps import CurrentActor, Db, Paging, RowId

UPLOAD_SLACK = 64 * 1024


class ActiveRequest(BaseModel):
    active: bool


@dataclass
class ImportForm:
    file: UploadFile


async def may_edit_questions(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Refuse roles that may not edit the bank before reading an upload."""
    require(principal_of(connection).actor, "question.edit")


class QuestionsController(Controller):
    path = "/api/v1/questions"
    tags = ["题库"]
    guards = [requires_login]

    @get("/")
    async def list_questions(
        self,
        db: Db,
        actor: CurrentActor,
        page: Paging,
        category: Annotated[str | None, QueryParameter(max_length=16)] = None,
        difficulty: Annotated[Difficulty | None, QueryParameter()] = None,
        kind: Annotated[QuestionKind | None, QueryParameter()] = None,
        q: Annotated[str | None, QueryParameter(max_length=50, description="题干或编号")] = None,
        active: Annotated[bool | None, QueryParameter()] = None,
    ) -> Paged[QuestionPublic]:
        items, total = await questions.list_questions(
            session=db,
            actor=actor,
            category=category,
            difficulty=difficulty,
            kind=kind,
            q=q,
            active=active,
            limit=page.limit,
            offset=page.offset,
        )
        return Paged(items=items, total=total)

    @post("/")
    async def create(
        self, db: Db, actor: CurrentActor, data: JSONBody[QuestionInput]
    ) -> QuestionPublic:
        return await questions.create(session=db, actor=actor, data=data)

    @get("/{question_id:int}")
    async def get_question(self, db: Db, actor: CurrentActor, question_id: RowId) -> QuestionPublic:
        return await questions.get(session=db, actor=actor, question_id=question_id)

    @put("/{question_id:int}")
    async def edit(
        self, db: Db, actor: CurrentActor, question_id: RowId, data: JSONBody[QuestionInput]
    ) -> QuestionPublic:
        """A new version when anything changed; papers already drawn keep theirs."""
        return await questions.update(session=db, actor=actor, question_id=question_id, data=data)

    @post("/{question_id:int}/active", status_code=200)
    async def set_active(
        self, db: Db, actor: CurrentActor, question_id: RowId, data: JSONBody[ActiveRequest]
    ) -> QuestionPublic:
        return await questions.set_active(
            session=db, actor=actor, question_id=question_id, active=data.active
        )

    @get("/{question_id:int}/versions")
    async def versions(
        self, db: Db, actor: CurrentActor, question_id: RowId
    ) -> Paged[QuestionVersionPublic]:
        rows = await questions.versions(session=db, actor=actor, question_id=question_id)
        return Paged(items=rows, total=len(rows))

    @post(
        "/import",
        status_code=200,
        guards=[may_edit_questions],
        request_max_body_size=MAX_UPLOAD_BYTES + UPLOAD_SLACK,
    )
    async def import_file(
        self,
        db: Db,
        actor: CurrentActor,
        data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> QuestionImportReport:
        try:
            return await questions.import_questions(
                session=db,
                actor=actor,
                stream=data.file.file,
                file_format=format_of(data.file.filename),
            )
        finally:
            await data.file.close()
