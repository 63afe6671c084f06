"""Bulk import of the worker register from CSV and XLSX (docs/workers.md, "Import").

A file is read as a stream of rows (a csv reader over a text wrapper, or openpyxl in
read-only mode), validated row by row with ``WorkerCreate`` and the service's checks,
and written in batches. A row is all or nothing: a new record is checked fully before
anything is written, an update runs in its own savepoint. The caller owns the
transaction; ``on_batch`` lets the CLI commit after each batch.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import re
import zipfile
import zlib
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from marketplace import audit
from marketplace.access import Actor
from marketplace.brokers.models import Broker
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.errors import DomainError, Invalid
from marketplace.events import OutboxEvent
from marketplace.regions.models import Region
from marketplace.workers import records, rules, scope
from marketplace.workers import service as workers
from marketplace.workers.models import Worker, WorkerChange, WorkerCreate, WorkerUpdate

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
BATCH_SIZE = 1_000
MAX_REPORTED_ERRORS = 1_000


@dataclass(frozen=True)
class Column:
    field: str
    header: str  # the template's Chinese header
    required: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("name", "姓名", required=True),
    Column("id_number", "身份证号", required=True),
    Column("phone", "手机号"),
    Column("hukou_village_code", "户籍村代码", required=True),
    Column("current_region_code", "现居地区划代码"),
    Column("current_location_text", "现居地（市外或境外）"),
    Column("employment_status", "就业状态"),
    Column("skills", "技能"),
    Column("certificates", "证书"),
    Column("wage_min_fen", "期望工资下限（分）"),
    Column("wage_max_fen", "期望工资上限（分）"),
    Column("wage_unit", "计薪单位"),
    Column("available_from", "可上岗日期"),
    Column("mobility", "外出意愿"),
    Column("training_wishes", "培训意愿"),
    Column("consent_to_recommend", "同意推荐"),
    Column("consent_method", "同意方式"),
    Column("note", "备注"),
)
HEADER_OF = {c.field: c.header for c in COLUMNS}
_FIELD_OF_HEADER = {
    **{c.header: c.field for c in COLUMNS},
    **{c.field: c.field for c in COLUMNS},
}
# Chinese labels written by export and the template, accepted by import (as are codes).
LABELS: dict[str, dict[str, str]] = {
    "employment_status": {
        "employed_local": "本地就业",
        "employed_away": "外出务工",
        "seeking": "求职中",
        "not_in_labour_force": "非劳动力",
        "unknown": "未知",
    },
    "wage_unit": {"hour": "小时", "day": "天", "month": "月", "piece": "件"},
    "mobility": {"local": "本地", "chongqing": "重庆市内", "anywhere": "不限"},
}
_CODE_OF_LABEL = {f: {label: code for code, label in m.items()} for f, m in LABELS.items()}
_YES = {"是", "同意", "true", "1", "y", "yes"}
_NO = {"否", "不同意", "false", "0", "n", "no"}
LIST_SEPARATORS = re.compile(r"[、,，;；|]")
CERT_SEPARATORS = re.compile(r"[;；\n]")
EXAMPLE_ROW = {
    "name": "王建国",
    "id_number": "500103198504120020",
    "phone": "13912345678",
    "hukou_village_code": "500103001001",
    "employment_status": "外出务工",
    "skills": "电焊、钢筋工",
    "certificates": "焊工证:T500103198504:2028-06-30",
    "wage_min_fen": "25000",
    "wage_max_fen": "35000",
    "wage_unit": "天",
    "available_from": "2026-12-01",
    "mobility": "不限",
    "consent_to_recommend": "是",
    "consent_method": "书面",
    "note": "春节后可出门",
}


class RowError(SQLModel):
    row: int
    column: str
    message: str


class ImportReport(SQLModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = []
    error_rows: int = 0  # all rows with errors; ``errors`` lists the first 1,000


# Every column of a new worker row, so a batch's rows share one set of keys.
EMPTY_ROW: dict[str, Any] = {name: None for name in Worker.model_fields if name != "id"}

ProgressCallback = Callable[[int], None]
BatchCallback = Callable[[AsyncSession], Awaitable[None]]


# --- reading files -----------------------------------------------------------------


def _is_utf8(stream: IO[bytes]) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := stream.read(1 << 20):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False
    finally:
        stream.seek(0)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


FORMULA_WITHOUT_VALUE = object()
# What a damaged XLSX raises from openpyxl, zipfile, zlib and the XML parser
# (ElementTree's ParseError is a SyntaxError).
XLSX_DAMAGE: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    KeyError,
    IndexError,
    OSError,
    ValueError,
    TypeError,
    SyntaxError,
)


def read_csv(stream: IO[bytes]) -> Generator[list[Any], None, None]:
    """Rows of a CSV file in UTF-8 (with or without BOM) or GBK/GB18030."""
    encoding = "utf-8-sig" if _is_utf8(stream) else "gb18030"
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        yield from csv.reader(text)
    except csv.Error as exc:
        raise Invalid("file", f"CSV 文件格式有误：{exc}") from None
    except UnicodeDecodeError:
        # Neither UTF-8 nor GB18030 (a binary file renamed .csv, a cut-off GBK file).
        raise Invalid(
            "file", "CSV 文件编码无法识别，请在 Excel 中另存为“CSV UTF-8”或 GBK 编码后再导入"
        ) from None
    finally:
        text.detach()


def read_xlsx(stream: IO[bytes]) -> Generator[list[Any], None, None]:
    """Rows of the first sheet: cached values; a formula never calculated (no cached
    value) is marked so the row is reported, not stored empty."""
    import openpyxl

    bad = Invalid("file", "无法读取 XLSX 文件，请确认文件未损坏且为 Excel 2007 及以上格式")
    try:
        values = openpyxl.load_workbook(stream, read_only=True, data_only=True)
        stream.seek(0)
        formulas = openpyxl.load_workbook(stream, read_only=True, data_only=False)
    except XLSX_DAMAGE as exc:
        raise bad from exc
    try:
        sheet_v, sheet_f = values.worksheets[0], formulas.worksheets[0]
        # Read-only sheets are parsed as they are read: damage deep in the file (a
        # corrupt deflate stream, broken XML) shows only here, mid-way.
        rows = zip(
            sheet_v.iter_rows(values_only=True), sheet_f.iter_rows(values_only=True), strict=False
        )
        while True:
            try:
                row_v, row_f = next(rows)
            except StopIteration:
                break
            except XLSX_DAMAGE as exc:
                raise bad from exc
            yield [
                FORMULA_WITHOUT_VALUE
                if v is None and isinstance(f, str) and f.startswith("=")
                else v
                for v, f in zip(row_v, row_f, strict=False)
            ]
    finally:
        values.close()
        formulas.close()


def read_rows(stream: IO[bytes], file_format: str) -> Generator[list[Any], None, None]:
    if file_format == "xlsx":
        return read_xlsx(stream)
    if file_format == "csv":
        return read_csv(stream)
    raise Invalid("format", "文件格式应为 csv 或 xlsx")


def format_of(filename: str | None) -> str:
    name = (filename or "").lower()
    if name.endswith(".xlsx"):
        return "xlsx"
    if name.endswith(".csv") or name.endswith(".txt"):
        return "csv"
    raise Invalid("file", "只支持 .csv 和 .xlsx 文件")


def count_rows(stream: IO[bytes], file_format: str) -> int:
    """Check the header and count the data rows before an import starts (for its
    progress): a CSV is read through once; an XLSX says its size in its dimension
    (blank rows included), else it is read through. Whole-file errors are raised here
    as by ``import_workers``; the stream is rewound."""
    rows = read_rows(stream, file_format)
    try:
        header = next(rows, None)
        while header is not None and not any(_cell_text(c) for c in header):
            header = next(rows, None)
        if header is None:
            raise Invalid("file", "文件是空的：没有表头，也没有数据行")
        header_map(header)
        count = 0
        if file_format == "xlsx":
            count = _xlsx_dimension_rows(stream)
        if count <= 0:
            count = sum(
                1
                for cells in rows
                if any(c is FORMULA_WITHOUT_VALUE or _cell_text(c) for c in cells)
            )
    finally:
        rows.close()
        stream.seek(0)
    if count == 0:
        raise Invalid("file", "文件中没有数据行")
    return count


def _xlsx_dimension_rows(stream: IO[bytes]) -> int:
    import openpyxl

    stream.seek(0)
    try:
        book = openpyxl.load_workbook(stream, read_only=True)
        try:
            return int(book.worksheets[0].max_row or 0) - 1
        finally:
            book.close()
    except XLSX_DAMAGE as exc:
        raise Invalid(
            "file", "无法读取 XLSX 文件，请确认文件未损坏且为 Excel 2007 及以上格式"
        ) from exc


# --- one row to a WorkerCreate -----------------------------------------------------


def header_map(header: list[Any]) -> dict[int, str]:
    """Column index → field; unknown columns are ignored. A missing required column
    or a column given twice is an error for the whole file."""
    found: dict[int, str] = {}
    for index, raw in enumerate(header):
        name = _cell_text(raw).replace(" ", "")
        field_name = _FIELD_OF_HEADER.get(name) or _FIELD_OF_HEADER.get(name.lower())
        if field_name is None:
            continue
        if field_name in found.values():
            raise Invalid("file", f"表头中“{HEADER_OF[field_name]}”列出现了两次")
        found[index] = field_name
    missing = [c.header for c in COLUMNS if c.required and c.field not in found.values()]
    if missing:
        raise Invalid(
            "file",
            "缺少必填列：" + "、".join(missing) + "（请使用导入模板的表头，或 API 字段名）",
        )
    return found


class _RowInvalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message


def _certificates(text: str) -> list[dict[str, str | None]]:
    out: list[dict[str, str | None]] = []
    for item in filter(None, (p.strip() for p in CERT_SEPARATORS.split(text))):
        parts = [p.strip() for p in re.split(r"[:：]", item)]
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise _RowInvalid("certificates", "证书格式应为“类型:编号:有效期”，多个用分号分隔")
        out.append({"type": parts[0], "number": parts[1], "expires_on": [*parts, ""][2] or None})
    return out


def row_values(cells: list[Any], columns: dict[int, str]) -> dict[str, Any]:
    """The row's fields as ``WorkerCreate`` input; empty cells are left out."""
    given: dict[str, Any] = {}
    for index, field_name in columns.items():
        raw = cells[index] if index < len(cells) else None
        if raw is FORMULA_WITHOUT_VALUE:
            raise _RowInvalid(
                field_name, "公式没有计算结果，请在 Excel 中重新计算并保存，或填写数值"
            )
        text = _cell_text(raw)
        if not text:
            continue
        if "\x00" in text:
            # PostgreSQL cannot store it: refused here as this row's error, not as a
            # failed batch (found by fuzzing).
            raise _RowInvalid(field_name, "含有空字符（\\0），请删除后重新导入")
        if field_name in ("skills", "training_wishes"):
            given[field_name] = [p for p in LIST_SEPARATORS.split(text) if p.strip()]
        elif field_name == "certificates":
            given[field_name] = _certificates(text)
        elif field_name in LABELS:
            given[field_name] = _CODE_OF_LABEL[field_name].get(text, text)
        elif field_name == "consent_to_recommend":
            if text.lower() in _YES:
                given[field_name] = True
            elif text.lower() in _NO:
                given[field_name] = False
            else:
                raise _RowInvalid(field_name, "应填“是”或“否”")
        else:
            given[field_name] = text
    return given


def describe(error: Any) -> str:
    """One pydantic error in Chinese."""
    kind, ctx = error["type"], error.get("ctx") or {}
    messages = {
        "missing": "必须填写",
        "int_parsing": "应为整数（金额单位为分）",
        "int_from_float": "应为整数（金额单位为分）",
        "greater_than_equal": f"不能小于 {ctx.get('ge')}",
        "string_too_long": f"最多 {ctx.get('max_length')} 个字符",
        "string_too_short": "不能为空",
        "too_long": f"最多 {ctx.get('max_length')} 项",
        "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
        "date_parsing": "日期格式应为 YYYY-MM-DD",
        "date_from_datetime_inexact": "日期格式应为 YYYY-MM-DD",
        "bool_parsing": "应填“是”或“否”",
    }
    if kind == "enum":
        field_name = str(error["loc"][0])
        allowed = LABELS.get(field_name)
        if allowed:
            return "应为以下之一：" + "、".join(allowed.values())
        return f"应为以下之一：{ctx.get('expected', '')}"
    return messages.get(kind, str(error["msg"]))


def parse_row(cells: list[Any], columns: dict[int, str]) -> WorkerCreate:
    try:
        return WorkerCreate.model_validate(row_values(cells, columns))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _RowInvalid(str(first["loc"][0]), describe(first)) from None


# --- importing -----------------------------------------------------------------------


@dataclass
class _Pending:
    row: int
    data: WorkerCreate
    columns: dict[str, Any]  # the new row's columns
    values: dict[str, Any]  # clear values, for its history
    worker_id: int | None = None


@dataclass
class _Run:
    session: AsyncSession
    actor: Actor
    cipher: DataCipher
    reach: scope.Reach
    broker_id: int
    occupations: workers.OccupationMapper | None
    report: ImportReport
    headers: dict[str, str]  # field → header as written in the file
    today: date
    codes_cache: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    regions: dict[str, Region] = field(default_factory=dict)  # every region by code
    planned: int | None = None  # PostgreSQL's estimate of the register's size
    analyzed_at: int = 0  # rows done when the import last analysed the register

    def error(self, row: int, field_name: str, message: str) -> None:
        self.report.error_rows += 1
        if len(self.report.errors) < MAX_REPORTED_ERRORS:
            column = self.headers.get(field_name) or HEADER_OF.get(field_name, field_name)
            self.report.errors.append(RowError(row=row, column=column, message=message))


class _CachedMapper:
    """Skills to codes, memoised: import files repeat the same few skill lists."""

    def __init__(self, run: _Run, inner: workers.OccupationMapper) -> None:
        self.run, self.inner = run, inner

    def codes_for(self, skills: list[str]) -> list[str]:
        key = tuple(skills)
        if key not in self.run.codes_cache:
            self.run.codes_cache[key] = self.inner.codes_for(skills)
        return list(self.run.codes_cache[key])


async def import_workers(
    *,
    session: AsyncSession,
    actor: Actor,
    cipher: DataCipher,
    stream: IO[bytes],
    file_format: str,
    broker_id: int | None = None,
    occupations: workers.OccupationMapper | None = None,
    on_progress: ProgressCallback | None = None,
    on_batch: BatchCallback | None = None,
    batch_size: int = BATCH_SIZE,
    today: date | None = None,
    report: ImportReport | None = None,
) -> ImportReport:
    """Import a register file for a broker (the actor itself, or ``broker_id`` when the
    system imports). After each batch is written: ``on_progress(rows_done)``, then
    ``on_batch(session)`` (the CLI and the page's import job commit there). ``report``
    is filled as the import goes, so a caller can read the counts so far."""
    reach = await scope.reach(session, actor, "worker.edit")
    keeper = reach.broker_id if not actor.is_system else broker_id
    if keeper is None or await session.get(Broker, keeper) is None:
        raise Invalid("broker_id", f"经纪人 {keeper} 不存在")
    rows = read_rows(stream, file_format)
    try:
        done, report = await _import_rows(
            session=session,
            actor=actor,
            cipher=cipher,
            reach=reach,
            keeper=keeper,
            rows=rows,
            occupations=occupations,
            on_progress=on_progress,
            on_batch=on_batch,
            batch_size=batch_size,
            today=today,
            report=report or ImportReport(),
        )
    finally:
        rows.close()  # while the stream is still open
    if done == 0:
        raise Invalid("file", "文件中没有数据行")
    return report


async def _import_rows(
    *,
    session: AsyncSession,
    actor: Actor,
    cipher: DataCipher,
    reach: scope.Reach,
    keeper: int,
    rows: Iterator[list[Any]],
    occupations: workers.OccupationMapper | None,
    on_progress: ProgressCallback | None,
    on_batch: BatchCallback | None,
    batch_size: int,
    today: date | None,
    report: ImportReport,
) -> tuple[int, ImportReport]:
    header = next(rows, None)
    while header is not None and not any(_cell_text(c) for c in header):
        header = next(rows, None)
    if header is None:
        raise Invalid("file", "文件是空的：没有表头，也没有数据行")
    columns = header_map(header)
    run = _Run(
        session=session,
        actor=actor,
        cipher=cipher,
        reach=reach,
        broker_id=keeper,
        occupations=None,
        report=report,
        headers={f: _cell_text(header[i]) for i, f in columns.items()},
        today=today or workers.today_local(),
    )
    if occupations is not None:
        run.occupations = _CachedMapper(run, occupations)
    run.regions = {r.code: r for r in await _preload_regions(session)}
    present = set(columns.values()) - {"id_number"}
    done = 0

    async def write(prepared: _Prepared) -> None:
        nonlocal done
        done += await _write(run, prepared, present)
        await _refresh_statistics(run, done)
        if on_progress:
            on_progress(done)
        if on_batch:
            await on_batch(session)

    # On PostgreSQL batch n + 1 is read and checked while batch n is written: the
    # checks are this process's CPU, the writing the database server's. Not on SQLite,
    # whose engine runs in this process and takes the GIL back for every row it binds:
    # overlapped, each of those waits behind the checks (docs/workers.md, "Speed").
    bind = session.bind
    overlap = bind is not None and bind.dialect.name != "sqlite"
    writing: asyncio.Task[None] | None = None
    try:
        for batch in _batches(rows, batch_size):
            prepared = await _prepare(run, batch, columns, ahead=overlap)
            if writing is not None:
                await writing
            writing = asyncio.ensure_future(write(prepared))
            if not overlap:
                await writing
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            # Preparing failed: the write in flight ends before the caller rolls back.
            await asyncio.wait([writing])
            if not writing.cancelled():
                writing.exception()  # the preparing error is the one that propagates
    return done, run.report


def _batches(
    rows: Iterator[list[Any]], size: int
) -> Generator[list[tuple[int, list[Any]]], None, None]:
    """(file row number, cells) in lists of ``size``, blank rows left out."""
    batch: list[tuple[int, list[Any]]] = []
    for number, cells in enumerate(rows, start=2):
        if all(c is not FORMULA_WITHOUT_VALUE and not _cell_text(c) for c in cells):
            continue
        batch.append((number, cells))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _preload_regions(session: AsyncSession) -> list[Region]:
    """Every region loaded once (12,000 rows), so each row's village and current-region
    checks are dictionary look-ups instead of queries."""
    return list((await session.execute(select(Region))).scalars())


@dataclass
class _Prepared:
    """A batch parsed and checked before it is written: the rows that did not parse,
    and each parsed row with its new record prepared (or the check that refused it),
    used when the row turns out to be a new person."""

    invalid: list[tuple[int, _RowInvalid]] = field(default_factory=list)
    parsed: list[tuple[int, WorkerCreate, _Pending | DomainError | None]] = field(
        default_factory=list
    )

    @property
    def size(self) -> int:
        return len(self.invalid) + len(self.parsed)


PREPARE_TURN = 50  # rows checked between turns of the event loop (for the write in flight)


async def _prepare(
    run: _Run, batch: list[tuple[int, list[Any]]], columns: dict[int, str], *, ahead: bool
) -> _Prepared:
    """Everything about a batch that needs no database: parsing and, ``ahead`` (while
    the previous batch is written), the registration checks (regions are preloaded)
    and encryption of each row as a new record. Reads nothing the previous batch's
    write changes; whether a row is new is decided when the batch is written."""
    prepared = _Prepared()
    for index, (number, cells) in enumerate(batch):
        if index % PREPARE_TURN == 0:
            await asyncio.sleep(0)
        try:
            data = parse_row(cells, columns)
        except _RowInvalid as exc:
            prepared.invalid.append((number, exc))
            continue
        ready: _Pending | DomainError | None = None
        if ahead:
            try:
                ready = await _prepare_new(run, number, data)
            except DomainError as exc:
                ready = exc
        prepared.parsed.append((number, data, ready))
    return prepared


async def _write(run: _Run, prepared: _Prepared, present: set[str]) -> int:
    for number, invalid in prepared.invalid:
        run.error(number, invalid.field, invalid.message)
    existing = await _existing(run, [data.id_number for _, data, _ in prepared.parsed])
    pending: list[_Pending] = []
    seen: set[str] = set()
    for number, data, ready in prepared.parsed:
        number_key = data.id_number.strip().upper()
        if number_key in seen:  # the same person twice in one batch: write, then update
            await _write_new(run, pending)
            pending = []
            seen.clear()
            existing.update(await _existing(run, [number_key]))
        current = existing.get(number_key)
        try:
            if current is None:
                if ready is None:
                    ready = await _prepare_new(run, number, data)
                elif isinstance(ready, DomainError):
                    raise ready
                pending.append(ready)
                seen.add(number_key)
            else:
                await _update(run, current, data, present)
        except DomainError as exc:
            run.error(number, exc.field or "id_number", exc.message)
    await _write_new(run, pending)
    return prepared.size


async def _refresh_statistics(run: _Run, done: int) -> None:
    """On PostgreSQL, re-analyse the worker table whenever the import has doubled it
    since the planner last counted it: a planner that still believes the table empty
    scans it whole for every batch's ID look-up, which made a 100,000-row import into an
    empty register quadratic. Into a large register that is never (it was an ANALYZE
    of 3,000,000 rows at every power of two of batches)."""
    session = run.session
    bind = session.bind
    if bind is None or bind.dialect.name != "postgresql":
        return
    if run.planned is None:  # the planner's row count (-1: never analysed)
        found = await session.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = 'worker'::regclass")
        )
        run.planned = max(0, int(found.scalar_one()))
    if done - run.analyzed_at >= max(run.planned, 1):
        await session.execute(text("ANALYZE worker"))
        run.planned += done - run.analyzed_at
        run.analyzed_at = done


async def _existing(run: _Run, id_numbers: list[str]) -> dict[str, Worker]:
    """Records already holding these ID numbers (current or old key's hash)."""
    by_hash: dict[str, str] = {}
    for raw in id_numbers:
        number = raw.strip().upper()
        for digest in run.cipher.lookup_hashes(number):
            by_hash[digest] = number
    if not by_hash:
        return {}
    result = await run.session.execute(
        select(Worker).where(col(Worker.id_number_hash).in_(list(by_hash)))
    )
    return {by_hash[w.id_number_hash or ""]: w for w in result.scalars()}


async def _prepare_new(run: _Run, number: int, data: WorkerCreate) -> _Pending:
    values, derived = await workers.check_registration(
        session=run.session, reach=run.reach, data=data, today=run.today, regions=run.regions
    )
    columns = workers.new_values(
        values=values,
        derived=derived,
        broker_id=run.broker_id,
        actor=run.actor,
        cipher=run.cipher,
        occupations=run.occupations,
        now=utcnow(),
    )
    return _Pending(row=number, data=data, columns={**EMPTY_ROW, **columns}, values=values)


async def _update(run: _Run, current: Worker, data: WorkerCreate, present: set[str]) -> None:
    if current.broker_id != run.broker_id:
        broker = await run.session.get(Broker, current.broker_id)
        raise Invalid(
            "id_number",
            f"此身份证号已登记：劳动者编号 {current.id}，由经纪人 "
            f"{rules.mask_name(broker.name if broker else None)} 维护，不能由您导入修改",
        )
    changes = WorkerUpdate.model_validate(data.model_dump(include=present))
    before = current.updated_at
    assert current.id is not None
    async with run.session.begin_nested():
        worker = await workers.update_worker(
            session=run.session,
            actor=run.actor,
            cipher=run.cipher,
            worker_id=current.id,
            data=changes,
            occupations=run.occupations,
            today=run.today,
        )
    if worker.updated_at != before:
        run.report.updated += 1
    else:
        run.report.unchanged += 1


async def _write_new(run: _Run, pending: list[_Pending]) -> None:
    """Insert the batch's new records with their history and events, and one audit
    entry. Should a concurrent registration take one of the numbers meanwhile, the
    batch is retried row by row so only that row fails."""
    if not pending:
        return
    try:
        async with run.session.begin_nested():
            await _insert(run, pending)
    except IntegrityError:
        if len(pending) == 1:
            found = await _existing(run, [pending[0].values["id_number"]])
            current = found.get(pending[0].values["id_number"])
            message = f"此身份证号已登记：劳动者编号 {current.id if current else '?'}"
            run.error(pending[0].row, "id_number", message)
            return
        for one in pending:
            await _write_new(run, [await _prepare_new(run, one.row, one.data)])
        return
    run.report.created += len(pending)


async def _insert(run: _Run, pending: list[_Pending]) -> None:
    """Core inserts, many rows per statement: ORM objects cost more than the rest."""
    session = run.session
    connection = await session.connection()
    workers_table = Worker.__table__  # type: ignore[attr-defined]
    # A plain executemany, then the new ids by hash: RETURNING with the rows' order
    # kept runs one statement per row on SQLite.
    await connection.execute(insert(workers_table), [p.columns for p in pending])
    ids = dict(
        (
            await connection.execute(
                select(col(Worker.id_number_hash), col(Worker.id)).where(
                    col(Worker.id_number_hash).in_([p.columns["id_number_hash"] for p in pending])
                )
            )
        ).all()
    )
    for p in pending:
        p.worker_id = ids[p.columns["id_number_hash"]]
    now = utcnow()
    history: list[dict[str, Any]] = []
    for p in pending:
        assert p.worker_id is not None
        history.append(
            records.creation_values(
                worker_id=p.worker_id,
                new=p.values,
                actor_user_id=run.actor.user_id,
                at=now,
                cipher=run.cipher,
            )
        )
    await connection.execute(insert(WorkerChange.__table__), history)  # type: ignore[attr-defined]
    await connection.execute(
        insert(OutboxEvent.__table__),  # type: ignore[attr-defined]
        [
            {
                "name": workers.EVENT,
                "payload": {"worker_id": p.worker_id, "action": "create"},
                "created_at": now,
                "processed_at": None,
            }
            for p in pending
        ],
    )
    await audit.record(
        session=session,
        actor=run.actor,
        action="worker.import",
        object_type="broker",
        object_id=run.broker_id,
        region_code=run.reach.broker.village_code if run.reach.broker else None,
        detail={
            "created": len(pending),
            "worker_ids": [pending[0].worker_id, pending[-1].worker_id],
        },
    )
