"""Bulk import of a broker's register from the page: the template, the upload, the
import running in the background with its progress, and the report (created, updated,
unchanged, and the rows refused with their reasons). The import itself is
``marketplace.workers.importing``; the job around it ``marketplace.workers.import_jobs``."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from marketplace.access import Actor
from marketplace.crypto import DataCipher
from marketplace.errors import DomainError
from marketplace.workers import exporting, import_jobs, importing
from web.api.workers import MEDIA_TYPES, UPLOAD_SLACK, may_edit_register
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, Occupations, RowId
from web.pages.base import is_htmx, refuse_in_form, render


@dataclass
class UploadForm:
    file: UploadFile


@get("/workers/import", guards=[requires_login], include_in_schema=False)
async def import_page(request: Request[Any, Any, Any], db: Db, actor: CurrentActor) -> Template:
    """The form, and the broker's latest import (still running, or its report)."""
    job = await import_jobs.latest(session=db, actor=actor)  # 403 for officers
    return await render(
        request,
        db,
        "workers/import.html",
        job=job,
        batch_size=import_jobs.JOB_BATCH_SIZE,
        errors={},
    )


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
) -> Template | Redirect:
    """Check the file's header and count its rows, record an import job, then import
    in the background: the page follows the job's progress."""
    path: Path | None = None
    try:
        file_format = importing.format_of(data.file.filename)
        path = await asyncio.to_thread(_keep, data.file.file, _spool_dir(request), file_format)
        total = await asyncio.to_thread(_count, path, file_format)
        job = await import_jobs.start(
            session=db,
            actor=actor,
            filename=data.file.filename or f"workers.{file_format}",
            file_format=file_format,
            rows_total=total,
        )
    except DomainError as exc:
        if path is not None:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        errors = await refuse_in_form(request, db, exc)
        # A second upload while one runs (409): the form says so, above the running job.
        # Shown as 422 so HTMX swaps the form in (it leaves other errors to the banner).
        running = await import_jobs.latest(session=db, actor=actor) if exc.status == 409 else None
        return await render(
            request,
            db,
            "workers/import.html",
            status_code=422 if exc.status == 409 else exc.status,
            job=running,
            batch_size=import_jobs.JOB_BATCH_SIZE,
            errors=errors,
        )
    finally:
        await data.file.close()
    # The background session must see the job: commit it before launching.
    await db.commit()
    assert job.id is not None
    _launch(request, job_id=job.id, actor=actor, cipher=cipher, occupations=occupations, path=path)
    url = f"/workers/import/jobs/{job.id}"
    if not is_htmx(request):
        return Redirect(url, status_code=HTTP_303_SEE_OTHER)
    page = await render(
        request,
        db,
        "workers/import.html",
        job=job,
        batch_size=import_jobs.JOB_BATCH_SIZE,
        errors={},
    )
    page.headers["HX-Push-Url"] = url
    return page


@get("/workers/import/jobs/{job_id:int}", guards=[requires_login], include_in_schema=False)
async def import_job_page(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, job_id: RowId
) -> Template:
    job = await import_jobs.get(session=db, actor=actor, job_id=job_id)
    return await render(
        request,
        db,
        "workers/import.html",
        job=job,
        batch_size=import_jobs.JOB_BATCH_SIZE,
        errors={},
    )


@get("/workers/import/jobs/{job_id:int}/progress", guards=[requires_login], include_in_schema=False)
async def import_job_progress(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, job_id: RowId
) -> Template:
    """The job's panel alone, polled by the page every second while it runs."""
    job = await import_jobs.get(session=db, actor=actor, job_id=job_id)
    return await render(
        request, db, "workers/_import_job.html", job=job, batch_size=import_jobs.JOB_BATCH_SIZE
    )


# --- the background run ------------------------------------------------------------------

# Running imports of this process: a task needs a strong reference until it ends.
_RUNNING: set[asyncio.Task[None]] = set()


def _spool_dir(request: Request[Any, Any, Any]) -> Path:
    return Path(request.app.state.settings.var_dir) / "imports"


def _keep(upload: IO[bytes], directory: Path, file_format: str) -> Path:
    """Copy the upload where the background import reads it (owner-only: it holds
    personal data; deleted when the job ends)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(suffix=f".{file_format}", dir=directory)
    with os.fdopen(handle, "wb") as out:
        upload.seek(0)
        shutil.copyfileobj(upload, out, 1 << 20)
    return Path(name)


def _count(path: Path, file_format: str) -> int:
    with path.open("rb") as stream:
        return importing.count_rows(stream, file_format)


def _launch(
    request: Request[Any, Any, Any],
    *,
    job_id: int,
    actor: Actor,
    cipher: DataCipher,
    occupations: Any,
    path: Path,
) -> None:
    state = request.app.state
    wakeup = state.get("outbox_wakeup")
    task = asyncio.create_task(
        import_jobs.run(
            sessions=state.sessions,
            job_id=job_id,
            actor=actor,
            cipher=cipher,
            path=path,
            occupations=occupations,
            after_commit=wakeup.set if wakeup is not None else None,
        )
    )
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
