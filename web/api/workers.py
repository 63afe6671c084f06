"""The worker register (劳动者实名台账)."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Annotated, Any, Literal

from litestar import Controller, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.handlers import BaseRouteHandler
from litestar.params import Body, JSONBody, QueryParameter
from litestar.response import Response, Stream

from marketplace.access import require
from marketplace.workers import dedupe, exporting, importing, records
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
from web.auth import principal_of, requires_login
from web.deps import Cipher, CurrentActor, Db, Occupations, Paging, RowId

FileFormat = Literal["csv", "xlsx"]
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# Multipart framing around a file at the import limit.
UPLOAD_SLACK = 64 * 1024


@dataclass
class ImportForm:
    file: UploadFile


async def may_edit_register(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Refuse roles that may not write the register before reading a large upload."""
    require(principal_of(connection).actor, "worker.edit")


def _download(name: str, file_format: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename={name}.{file_format}"}


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := spool.read(64 * 1024):
            yield chunk
    finally:
        spool.close()


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

    @get("/import-template")
    async def import_template(
        self, file_format: Annotated[FileFormat, QueryParameter(name="format")] = "xlsx"
    ) -> Response[bytes]:
        out = io.BytesIO()  # a header and one example row
        exporting.template(file_format, out)
        return Response(
            out.getvalue(),
            media_type=MEDIA_TYPES[file_format],
            headers=_download("workers-template", file_format),
        )

    @post(
        "/import",
        status_code=200,
        guards=[may_edit_register],
        request_max_body_size=importing.MAX_UPLOAD_BYTES + UPLOAD_SLACK,
    )
    async def import_file(
        self,
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        occupations: Occupations,
        data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> importing.ImportReport:
        return await importing.import_workers(
            session=db,
            actor=actor,
            cipher=cipher,
            stream=data.file.file,
            file_format=importing.format_of(data.file.filename),
            occupations=occupations,
        )

    @get("/export")
    async def export(
        self,
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        file_format: Annotated[FileFormat, QueryParameter(name="format")] = "xlsx",
        village_code: Annotated[
            str | None, QueryParameter(pattern=r"^\d{2,12}$", description="户籍区划代码前缀")
        ] = None,
        reveal: Annotated[
            bool, QueryParameter(description="经纪人导出自己维护记录的完整证件号（留审计记录）")
        ] = False,
    ) -> Stream:
        # Closed by _chunks once sent; spills to disk past 8 MB.
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        try:
            await exporting.export_workers(
                session=db,
                actor=actor,
                cipher=cipher,
                out=spool,
                file_format=file_format,
                village_code=village_code,
                reveal=reveal,
            )
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return Stream(
            _chunks(spool),
            media_type=MEDIA_TYPES[file_format],
            headers=_download("workers", file_format),
        )
