import pytest
from rapidfuzz import fuzz

from matching.normalize import (
    FUZZY_CUTOFF,
    Normalizer,
    TaxonomyOccupationMapper,
    clean,
    normalize,
    normalize_many,
)
from matching.taxonomy import load_taxonomy


def key(text: str) -> str | None:
    match = normalize(text)
    return match.key if match else None


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("ＣＮＣ操作工", "cnc操作工"),
        (" 电 焊 工 ", "电焊工"),
        ("電銲工", "电焊工"),
        ("招聘电焊工若干名，包吃住", "电焊工"),
        ("钢筋工10名 日结350元", "钢筋工"),
        ("A2司机", "a2司机"),
        ("混泥土工", "混凝土工"),
        ("电工（持证）！", "电工"),
    ],
)
def test_clean(raw, cleaned):
    assert clean(raw) == cleaned


def test_exact_name_and_synonym():
    name = normalize("电焊工")
    assert name is not None
    assert (name.method, name.score, name.key, name.code, name.family) == (
        "exact",
        100.0,
        "welder",
        "6-18-02-04",
        "construction",
    )
    syn = normalize("二保焊")
    assert syn is not None
    assert (syn.method, syn.key, syn.name) == ("synonym", "welder", "电焊工")


def test_electrician_is_not_welder():
    assert fuzz.ratio("电工", "电焊工") == 80  # why fuzzy alone cannot decide
    assert key("电工") == "electrician"
    assert key("电工师傅") == "electrician"
    assert key("招电工2名") == "electrician"
    assert key("電工") == "electrician"
    assert key("电焊") == "welder"
    assert key("焊工") == "welder"


def test_carpenter_is_not_formwork_carpenter():
    assert key("木工") == "carpenter"
    assert key("模板工") == "formwork_carpenter"
    assert key("模板木工") == "formwork_carpenter"


def test_contains_takes_the_head_of_the_compound():
    match = normalize("电子厂质检员")
    assert match is not None
    assert (match.method, match.key) == ("contains", "quality_inspector")
    assert key("注塑普工") == "injection_moulder"  # a weak head yields to the trade
    assert key("水电工") == "plumber_electrician"  # not 电工 inside it


def test_fuzzy_repairs_a_variant_but_needs_length_and_cutoff():
    match = normalize("数控车床操作员")
    assert match is not None
    assert match.key == "cnc_lathe_operator"
    strict = Normalizer(cutoff=101)
    assert strict.normalize("电焊工") is not None  # exact still works without fuzzy
    # a 2-character input never goes fuzzy, whatever the cutoff
    loose = Normalizer(cutoff=50, margin=0)
    assert loose.normalize("电筋") is None
    assert fuzz.ratio("电工", "电焊工") - 1 < FUZZY_CUTOFF


def test_fuzzy_never_maps_one_term_onto_another_occupation():
    """Every name and synonym maps to its own occupation."""
    tax = load_taxonomy()
    wrong = [(t, occ.key) for occ in tax for t in occ.terms if key(t) != occ.key]
    assert wrong == []


@pytest.mark.parametrize(
    "text", ["司机", "会开车也会做饭", "什么都能干", "师傅", "", "  ", "！！", "a" * 10_000, "😀"]
)
def test_unmatched_stays_unmatched(text):
    assert normalize(text) is None


def test_several_trades_give_none_alone_and_each_in_many():
    assert normalize("电焊工、钢筋工") is None
    keys = [m.key for m in normalize_many(["电焊工、钢筋工", "焊工", "司机", "会开叉车"])]
    assert keys == ["welder", "rebar_worker", "forklift_driver"]


def test_mapper_returns_keys_once_in_order():
    mapper = TaxonomyOccupationMapper()
    assert mapper.codes_for(["电焊", "扎钢筋", "电焊工", "什么都能干"]) == [
        "welder",
        "rebar_worker",
    ]
    assert mapper.codes_for([]) == []


def test_mapper_satisfies_the_worker_register_protocol():
    from marketplace.workers.service import OccupationMapper

    mapper: OccupationMapper = TaxonomyOccupationMapper()
    assert mapper.codes_for(["保安"]) == ["security_guard"]
