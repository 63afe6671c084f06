"""Text to index terms, the same way for documents and queries.

Chinese has no spaces, and word segmentation misses a word inside a longer one
(焊工 in 电焊工, 沙坪坝 in 沙坪坝区). So, as Lucene's CJK analyzer does, a run of CJK
characters is indexed as every single character and every overlapping pair:
电焊工 → 电 焊 工 + 电焊 焊工. A query run of one character looks up the single
characters; a run of two or more looks up its pairs in order (a phrase), which is
exactly "the run occurs in the text". Latin letters and digits form words (C1, 2024).
See docs/search.md.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Query runs longer than this are cut: nobody types 64 Chinese characters into a
# search box, and an unbounded phrase is an unbounded query.
MAX_RUN = 32
MAX_TERMS = 16


# Scripts written without spaces: kana, CJK ideographs (with extension A and the
# compatibility block), Hangul, and the ideograph extensions beyond the BMP. CJK
# punctuation (U+3000–303F) is not among them, so 、。「」 separate like spaces do.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff"
_RUN = re.compile(f"([{_CJK}]+)|([^\\W_{_CJK}]+)")


def fold(text: str) -> str:
    """NFKC (full-width 'Ｃ１' → 'c1'), lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def segments(text: str) -> list[tuple[str, str]]:
    """``[(kind, value)]`` with kind ``cjk`` (a run of CJK characters) or ``word``
    (a run of other letters and digits); everything else separates."""
    return [("cjk", m[1]) if m[1] else ("word", m[2]) for m in _RUN.finditer(fold(text))]


@dataclass(frozen=True)
class Analyzed:
    """A document's terms by field: single characters, pairs (in order), words."""

    unigrams: list[str]
    bigrams: list[str]
    words: list[str]


def analyze(text: str) -> Analyzed:
    """The terms of ``text``. Spaces separate, so the text is analysed piece by piece
    with a cache: a million workers share few skills and village names."""
    unigrams: list[str] = []
    bigrams: list[str] = []
    words: list[str] = []
    for piece in text.split():
        uni, bi, word = _analyze_piece(piece)
        unigrams.extend(uni)
        bigrams.extend(bi)
        words.extend(word)
    return Analyzed(unigrams=unigrams, bigrams=bigrams, words=words)


@lru_cache(maxsize=262_144)
def _analyze_piece(piece: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    unigrams: list[str] = []
    bigrams: list[str] = []
    words: list[str] = []
    for kind, value in segments(piece):
        if kind == "word":
            words.append(value)
            continue
        unigrams.extend(value)
        bigrams.extend(value[i : i + 2] for i in range(len(value) - 1))
    return tuple(unigrams), tuple(bigrams), tuple(words)


@dataclass(frozen=True)
class Term:
    """One query term; every term of a query must match (AND)."""

    kind: str  # "char" (one CJK character), "pairs" (a phrase of pairs), "word"
    values: tuple[str, ...]

    def matches(self, text: str) -> bool:
        """The brute-force meaning of the term, for tests and the recall benchmark."""
        if self.kind == "word":
            return self.values[0] in analyze(text).words
        if self.kind == "char":
            return self.values[0] in fold(text)
        run = self.values[0] + "".join(p[1] for p in self.values[1:])
        return any(kind == "cjk" and run in value for kind, value in segments(text))


def query_terms(query: str) -> list[Term]:
    """The terms of a query; an empty list when it holds nothing searchable
    (only punctuation or emoji), which matches nothing."""
    terms: list[Term] = []
    for kind, value in segments(query):
        if kind == "word":
            terms.append(Term("word", (value[:MAX_RUN],)))
        elif len(value) == 1:
            terms.append(Term("char", (value,)))
        else:
            value = value[:MAX_RUN]
            terms.append(Term("pairs", tuple(value[i : i + 2] for i in range(len(value) - 1))))
    return terms[:MAX_TERMS]


def matches(query: str, text: str) -> bool:
    """Does ``text`` match ``query`` (every term)? The engines' contract, brute force."""
    terms = query_terms(query)
    return bool(terms) and all(term.matches(text) for term in terms)
