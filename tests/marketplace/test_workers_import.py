"""Bulk import in the domain: batches, encodings, formulas, bad files, idempotency."""

from __future__ import annotations

import asyncio
import io
from datetime import date
from typing import Any

import openpyxl
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace import demo
from marketplace.access import SYSTEM
from marketplace.brokers.models import Broker
from marketplace.crypto import DataCipher
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.errors import Invalid
from marketplace.regions.models import Region
from marketplace.workers import importing
from marketplace.workers.identity import parse_resident_id
from marketplace.workers.models import Worker
from marketplace.workers.rules import name_similarity
from tests.conftest import YUZHONG
from tests.marketplace.test_workers_rules import make_id
from tests.web.test_cli import db_env, env, query, run  # noqa: F401  (CLI fixtures)
from web.demo import TaxonomyVocabulary

HEADER = (
    "姓名,身份证号,手机号,户籍村代码,就业状态,技能,期望工资下限（分）,期望工资上限（分）,计薪单位"
)


async def setup(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, str]:
    async with unit_of_work(sessions) as session:
        village = (
            await session.execute(
                select(col(Region.code))
                .where(col(Region.level) == "village", col(Region.code).startswith(YUZHONG))
                .order_by(col(Region.code))
                .limit(1)
            )
        ).scalar_one()
        broker = Broker(name="李经纪", village_code=village)
        session.add(broker)
        await session.flush()
        assert broker.id is not None
        return broker.id, str(village)


def csv_rows(village: str, n: int, *, start: int = 0, status: str = "求职中") -> str:
    lines = [HEADER]
    for i in range(start, start + n):
        born = date(1970 + i % 30, 1 + i % 12, 1 + i % 28)
        lines.append(
            f"工人{chr(0x4E00 + i)},{make_id(born, 100 + i)},1391234{i:04d},{village},"
            f"{status},电焊、钢筋工,20000,30000,天"
        )
    return "\n".join(lines) + "\n"


async def run_import(
    sessions: async_sessionmaker[AsyncSession],
    cipher: DataCipher,
    broker_id: int,
    data: bytes,
    file_format: str = "csv",
    **kwargs: Any,
) -> importing.ImportReport:
    async with unit_of_work(sessions) as session:
        return await importing.import_workers(
            session=session,
            actor=SYSTEM,
            cipher=cipher,
            stream=io.BytesIO(data),
            file_format=file_format,
            broker_id=broker_id,
            **kwargs,
        )


async def count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Worker))).scalar_one())


async def test_batches_progress_reimport_and_updates(
    sessions: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    broker_id, village = await setup(sessions)
    progress: list[int] = []
    committed: list[int] = []

    async def on_batch(session: AsyncSession) -> None:
        await session.commit()
        committed.append(1)

    data = csv_rows(village, 5).encode()
    report = await run_import(
        sessions,
        cipher,
        broker_id,
        data,
        batch_size=2,
        on_progress=progress.append,
        on_batch=on_batch,
    )
    assert (report.created, report.updated, report.unchanged, report.errors) == (5, 0, 0, [])
    assert progress == [2, 4, 5]
    assert len(committed) == 3
    again = await run_import(sessions, cipher, broker_id, data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    changed = csv_rows(village, 5, status="外出务工").encode()
    updated = await run_import(sessions, cipher, broker_id, changed)
    assert (updated.created, updated.updated, updated.unchanged) == (0, 5, 0)
    async with sessions() as session:
        statuses = set((await session.execute(select(col(Worker.employment_status)))).scalars())
    assert statuses == {"employed_away"}
    assert await count(sessions) == 5


async def test_a_person_in_a_later_batch_is_updated_and_errors_keep_file_order(
    sessions: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    """Each batch is checked while the one before is written (on PostgreSQL): a row
    checked as a new person who is in the register by the time its batch is written
    is an update, and the report still lists refused rows in file order."""
    broker_id, village = await setup(sessions)
    rows = csv_rows(village, 4).splitlines()[1:]
    first, third = rows[0], rows[2]
    bad, late_bad = (r.replace(",1391234", ",2391234") for r in (rows[1], rows[3]))  # no mobile
    again = first.replace("求职中", "外出务工")
    data = "\n".join([HEADER, first, bad, again, third, late_bad]) + "\n"
    report = await run_import(sessions, cipher, broker_id, data.encode(), batch_size=2)
    assert (report.created, report.updated, report.unchanged) == (2, 1, 0)
    assert [(e.row, e.column) for e in report.errors] == [(3, "手机号"), (6, "手机号")]
    async with sessions() as session:
        statuses = list((await session.execute(select(col(Worker.employment_status)))).scalars())
    assert sorted(statuses) == ["employed_away", "seeking"]


POSTGRES_ONLY = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


@POSTGRES_ONLY
async def test_statistics_are_refreshed_only_while_the_import_doubles_the_register(
    sessions: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    broker_id, village = await setup(sessions)
    analysed: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("ANALYZE"):
            analysed.append(statement)

    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        # Into an empty register: after 10, 20 and 40 rows (the planner kept current).
        await run_import(sessions, cipher, broker_id, csv_rows(village, 40).encode(), batch_size=10)
        assert analysed == ["ANALYZE worker"] * 3
        analysed.clear()
        # Into a register the planner counts at a million: 40 rows change nothing.
        async with unit_of_work(sessions) as session:
            await session.execute(
                text("UPDATE pg_class SET reltuples = 1000000 WHERE oid = 'worker'::regclass")
            )
        more = csv_rows(village, 40, start=40).encode()
        report = await run_import(sessions, cipher, broker_id, more, batch_size=10)
        assert report.created == 40
        assert analysed == []
    finally:
        event.remove(engine, "before_cursor_execute", seen)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
async def test_csv_encodings(
    sessions: async_sessionmaker[AsyncSession], cipher: DataCipher, encoding: str
) -> None:
    broker_id, village = await setup(sessions)
    report = await run_import(sessions, cipher, broker_id, csv_rows(village, 2).encode(encoding))
    assert report.created == 2, report.errors
    async with sessions() as session:
        names = set((await session.execute(select(col(Worker.name)))).scalars())
    assert names == {"工人一", "工人丁"}


async def test_xlsx_formula_with_and_without_cached_value(
    sessions: async_sessionmaker[AsyncSession], cipher: DataCipher, tmp_path: Any
) -> None:
    broker_id, village = await setup(sessions)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "身份证号", "户籍村代码", "期望工资下限（分）", "计薪单位"])
    sheet.append(["张三丰", make_id(date(1980, 1, 1), 201), village, 20000, "天"])
    sheet.append(["李四光", make_id(date(1981, 1, 1), 203), village, "=10000*2", "天"])
    out = io.BytesIO()
    book.save(out)  # openpyxl writes formulas without cached values
    report = await run_import(sessions, cipher, broker_id, out.getvalue(), "xlsx")
    assert report.created == 1
    assert [(e.row, e.column) for e in report.errors] == [(3, "期望工资下限（分）")]
    assert "公式" in report.errors[0].message


async def test_bad_files_are_one_clear_error(
    sessions: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    broker_id, _village = await setup(sessions)
    cases = {
        b"": "文件是空的",
        "\ufeff".encode() + b"\n\n": "文件是空的",
        "姓名,手机号\n张三,13912345678\n".encode(): "缺少必填列：身份证号、户籍村代码",
        (HEADER + "\n").encode(): "没有数据行",
        b"PK\x03\x04 not really a zip": "无法读取 XLSX",
    }
    for data, message in cases.items():
        fmt = "xlsx" if data.startswith(b"PK") else "csv"
        with pytest.raises(Invalid) as caught:
            await run_import(sessions, cipher, broker_id, data, fmt)
        assert message in caught.value.message
        assert caught.value.field == "file"
    assert await count(sessions) == 0


async def test_extra_columns_ignored_and_field_name_headers(
    sessions: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    broker_id, village = await setup(sessions)
    text = (
        "name,id_number,hukou_village_code,skills,无关列,wage_unit,wage_min_fen\n"
        f"王五,{make_id(date(1975, 5, 5), 301)},{village},木工|瓦工,随便,day,15000\n"
    )
    report = await run_import(sessions, cipher, broker_id, text.encode())
    assert report.created == 1, report.errors
    async with sessions() as session:
        worker = (await session.execute(select(Worker))).scalar_one()
    assert worker.skills == ["木工", "瓦工"]
    assert worker.wage_unit == "day"


def test_cli_import_and_export(db_env: str, tmp_path: Any) -> None:  # noqa: F811
    """`laowu workers import FILE --broker ID` shows progress on stderr and the summary;
    `laowu workers export` writes the masked register."""

    async def make_broker() -> tuple[int, str]:
        engine = create_engine(db_env)
        try:
            return await setup(session_factory(engine))
        finally:
            await engine.dispose()

    broker_id, village = asyncio.run(make_broker())
    path = tmp_path / "workers.csv"
    path.write_bytes(csv_rows(village, 3).encode("gbk"))
    result = run("workers", "import", str(path), "--broker", str(broker_id), "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "已处理 2 / 3 行（66%）：新增 2，更新 0，未变 0，出错 0" in result.stderr
    assert "已处理 3 / 3 行（100%）：新增 3" in result.stderr
    assert "新增 3，更新 0，未变 0，出错 0 行" in result.stdout
    again = run("workers", "import", str(path), "--broker", str(broker_id))
    assert "新增 0，更新 0，未变 3" in again.stdout
    assert query(db_env, select(func.count()).select_from(Worker))[0][0] == 3
    out = tmp_path / "out.csv"
    exported = run("workers", "export", str(out), "--broker", str(broker_id))
    assert exported.exit_code == 0, exported.output
    text = out.read_text(encoding="utf-8-sig")
    assert "工人一" in text
    assert make_id(date(1970, 1, 1), 100) not in text
    missing = run("workers", "import", str(path), "--broker", "99999")
    assert missing.exit_code == 1
    assert "经纪人 99999 不存在" in missing.stderr


async def test_demo_workers_valid_near_duplicates_and_idempotent(
    sessions: async_sessionmaker[AsyncSession],
    cipher: DataCipher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(demo, "WORKERS_PER_DISTRICT", 300)
    await demo.load_demo(sessions, cipher, seed=7, vocabulary=TaxonomyVocabulary())
    async with sessions() as session:
        rows = list((await session.execute(select(Worker))).scalars())
        brokers = {b.id: b for b in (await session.execute(select(Broker))).scalars()}
    assert len(rows) >= 900
    phones: dict[str | None, list[Worker]] = {}
    for worker in rows:
        number = cipher.decrypt(worker.id_number_enc or "", context="worker.id_number")
        identity = parse_resident_id(number, today=date(2026, 11, 27))
        assert identity.birth_date == worker.birth_date
        assert date(1960, 1, 1) <= identity.birth_date <= date(2005, 12, 31)
        assert number[:6] == worker.hukou_village_code[:6]
        assert brokers[worker.broker_id].village_code == worker.hukou_village_code
        assert worker.skills
        assert worker.occupation_codes
        phones.setdefault(worker.phone_hash, []).append(worker)
    twins = [pair for pair in phones.values() if len(pair) == 2]
    assert twins
    assert all(name_similarity(a.name or "", b.name or "") >= 60 for a, b in twins)
    await demo.load_demo(sessions, cipher, seed=7, vocabulary=TaxonomyVocabulary())
    assert await count(sessions) == len(rows)


def test_csv_in_no_known_encoding_is_refused_not_crashed() -> None:
    """Fuzzing found it: bytes that are neither UTF-8 nor GB18030 (a cut-off GBK
    character, a binary file named .csv) escaped as UnicodeDecodeError, a 500."""
    header = ",".join(c.header for c in importing.COLUMNS).encode("gbk")
    for data in (b"\x80", header + b"\n\xe5"):
        with pytest.raises(Invalid, match="编码无法识别") as caught:
            importing.count_rows(io.BytesIO(data), "csv")
        assert caught.value.field == "file"


def _corrupt_sheet(data: bytes) -> bytes:
    """The workbook with its first sheet's compressed bytes overwritten mid-stream:
    the zip directory and the workbook part still read, the rows do not."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as book:
        info = book.getinfo("xl/worksheets/sheet1.xml")
    header = data[info.header_offset : info.header_offset + 30]
    start = (
        info.header_offset
        + 30
        + int.from_bytes(header[26:28], "little")
        + int.from_bytes(header[28:30], "little")
    )
    middle = start + info.compress_size // 2
    return data[:middle] + b"\xff" * 8 + data[middle + 8 :]


def test_xlsx_damaged_inside_a_sheet_is_refused_not_crashed() -> None:
    """Fuzzing found it: a sheet whose deflate stream is corrupt loads (read-only mode
    parses lazily) and then raised zlib.error or an XML ParseError while its rows were
    read: a 500 from the API, a crashed import job."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([c.header for c in importing.COLUMNS])
    for n in range(200):
        sheet.append([f"姓名{n}", f"5002381990010{n:05d}", "", "500238001001"])
    out = io.BytesIO()
    book.save(out)
    damaged = _corrupt_sheet(out.getvalue())
    with pytest.raises(Invalid, match="无法读取 XLSX") as caught:
        list(importing.read_rows(io.BytesIO(damaged), "xlsx"))  # as import_workers reads
    assert caught.value.field == "file"


async def test_a_cell_with_nul_is_that_rows_error(
    sessions: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    """Fuzzing found it: a \\0 in a cell passed validation and then failed the whole
    batch's insert on PostgreSQL (the import job ended as an unexplained failure)."""
    broker_id, village = await setup(sessions)
    text = csv_rows(village, 3).replace("工人丁", "工人\x00丁")
    report = await run_import(sessions, cipher, broker_id, text.encode())
    assert report.created == 2
    assert [(e.row, e.column) for e in report.errors] == [(3, "姓名")], report.errors
    assert "空字符" in report.errors[0].message
    assert await count(sessions) == 2
