"""Pure checks of a question as written (docs/training.md, "Question bank")."""

from __future__ import annotations

from dataclasses import dataclass

from marketplace.brokers.questions_models import (
    MAX_OPTIONS,
    TRUE_FALSE_OPTIONS,
    Difficulty,
    QuestionInput,
    QuestionKind,
)
from marketplace.errors import Invalid

LETTERS = "ABCDEF"


@dataclass(frozen=True)
class CleanQuestion:
    kind: str
    category: str
    difficulty: str
    stem: str
    options: tuple[str, ...]
    correct: tuple[int, ...]
    explanation: str
    source: str | None

    def same_content(self, other: CleanQuestion) -> bool:
        return self == other


def check_question(data: QuestionInput) -> CleanQuestion:
    """Refuses, naming the field: an empty stem or explanation, too few or repeated
    options, and above all a question with no correct option."""
    stem = data.stem.strip()
    if not stem:
        raise Invalid("stem", "题干不能为空")
    category = data.category.strip()
    if not category:
        raise Invalid("category", "请填写题目分类（如 业务知识、政策法规、职业道德）")
    explanation = data.explanation.strip()
    if not explanation:
        raise Invalid("explanation", "请填写答案解析")
    kind = QuestionKind(data.kind)
    if kind == QuestionKind.true_false:
        options = tuple(o.strip() for o in data.options if o.strip())
        if options and options != TRUE_FALSE_OPTIONS:
            raise Invalid("options", "判断题不需要填写选项（固定为 正确、错误）")
        options = TRUE_FALSE_OPTIONS
    else:
        options = tuple(o.strip() for o in data.options)
        if any(not o for o in options):
            raise Invalid("options", "选项内容不能为空")
        if not 2 <= len(options) <= MAX_OPTIONS:
            raise Invalid("options", f"选择题应有 2 到 {MAX_OPTIONS} 个选项")
        if len(set(options)) != len(options):
            raise Invalid("options", "选项内容不能重复")
    correct = tuple(sorted(set(data.correct)))
    if not correct:
        raise Invalid("correct", "没有正确答案：请至少标出一个正确选项")
    if any(i < 0 or i >= len(options) for i in correct):
        raise Invalid("correct", "正确答案指向了不存在的选项")
    if kind != QuestionKind.multiple and len(correct) != 1:
        raise Invalid("correct", "单选题和判断题只能有一个正确答案")
    if kind == QuestionKind.multiple and len(correct) < 2:
        raise Invalid("correct", "多选题至少要有两个正确选项（只有一个正确选项请设为单选题）")
    return CleanQuestion(
        kind=kind.value,
        category=category,
        difficulty=Difficulty(data.difficulty).value,
        stem=stem,
        options=options,
        correct=correct,
        explanation=explanation,
        source=(data.source or "").strip() or None,
    )


def answer_letters(correct: tuple[int, ...] | list[int]) -> str:
    return "".join(LETTERS[i] for i in sorted(correct))
