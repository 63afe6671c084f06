import pytest

from matching.taxonomy import FAMILIES, Taxonomy, TaxonomyError, load_taxonomy, parse_occupations

HEADER = "key,code,name,family,synonyms\n"


def build(rows: str, ambiguous: tuple[str, ...] = ()) -> Taxonomy:
    return Taxonomy(parse_occupations(HEADER + rows), list(ambiguous))


def test_packaged_taxonomy_loads_once_and_is_large_enough():
    tax = load_taxonomy()
    assert load_taxonomy() is tax
    assert len(tax) >= 150
    assert {occ.family for occ in tax} <= FAMILIES
    assert sum(len(occ.synonyms) for occ in tax) >= 1000


def test_lookups_by_key_code_family_and_term():
    tax = load_taxonomy()
    welder = tax.get("welder")
    assert welder is not None
    assert welder.name == "电焊工"
    assert {"焊工", "氩弧焊工", "二保焊"} <= set(welder.synonyms)
    assert tax.by_code("6-18-02-04") is welder
    assert tax.lookup("6-18-02-04") is welder
    assert tax.lookup("welder") is welder
    assert welder in tax.family("construction")
    assert tax.term("二保焊") is welder
    assert tax.term("ＣＯ２焊") is welder  # folded: full-width, upper case
    assert tax.get("nope") is None


def test_ambiguous_terms_point_at_no_occupation():
    tax = load_taxonomy()
    for term in ("司机", "师傅", "铲车", "打杂"):
        assert tax.term(term) is None
        assert term in tax.ambiguous


def test_duplicate_key_rejected():
    with pytest.raises(TaxonomyError, match="duplicate key"):
        build("a,,电工,construction,\na,,木工,construction,\n")


def test_synonym_pointing_at_two_occupations_rejected():
    with pytest.raises(TaxonomyError, match="points at both"):
        build("a,,电工,construction,师傅\nb,,木工,construction,师傅\n")


def test_synonym_clash_is_found_after_folding():
    with pytest.raises(TaxonomyError, match="points at both"):
        build("a,,质检员,manufacturing,QC\nb,,品管,manufacturing,ｑｃ\n")


def test_synonym_equal_to_another_name_rejected():
    with pytest.raises(TaxonomyError, match="points at both"):
        build("a,,电工,construction,\nb,,电焊工,construction,电工\n")


def test_empty_name_rejected():
    with pytest.raises(TaxonomyError, match="empty name"):
        build("a,, ,construction,\n")


def test_unknown_family_and_bad_code_rejected():
    with pytest.raises(TaxonomyError, match="unknown family"):
        build("a,,电工,space,\n")
    with pytest.raises(TaxonomyError, match="bad code"):
        build("a,6-31-1-3,电工,construction,\n")


def test_ambiguous_term_may_not_be_a_synonym():
    with pytest.raises(TaxonomyError, match="ambiguous"):
        build("a,,货车司机,transport,司机\n", ambiguous=("司机",))


def test_bad_header_rejected():
    with pytest.raises(TaxonomyError, match="header"):
        parse_occupations("id,name\n1,电工\n")
