"""Drawing a paper by blueprint and grading it: pure functions, no database."""

from __future__ import annotations

from collections import Counter

import pytest

from marketplace.brokers import exams_rules as rules
from marketplace.brokers.exams_models import DEFAULT_BLUEPRINT
from marketplace.errors import Conflict, Invalid


def bank() -> list[rules.Candidate]:
    """Eight questions in each cell of three categories × three difficulties."""
    out = []
    n = 0
    for category in ("政策法规", "业务知识", "职业道德"):
        for difficulty in ("easy", "medium", "hard"):
            for i in range(8):
                n += 1
                kind = ("single", "multiple", "true_false")[i % 3]
                out.append(
                    rules.Candidate(
                        version_id=n,
                        kind=kind,
                        category=category,
                        difficulty=difficulty,
                        option_count=2 if kind == "true_false" else 4,
                    )
                )
    return out


BLUEPRINT = {"政策法规": {"easy": 3, "medium": 4, "hard": 2}, "职业道德": {"easy": 2, "hard": 1}}


def test_the_paper_follows_the_blueprint_without_repeats() -> None:
    pool = bank()
    by_id = {c.version_id: c for c in pool}
    for seed in range(50):
        paper = rules.draw(BLUEPRINT, pool, seed)
        ids = [item.version_id for item in paper]
        assert len(ids) == len(set(ids)) == 12
        cells = Counter((by_id[i].category, by_id[i].difficulty) for i in ids)
        assert cells == Counter(
            {
                ("政策法规", "easy"): 3,
                ("政策法规", "medium"): 4,
                ("政策法规", "hard"): 2,
                ("职业道德", "easy"): 2,
                ("职业道德", "hard"): 1,
            }
        )


def test_each_candidate_gets_another_order_and_a_seed_reproduces_its_paper() -> None:
    pool = bank()
    papers = [
        tuple(item.version_id for item in rules.draw(BLUEPRINT, pool, seed)) for seed in range(20)
    ]
    assert len(set(papers)) == 20  # twenty candidates, twenty different papers or orders
    # Same questions drawn in a different order still count as a different order.
    orders = {p for p in papers if sorted(p) == sorted(papers[0])}
    assert len(orders) == sum(1 for p in papers if sorted(p) == sorted(papers[0]))
    assert rules.draw(BLUEPRINT, pool, 7) == rules.draw(BLUEPRINT, pool, 7)


def test_options_are_shuffled_but_true_false_keeps_its_order() -> None:
    pool = bank()
    kinds = {c.version_id: c.kind for c in pool}
    shuffled = 0
    for seed in range(10):
        for item in rules.draw(BLUEPRINT, pool, seed):
            assert sorted(item.option_order) == list(range(len(item.option_order)))
            if kinds[item.version_id] == "true_false":
                assert item.option_order == (0, 1)
            elif item.option_order != (0, 1, 2, 3):
                shuffled += 1
    assert shuffled > 0


def test_a_bank_too_small_for_the_blueprint_is_refused_naming_the_cell() -> None:
    pool = [c for c in bank() if not (c.category == "职业道德" and c.difficulty == "hard")]
    with pytest.raises(Conflict) as caught:
        rules.draw(BLUEPRINT, pool, 1)
    assert "职业道德/难" in caught.value.message
    assert "题库只有 0 题" in caught.value.message


@pytest.mark.parametrize(
    ("blueprint", "words"),
    [
        ({"政策法规": {"extreme": 1}}, "难度"),
        ({"政策法规": {"easy": -1}}, "非负整数"),
        ({"政策法规": {"easy": 0}}, "1 到 200"),
        ({"": {"easy": 2}}, "分类"),
    ],
)
def test_bad_blueprints_are_refused(blueprint: dict, words: str) -> None:
    with pytest.raises(Invalid) as caught:
        rules.check_blueprint(blueprint)
    assert caught.value.field == "blueprint"
    assert words in caught.value.message


def test_the_default_blueprint_is_twenty_questions() -> None:
    assert rules.paper_size(rules.check_blueprint(DEFAULT_BLUEPRINT)) == 20


def test_grading_is_exact_match_and_multiple_choice_is_all_or_nothing() -> None:
    assert rules.is_correct([2], [2])
    assert not rules.is_correct([2], [1])
    assert not rules.is_correct([2], None)
    assert not rules.is_correct([2], [])
    assert rules.is_correct([0, 2, 3], [3, 0, 2])
    assert not rules.is_correct([0, 2, 3], [0, 2])  # one missing
    assert not rules.is_correct([0, 2, 3], [0, 1, 2, 3])  # one extra


@pytest.mark.parametrize(
    ("correct", "questions", "score"),
    [(20, 20, 100), (12, 20, 60), (11, 20, 55), (0, 20, 0), (2, 3, 67), (1, 3, 33), (1, 8, 13)],
)
def test_scores_are_out_of_100_rounded_half_up(correct: int, questions: int, score: int) -> None:
    assert rules.score_of(correct, questions) == score


@pytest.mark.parametrize(
    ("kind", "choices", "words"),
    [
        ("single", [], "至少选择"),
        ("single", [0, 1], "只能选择一个"),
        ("true_false", [0, 1], "只能选择一个"),
        ("multiple", [1, 1], "不能重复"),
        ("single", [4], "0 到 3"),
        ("single", [-1], "0 到 3"),
    ],
)
def test_bad_choices_are_refused(kind: str, choices: list[int], words: str) -> None:
    with pytest.raises(Invalid) as caught:
        rules.check_choices(kind, 2 if kind == "true_false" else 4, choices)
    assert caught.value.field == "choices"
    assert words in caught.value.message.replace("0 到 1", "0 到 3")
