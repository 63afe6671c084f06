from collections import Counter

from matching.normalize import default_normalizer
from matching.taxonomy import load_taxonomy
from tests.matching.evalset import accuracy, load_rows

TARGET = 0.95


def test_eval_set_is_large_varied_and_honestly_marked():
    rows = load_rows()
    tax = load_taxonomy()
    assert len(rows) >= 400
    assert len({r.text for r in rows}) == len(rows)
    terms = {t.lower() for occ in tax for t in occ.terms}
    assert [r for r in rows if r.expected and tax.get(r.expected) is None] == []
    # "synonym" marks exactly the rows copied from the taxonomy (up to Latin case)
    assert [r for r in rows if (r.text.lower() in terms) != (r.kind == "synonym")] == []
    kinds = Counter(r.kind for r in rows)
    assert kinds["synonym"] < len(rows) / 2
    assert {"ad", "colloquial", "typo", "trad", "fullwidth", "quantity", "negative"} <= kinds.keys()


def test_top1_accuracy(capsys):
    rows = load_rows()
    normalizer = default_normalizer()
    overall, wrong = accuracy(normalizer, rows)
    holdout, _ = accuracy(normalizer, [r for r in rows if r.split == "holdout"])
    with capsys.disabled():
        print(
            f"\nnormaliser top-1 accuracy {overall:.4f} on {len(rows)} rows (holdout {holdout:.4f})"
        )
        for row, got in wrong:
            print(f"  miss: {row.text!r} expected {row.expected} got {got}")
    assert overall >= TARGET
    assert holdout >= TARGET
