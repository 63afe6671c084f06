"""The question checks and the CSV/XLSX reader, and the shipped starter bank."""

from __future__ import annotations

import io
from collections import Counter

import openpyxl
import pytest

from marketplace.brokers import questions_import
from marketplace.brokers.exams_models import DEFAULT_BLUEPRINT
from marketplace.brokers.questions import starter_bank
from marketplace.brokers.questions_models import QuestionInput
from marketplace.brokers.questions_rules import check_question
from marketplace.errors import Invalid

HEADER = "编号,题型,分类,难度,题干,选项A,选项B,选项C,选项D,答案,解析,依据\n"


def read(text: str) -> tuple[list[questions_import.ParsedRow], list]:
    return questions_import.read_file(io.BytesIO(text.encode("utf-8")), "csv")


def test_the_starter_bank_has_over_100_complete_questions_that_fill_the_default_paper() -> None:
    with starter_bank().open("rb") as stream:
        rows, errors = questions_import.read_file(stream, "csv")
    assert errors == []
    assert len(rows) >= 100
    for row in rows:
        q = row.question
        assert q.explanation
        assert q.source, row.code
        assert q.correct
    kinds = Counter(r.question.kind for r in rows)
    assert set(kinds) == {"single", "multiple", "true_false"}
    cells = Counter((r.question.category, r.question.difficulty) for r in rows)
    for category, wanted in DEFAULT_BLUEPRINT.items():
        for difficulty, count in wanted.items():
            # Room for different papers: at least twice what one paper takes.
            assert cells[(category, difficulty)] >= min(2 * count, count + 1), (
                category,
                difficulty,
            )
    topics = {r.code.split("-")[0] for r in rows}
    assert {"LC", "WG", "SI", "ES", "GL", "RP", "BD", "ET"} <= topics


def test_rows_are_parsed_into_questions() -> None:
    rows, errors = read(
        HEADER
        + "T-1,单选,政策法规,易,题一,甲,乙,丙,,B,解析一,依据\n"
        + "T-2,多选,业务知识,难,题二,甲,乙,丙,丁,A、C,解析二,\n"
        + "T-3,判断,职业道德,中,题三,,,,,错,解析三,\n"
    )
    assert errors == []
    single, multiple, judge = (r.question for r in rows)
    assert single.options == ("甲", "乙", "丙")
    assert single.correct == (1,)
    assert multiple.correct == (0, 2)
    assert multiple.difficulty == "hard"
    assert judge.options == ("正确", "错误")
    assert judge.correct == (1,)


def test_errors_are_reported_by_row_and_column_and_good_rows_kept_apart() -> None:
    rows, errors = read(
        HEADER
        + "T-1,单选,政策法规,易,题一,甲,乙,,,,解析,\n"  # no correct option
        + "T-2,单选,政策法规,易,题二,甲,乙,,,C,解析,\n"  # answer without its option
        + "T-3,填空,政策法规,易,题三,甲,乙,,,A,解析,\n"  # unknown kind
        + "T-4,多选,政策法规,超难,题四,甲,乙,丙,,AB,解析,\n"  # unknown difficulty
        + "T-5,多选,政策法规,易,题五,甲,乙,丙,,A,解析,\n"  # multiple with one answer
        + "T-6,判断,政策法规,易,题六,,,,,也许,解析,\n"
        + "T-7,单选,政策法规,易,题七,甲,乙,,,A,,\n"  # no explanation
        + "T-8,单选,政策法规,易,题八,甲,,丙,,A,解析,\n"  # a gap in the options
        + "T-9,单选,政策法规,易,题九,甲,乙,,,A,解析,\n"
        + "T-9,单选,政策法规,易,题十,甲,乙,,,A,解析,\n"  # the same code twice
    )
    assert [r.code for r in rows] == ["T-9"]
    found = {(e.row, e.column): e.message for e in errors}
    assert set(found) == {
        (2, "答案"),
        (3, "答案"),
        (4, "题型"),
        (5, "难度"),
        (6, "答案"),
        (7, "答案"),
        (8, "解析"),
        (9, "选项B"),
        (11, "编号"),
    }
    assert "没有正确答案" in found[(2, "答案")]
    assert "C" in found[(3, "答案")]
    assert "第 10 行" in found[(11, "编号")]


def test_a_file_without_required_columns_is_refused_as_a_whole() -> None:
    with pytest.raises(Invalid) as caught:
        read("编号,题干,答案\nT-1,题,A\n")
    assert caught.value.field == "file"
    assert "题型" in caught.value.message


def test_xlsx_is_read_like_csv() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.strip().split(","))
    sheet.append(["X-1", "单选", "政策法规", "中", "题", "甲", "乙", None, None, "A", "解析", None])
    sheet.append(
        ["X-2", "判断", "政策法规", "中", "题二", None, None, None, None, "对", None, None]
    )
    out = io.BytesIO()
    book.save(out)
    out.seek(0)
    rows, errors = questions_import.read_file(out, "xlsx")
    assert [r.code for r in rows] == ["X-1"]
    assert [(e.row, e.column) for e in errors] == [(3, "解析")]


def test_a_question_with_no_correct_option_is_refused() -> None:
    data = QuestionInput(
        kind="single",
        category="政策法规",
        difficulty="easy",
        stem="题",
        options=["甲", "乙"],
        correct=[],
        explanation="解析",
    )
    with pytest.raises(Invalid) as caught:
        check_question(data)
    assert caught.value.field == "correct"
    assert "没有正确答案" in caught.value.message


def test_a_cell_with_nul_is_that_rows_error() -> None:
    """Fuzzing found it: a \\0 in a question passed the checks and would then fail the
    whole import on PostgreSQL; it is now an error on its row and column."""
    rows, errors = read(
        HEADER
        + "Q1,单选,政策,易,题干\x00,甲,乙,,,A,解析,依据\n"
        + "Q2,单选,政策,易,题干,甲,乙,,,A,解析,依据\n"
    )
    assert [r.code for r in rows] == ["Q2"]  # and with an error, import stores nothing
    assert [(e.row, e.column) for e in errors] == [(2, "题干")]
    assert "空字符" in errors[0].message
