"""Worker and question imports on hostile files: whatever the bytes, the readers
raise only the domain's refusals (``Invalid`` for the file, a row error for a row),
never an unexpected exception that would surface as a 500 or kill an import job."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from marketplace.brokers import questions_import
from marketplace.errors import Invalid
from marketplace.workers import importing
from tests.fuzz.inputs import FUZZ, damaged, raises_only, xlsx_bytes

WORKER_HEADER = [c.header for c in importing.COLUMNS]
WORKER_ROW = [
    "张三", "500238199001011234", "13800000000", "500238001001", "", "", "外出务工",
    "电工", "电工证:A123", "300000", "500000", "月", "2026-06-01", "市外", "焊工", "是",
    "纸质签字", "",
]  # fmt: skip
QUESTION_HEADER = list(questions_import.HEADERS.values())
QUESTION_VALUES = {"code": "Q1", "kind": "单选", "category": "政策", "difficulty": "易",
                   "stem": "题干", "option_a": "甲", "option_b": "乙", "answer": "A",
                   "explanation": "解析"}  # fmt: skip
QUESTION_ROW = [QUESTION_VALUES.get(f, "") for f in questions_import.HEADERS]

GOOD_WORKER_CSV = "\n".join(",".join(r) for r in (WORKER_HEADER, WORKER_ROW)).encode()
GOOD_WORKER_XLSX = xlsx_bytes([list(WORKER_HEADER), list(WORKER_ROW)])
GOOD_QUESTION_XLSX = xlsx_bytes([QUESTION_HEADER, QUESTION_ROW])

cell = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "=A1", "1e309", "-0", "NaN", "１２３", "\x00", "\ufeff", "\r"]),
    st.integers(-(10**20), 10**20).map(str),
)
csv_text = st.lists(st.lists(cell, max_size=len(WORKER_HEADER) + 2), max_size=6)


def _worker_parse(data: bytes, file_format: str) -> None:
    """What an import does with a file before touching the database: count and check
    the header, then read and validate every row."""
    stream = io.BytesIO(data)
    try:
        importing.count_rows(stream, file_format)
    except Invalid:
        return
    rows = importing.read_rows(stream, file_format)
    try:
        header = next(rows)
        while not any(importing._cell_text(c) for c in header):
            header = next(rows)
        columns = importing.header_map(header)
        for cells in rows:
            with contextlib.suppress(importing._RowInvalid):
                importing.parse_row(cells, columns)
    finally:
        rows.close()


def _csv(rows: list[list[str]], *, encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    import csv

    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding, errors="replace")


@FUZZ
@given(data=st.binary(max_size=2048), file_format=st.sampled_from(["csv", "xlsx"]))
def test_worker_import_survives_arbitrary_bytes(data: bytes, file_format: str) -> None:
    raises_only((Invalid,), lambda: _worker_parse(data, file_format))


@FUZZ
@given(rows=csv_text, encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
def test_worker_import_survives_hostile_csv_rows(rows: list[list[str]], encoding: str) -> None:
    data = _csv([WORKER_HEADER, *rows], encoding=encoding)
    raises_only((Invalid,), lambda: _worker_parse(data, "csv"))


@FUZZ
@given(data=st.one_of(damaged(GOOD_WORKER_XLSX), damaged(GOOD_WORKER_CSV)))
def test_worker_import_survives_damaged_files(data: bytes) -> None:
    file_format = "xlsx" if data[:2] == b"PK" else "csv"
    raises_only((Invalid,), lambda: _worker_parse(data, file_format))


@FUZZ
@given(rows=st.lists(st.lists(cell, max_size=len(WORKER_HEADER) + 2), max_size=4))
def test_worker_import_survives_hostile_xlsx_cells(rows: list[list[Any]]) -> None:
    data = xlsx_bytes([list(WORKER_HEADER), *rows])
    raises_only((Invalid,), lambda: _worker_parse(data, "xlsx"))


def _question_parse(data: bytes, file_format: str) -> None:
    questions_import.read_file(io.BytesIO(data), file_format)


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=2048), damaged(GOOD_QUESTION_XLSX)),
    file_format=st.sampled_from(["csv", "xlsx"]),
)
def test_question_import_survives_arbitrary_and_damaged_files(
    data: bytes, file_format: str
) -> None:
    raises_only((Invalid,), lambda: _question_parse(data, file_format))


@FUZZ
@given(rows=st.lists(st.lists(cell, max_size=len(QUESTION_HEADER) + 2), max_size=6))
def test_question_import_survives_hostile_rows(rows: list[list[str]]) -> None:
    for data, file_format in (
        (_csv([QUESTION_HEADER, *rows]), "csv"),
        (xlsx_bytes([QUESTION_HEADER, *rows]), "xlsx"),
    ):
        raises_only((Invalid,), lambda d=data, f=file_format: _question_parse(d, f))


def test_good_files_parse() -> None:
    """The seeds the damage starts from are themselves good files."""
    for data, file_format in ((GOOD_WORKER_CSV, "csv"), (GOOD_WORKER_XLSX, "xlsx")):
        assert importing.count_rows(io.BytesIO(data), file_format) == 1
    parsed, errors = questions_import.read_file(io.BytesIO(GOOD_QUESTION_XLSX), "xlsx")
    assert errors == []
    assert len(parsed) == 1
