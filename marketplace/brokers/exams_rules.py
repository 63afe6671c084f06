"""Pure exam rules: checking a blueprint, drawing a paper, grading (docs/training.md).

Drawing is a function of the bank and a seed: the same seed over the same bank gives
the same paper, so the recorded seed explains every paper. Scoring: every question
weighs the same; a multiple-choice question scores only when the chosen set equals the
correct set exactly (a missing or an extra option scores nothing); the score is
100 × correct ÷ questions, rounded half up to a whole number.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from marketplace.brokers.questions_models import DIFFICULTY_LABELS, Difficulty, QuestionKind
from marketplace.errors import Conflict, Invalid

MAX_PAPER_QUESTIONS = 200
Blueprint = Mapping[str, Mapping[str, int]]


def check_blueprint(blueprint: Blueprint) -> dict[str, dict[str, int]]:
    """A clean copy: known difficulties, whole non-negative counts, 1..200 questions."""
    clean: dict[str, dict[str, int]] = {}
    for category, cells in blueprint.items():
        name = str(category).strip()
        if not name or len(name) > 16:
            raise Invalid("blueprint", "蓝图中的题目分类不能为空，且不超过 16 个字")
        if not isinstance(cells, Mapping):
            raise Invalid("blueprint", f"蓝图中“{name}”应为 难度→题数 的对应表")
        for difficulty, count in cells.items():
            if difficulty not in set(Difficulty):
                raise Invalid(
                    "blueprint", f"蓝图中“{name}”的难度 {difficulty!r} 无效（easy/medium/hard）"
                )
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise Invalid("blueprint", f"蓝图中“{name}/{difficulty}”的题数应为非负整数")
            if count:
                clean.setdefault(name, {})[difficulty] = count
    total = paper_size(clean)
    if not 1 <= total <= MAX_PAPER_QUESTIONS:
        raise Invalid(
            "blueprint", f"试卷题数应在 1 到 {MAX_PAPER_QUESTIONS} 之间，蓝图共 {total} 题"
        )
    return clean


def paper_size(blueprint: Blueprint) -> int:
    return sum(sum(cells.values()) for cells in blueprint.values())


@dataclass(frozen=True)
class Candidate:
    """A question version the bank offers for drawing."""

    version_id: int
    kind: str
    category: str
    difficulty: str
    option_count: int


@dataclass(frozen=True)
class DrawnItem:
    version_id: int
    category: str
    option_order: tuple[int, ...]


def shortfalls(blueprint: Blueprint, pool: Sequence[Candidate]) -> list[str]:
    """Cells the bank cannot fill, in words (empty when the paper can be drawn)."""
    have: dict[tuple[str, str], int] = {}
    for c in pool:
        have[(c.category, c.difficulty)] = have.get((c.category, c.difficulty), 0) + 1
    problems = []
    for category, cells in sorted(blueprint.items()):
        for difficulty, count in sorted(cells.items()):
            found = have.get((category, difficulty), 0)
            if found < count:
                label = DIFFICULTY_LABELS.get(Difficulty(difficulty), difficulty)
                problems.append(f"“{category}/{label}”需要 {count} 题，题库只有 {found} 题")
    return problems


def draw(blueprint: Blueprint, pool: Sequence[Candidate], seed: int) -> list[DrawnItem]:
    """The paper: per blueprint cell a sample without repeats, then the whole paper and
    each question's options shuffled (true/false keeps 正确, 错误)."""
    problems = shortfalls(blueprint, pool)
    if problems:
        raise Conflict("题库题目不足，无法组卷：" + "；".join(problems), field="blueprint")
    rng = random.Random(seed)  # noqa: S311 - reproducible from the recorded seed, not a secret
    cells: dict[tuple[str, str], list[Candidate]] = {}
    for c in sorted(pool, key=lambda c: c.version_id):
        cells.setdefault((c.category, c.difficulty), []).append(c)
    chosen: list[Candidate] = []
    for category, wanted in sorted(blueprint.items()):
        for difficulty, count in sorted(wanted.items()):
            chosen.extend(rng.sample(cells.get((category, difficulty), []), count))
    rng.shuffle(chosen)
    paper = []
    for c in chosen:
        order = list(range(c.option_count))
        if c.kind != QuestionKind.true_false:
            rng.shuffle(order)
        paper.append(
            DrawnItem(version_id=c.version_id, category=c.category, option_order=tuple(order))
        )
    return paper


def is_correct(correct: Sequence[int], answer: Sequence[int] | None) -> bool:
    """Exact match of the chosen set (all or nothing, for multiple choice too)."""
    return answer is not None and len(answer) > 0 and set(answer) == set(correct)


def score_of(correct: int, questions: int) -> int:
    """100 × correct ÷ questions, rounded half up."""
    if questions <= 0:
        return 0
    return (correct * 200 + questions) // (2 * questions)


def check_choices(kind: str, option_count: int, choices: Sequence[int]) -> list[int]:
    """Displayed option numbers as sent by the candidate: in range, no repeats, one
    for single and true/false, at least one for multiple."""
    if not choices:
        raise Invalid("choices", "请至少选择一个选项")
    if len(set(choices)) != len(choices):
        raise Invalid("choices", "选项不能重复")
    if any(c < 0 or c >= option_count for c in choices):
        raise Invalid("choices", f"选项序号应在 0 到 {option_count - 1} 之间")
    if kind != QuestionKind.multiple and len(choices) != 1:
        raise Invalid("choices", "单选题和判断题只能选择一个选项")
    return sorted(choices)
