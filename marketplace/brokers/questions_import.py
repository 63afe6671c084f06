"""Reading questions from CSV or XLSX (the starter bank's own format).

Columns (Chinese headers, or the English field names): 编号 code, 题型 kind (单选、多选、
判断), 分类 category, 难度 difficulty (易、中、难), 题干 stem, 选项A…选项F, 答案 answer
(letters such as ``A`` or ``ACD``; 对/错 for true/false), 解析 explanation, 依据 source.
Files are read with the worker import's readers (UTF-8 or GBK CSV, XLSX cached values).
Every problem is reported by row and column; a row with a problem is not loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from pydantic import ValidationError

from marketplace.brokers.questions_models import (
    MAX_OPTIONS,
    Difficulty,
    QuestionImportError,
    QuestionInput,
    QuestionKind,
)
from marketplace.brokers.questions_rules import LETTERS, CleanQuestion, check_question
from marketplace.errors import Invalid
from marketplace.workers.importing import FORMULA_WITHOUT_VALUE, read_rows

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5_000

OPTION_FIELDS = tuple(f"option_{letter.lower()}" for letter in LETTERS[:MAX_OPTIONS])
HEADERS: dict[str, str] = {
    "code": "编号",
    "kind": "题型",
    "category": "分类",
    "difficulty": "难度",
    "stem": "题干",
    **{f: f"选项{f[-1].upper()}" for f in OPTION_FIELDS},
    "answer": "答案",
    "explanation": "解析",
    "source": "依据",
}
REQUIRED = ("code", "kind", "category", "difficulty", "stem", "answer", "explanation")
_FIELD_OF = {**{h: f for f, h in HEADERS.items()}, **{f: f for f in HEADERS}}
KINDS = {"单选": "single", "单选题": "single", "多选": "multiple", "多选题": "multiple",
         "判断": "true_false", "判断题": "true_false",
         "single": "single", "multiple": "multiple", "true_false": "true_false"}  # fmt: skip
DIFFICULTIES = {"易": "easy", "容易": "easy", "简单": "easy", "中": "medium", "中等": "medium",
                "难": "hard", "困难": "hard", "easy": "easy", "medium": "medium", "hard": "hard"}  # fmt: skip
TRUE_WORDS = {"对", "正确", "是", "√", "true", "t", "a"}
FALSE_WORDS = {"错", "错误", "否", "×", "x", "false", "f", "b"}
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class ParsedRow:
    row: int
    code: str
    question: CleanQuestion


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def header_map(header: list[Any]) -> dict[int, str]:
    found: dict[int, str] = {}
    for index, raw in enumerate(header):
        name = _text(raw).replace(" ", "")
        field = _FIELD_OF.get(name) or _FIELD_OF.get(name.lower())
        if field is None:
            continue
        if field in found.values():
            raise Invalid("file", f"表头中“{HEADERS[field]}”列出现了两次")
        found[index] = field
    missing = [HEADERS[f] for f in REQUIRED if f not in found.values()]
    if missing:
        raise Invalid("file", "缺少必填列：" + "、".join(missing))
    return found


class _RowError(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message


def _answer(kind: str, raw: str, option_count: int) -> list[int]:
    text = raw.strip()
    if not text:
        raise _RowError("answer", "没有正确答案")
    if kind == "true_false":
        word = text.lower()
        if word in TRUE_WORDS:
            return [0]
        if word in FALSE_WORDS:
            return [1]
        raise _RowError("answer", f"判断题答案应为“对”或“错”，不是 {raw!r}")
    letters = [ch for ch in text.upper() if ch not in " ,，、;；"]
    if any(ch not in LETTERS for ch in letters):
        raise _RowError("answer", f"答案应为选项字母（如 A 或 ACD），不是 {raw!r}")
    indices = [LETTERS.index(ch) for ch in letters]
    missing = [LETTERS[i] for i in indices if i >= option_count]
    if missing:
        raise _RowError("answer", f"答案 {''.join(missing)} 对应的选项没有填写")
    return indices


def parse_row(values: dict[str, str]) -> tuple[str, CleanQuestion]:
    for field, value in values.items():
        if "\x00" in value:  # PostgreSQL cannot store it (found by fuzzing)
            raise _RowError(field, "含有空字符（\\0），请删除后重新导入")
    code = values.get("code", "")
    if not CODE_PATTERN.match(code):
        raise _RowError("code", "编号只能由字母、数字、点、短横线和下划线组成，最多 32 个字符")
    kind = KINDS.get(values.get("kind", "").lower())
    if kind is None:
        raise _RowError("kind", "题型应为 单选、多选 或 判断")
    difficulty = DIFFICULTIES.get(values.get("difficulty", "").lower())
    if difficulty is None:
        raise _RowError("difficulty", "难度应为 易、中 或 难")
    options = [values.get(f, "") for f in OPTION_FIELDS]
    while options and not options[-1]:
        options.pop()
    if kind == "true_false":
        options = []
    elif "" in options:
        raise _RowError(OPTION_FIELDS[options.index("")], "选项之间不能有空选项")
    correct = _answer(kind, values.get("answer", ""), len(options) if options else 2)
    try:
        data = QuestionInput(
            code=code,
            kind=QuestionKind(kind),
            category=values.get("category", ""),
            difficulty=Difficulty(difficulty),
            stem=values.get("stem", ""),
            options=options,
            correct=correct,
            explanation=values.get("explanation", ""),
            source=values.get("source") or None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "file"
        raise _RowError(field, f"内容过长或格式有误：{first['msg']}") from None
    try:
        return code, check_question(data)
    except Invalid as exc:
        field = "answer" if exc.field == "correct" else (exc.field or "file")
        raise _RowError(field, exc.message) from None


def parse_rows(
    rows: Iterable[list[Any]],
) -> tuple[list[ParsedRow], list[QuestionImportError]]:
    """(good rows, errors by row and column); row 1 is the header."""
    iterator: Iterator[list[Any]] = iter(rows)
    header = next(iterator, None)
    if header is None:
        raise Invalid("file", "文件是空的")
    columns = header_map(header)
    parsed: list[ParsedRow] = []
    errors: list[QuestionImportError] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(iterator, start=2):
        if number - 1 > MAX_ROWS:
            raise Invalid("file", f"一次最多导入 {MAX_ROWS} 道题")
        if all(_text(v) == "" for v in raw):
            continue
        values: dict[str, str] = {}
        formula = None
        for index, field in columns.items():
            cell = raw[index] if index < len(raw) else None
            if cell is FORMULA_WITHOUT_VALUE:
                formula = field
            values[field] = _text(cell)
        try:
            if formula:
                raise _RowError(formula, "单元格是未计算的公式，请在 Excel 中保存后再导入")
            code, question = parse_row(values)
            if code in seen:
                raise _RowError("code", f"编号 {code} 与第 {seen[code]} 行重复")
            seen[code] = number
        except _RowError as exc:
            errors.append(
                QuestionImportError(
                    row=number, column=HEADERS.get(exc.field, exc.field), message=exc.message
                )
            )
            continue
        parsed.append(ParsedRow(row=number, code=code, question=question))
    return parsed, errors


def read_file(
    stream: IO[bytes], file_format: str
) -> tuple[list[ParsedRow], list[QuestionImportError]]:
    rows = read_rows(stream, file_format)
    try:
        return parse_rows(rows)
    finally:
        rows.close()  # while the stream is still open, even when the header is refused
