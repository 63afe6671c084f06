"""Compare fuzzy scorers and cutoffs on the evaluation set (docs/occupations.md).

Run: .venv/bin/python -m tests.matching.tune
"""

from __future__ import annotations

from rapidfuzz import fuzz
from rapidfuzz.process import extract

from matching.normalize import Normalizer
from tests.matching.evalset import accuracy, load_rows

SCORERS = {
    "ratio": fuzz.ratio,
    "WRatio": fuzz.WRatio,
    "QRatio": fuzz.QRatio,
    "partial_ratio": fuzz.partial_ratio,
}
CUTOFFS = (60, 70, 75, 80, 85, 90, 101)  # 101: fuzzy off


def main() -> None:
    rows = load_rows()
    print("| scorer | cutoff | margin | all | dev | holdout | fuzzy hits | fuzzy wrong |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, scorer in SCORERS.items():
        for cutoff in CUTOFFS:
            for margin in (0.0, 5.0):
                n = Normalizer(scorer=scorer, cutoff=cutoff, margin=margin)
                acc = {
                    s: accuracy(n, [r for r in rows if s in ("all", r.split)])[0]
                    for s in ("all", "dev", "holdout")
                }
                fuzzy = [(r, m) for r in rows if (m := n.normalize(r.text)) and m.method == "fuzzy"]
                bad = sum(1 for r, m in fuzzy if m.key != r.expected)
                print(
                    f"| {name} | {cutoff} | {margin:g} | {acc['all']:.4f} | {acc['dev']:.4f} | {acc['holdout']:.4f} | {len(fuzzy)} | {bad} |"
                )


def confusable_pairs() -> None:
    """Pairs of terms of different occupations (3+ characters) scoring at least the cutoff:
    what a typo could flip from one trade to the other."""
    n = Normalizer()
    terms = [t for t in n._terms if len(t) >= 3]
    occ = [n._terms[t][0].key for t in terms]
    for name, scorer in SCORERS.items():
        scores = [
            s
            for i, t in enumerate(terms)
            for _, s, j in extract(t, terms, scorer=scorer, score_cutoff=CUTOFFS[0], limit=None)
            if j > i and occ[i] != occ[j]
        ]
        line = [f"{c}: {sum(1 for s in scores if s >= c)}" for c in CUTOFFS[:-1]]
        print(name, "cross-occupation pairs >= cutoff:", ", ".join(line))


if __name__ == "__main__":
    main()
    confusable_pairs()
