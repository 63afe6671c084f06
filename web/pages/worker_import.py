"""Bulk import of a broker's register from the page: the template, the upload and
the report (created, updated, unchanged, and the rows refused with their reasons).
The import itself is ``marketplace.workers.importing``."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Template

from marketplace.errors import Invalid
from marketplace.workers import exporting, importing, scope
from web.api.workers import MEDIA_TYPES, UPLOAD_SLACK, may_edit_register
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, Occupations
from web.pages.base import refuse_in_form, render


@dataclass
class UploadForm:
    file: UploadFile


@get("/workers/import", guards=[requires_login], include_in_schema=False)
async def import_page(request: Request[Any, Any, Any], db: Db, actor: CurrentActor) -> Template:
    await scope.reach(db, actor, "worker.edit")  # 403 for officers
    return await render(request, db, "workers/import.html", report=None, errors={})


@get("/workers/import-template", guards=[requires_login], include_in_schema=False)
async def import_template(
    actor: CurrentActor, file_format: FromQuery[Literal["csv", "xlsx"]] = "xlsx"
) -> Response[bytes]:
    out = io.BytesIO()
    exporting.template(file_format, out)
    return Response(
        out.getvalue(),
        media_type=MEDIA_TYPES[file_format],
        headers={"Content-Disposition": f"attachment; filename=workers-template.{file_format}"},
    )


@post(
    "/workers/import",
    guards=[requires_login, may_edit_register],
    include_in_schema=False,
    request_max_body_size=importing.MAX_UPLOAD_BYTES + UPLOAD_SLACK,
)
async def import_upload(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    occupations: Occupations,
    data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> Template:
    rows: list[int] = []
    try:
        report = await importing.import_workers(
            session=db,
            actor=actor,
            cipher=cipher,
            stream=data.file.file,
            file_format=importing.format_of(data.file.filename),
            occupations=occupations,
            on_progress=rows.append,
        )
    except Invalid as exc:
        await data.file.close()
        errors = await refuse_in_form(request, db, exc)
        return await render(
            request, db, "workers/import.html", status_code=422, report=None, errors=errors
        )
    await data.file.close()
    return await render(
        request,
        db,
        "workers/import.html",
        report=report,
        rows_done=rows[-1] if rows else 0,
        filename=data.file.filename,
        errors={},
    )
