"""Export of the register the reader may see, as CSV or XLSX with the import
template's headers (docs/workers.md, "Export"). Numbers are masked unless the keeping
broker asks to reveal them; every export is audited; a region export of more than
``REGION_EXPORT_LIMIT`` rows needs a district (or city) administrator.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace import audit
from marketplace.access import Actor, Role
from marketplace.crypto import DataCipher
from marketplace.errors import Forbidden, Invalid
from marketplace.workers import records, scope
from marketplace.workers import service as workers
from marketplace.workers.importing import COLUMNS, EXAMPLE_ROW, LABELS
from marketplace.workers.models import WorkerPublic

REGION_EXPORT_LIMIT = 1_000
PAGE = 1_000
LARGE_EXPORT_ROLES = frozenset({Role.district_admin, Role.city_admin})


def template(file_format: str, out: IO[bytes]) -> None:
    """The import template: headers and one example row."""
    rows: list[list[Any]] = [
        [c.header for c in COLUMNS],
        [EXAMPLE_ROW.get(c.field, "") for c in COLUMNS],
    ]
    _write(file_format, iter(rows), out)


def cells(public: WorkerPublic) -> list[Any]:
    """A record as one row, in the template's column order."""
    values: dict[str, Any] = {
        "name": public.name,
        "id_number": public.id_number or public.id_number_masked,
        "phone": public.phone or public.phone_masked or "",
        "hukou_village_code": public.hukou_village_code,
        "current_region_code": public.current_region_code or "",
        "current_location_text": public.current_location_text or "",
        "skills": "、".join(public.skills),
        "certificates": "；".join(
            ":".join([c.type, c.number, *([c.expires_on.isoformat()] if c.expires_on else [])])
            for c in public.certificates
        ),
        "wage_min_fen": public.wage_min_fen if public.wage_min_fen is not None else "",
        "wage_max_fen": public.wage_max_fen if public.wage_max_fen is not None else "",
        "available_from": public.available_from.isoformat() if public.available_from else "",
        "training_wishes": "、".join(public.training_wishes),
        "consent_to_recommend": "是" if public.consent_to_recommend else "否",
        "consent_method": public.consent_method or "",
        "note": public.note or "",
    }
    for field_name, labels in LABELS.items():
        code = getattr(public, field_name)
        values[field_name] = labels.get(code, code) if code else ""
    return [values[c.field] for c in COLUMNS]


class _Sheet:
    """Rows appended one by one: CSV straight to ``out`` (UTF-8 with BOM, so Excel
    opens it), XLSX in a write-only workbook saved at the end."""

    def __init__(self, file_format: str, out: IO[bytes]) -> None:
        self.out = out
        self.text: io.TextIOWrapper | None = None
        if file_format == "csv":
            self.text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
            self.writer = csv.writer(self.text)
        else:
            import openpyxl

            self.book = openpyxl.Workbook(write_only=True)
            self.sheet = self.book.create_sheet("劳动者台账")

    def append(self, row: list[Any]) -> None:
        if self.text is not None:
            self.writer.writerow(row)
        else:
            # Text cells, so an ID number does not turn into a number in Excel.
            self.sheet.append([v if isinstance(v, int) else str(v) for v in row])

    def close(self) -> None:
        if self.text is not None:
            self.text.flush()
            self.text.detach()
        else:
            self.book.save(self.out)


def _write(file_format: str, rows: Iterator[list[Any]], out: IO[bytes]) -> None:
    sheet = _Sheet(file_format, out)
    for row in rows:
        sheet.append(row)
    sheet.close()


async def export_workers(
    *,
    session: AsyncSession,
    actor: Actor,
    cipher: DataCipher,
    out: IO[bytes],
    file_format: str,
    village_code: str | None = None,
    broker_id: int | None = None,
    reveal: bool = False,
) -> int:
    """Write the caller's visible register to ``out``; returns the row count."""
    if file_format not in ("csv", "xlsx"):
        raise Invalid("format", "导出格式应为 csv 或 xlsx")
    if reveal and actor.role != Role.broker:
        raise Forbidden("导出完整证件号和手机号只限维护记录的经纪人", field="reveal")
    first, total = await workers.list_workers(
        session=session,
        actor=actor,
        limit=PAGE,
        offset=0,
        village_code=village_code,
        broker_id=broker_id,
    )
    if (
        actor.role != Role.broker
        and total > REGION_EXPORT_LIMIT
        and actor.role not in LARGE_EXPORT_ROLES
    ):
        raise Forbidden(
            f"区域台账共 {total} 条，超过 {REGION_EXPORT_LIMIT} 条的导出须由区县管理员操作",
            field="village_code",
        )
    own_broker = None
    if reveal:
        own_broker = (await scope.reach(session, actor)).broker_id
    sheet = _Sheet(file_format, out)
    sheet.append([c.header for c in COLUMNS])
    page, offset, count = first, 0, 0
    while page:
        for worker in page:
            show = reveal and worker.broker_id == own_broker
            sheet.append(cells(records.to_public(worker, cipher, reveal=show)))
            count += 1
        offset += PAGE
        if offset >= total:
            break
        page, _ = await workers.list_workers(
            session=session,
            actor=actor,
            limit=PAGE,
            offset=offset,
            village_code=village_code,
            broker_id=broker_id,
        )
    sheet.close()
    await audit.record(
        session=session,
        actor=actor,
        action="worker.export",
        object_type="worker",
        region_code=village_code or actor.region_code,
        detail={
            "rows": count,
            "format": file_format,
            "village_code": village_code,
            "broker_id": broker_id,
            "revealed": reveal,
        },
    )
    return count
