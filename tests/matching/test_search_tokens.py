"""Tokenisation shared by both backends, and Meilisearch's spelling of the terms."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.search.base import WORKERS
from matching.search.meili import encode_query, index_settings, pair_term, uni_term, word_term
from matching.search.tokens import analyze, matches, query_terms


def test_characters_pairs_and_words() -> None:
    terms = analyze("电焊工，C1驾照 ２０２４")
    assert terms.unigrams == ["电", "焊", "工", "驾", "照"]
    assert terms.bigrams == ["电焊", "焊工", "驾照"]
    assert terms.words == ["c1", "2024"]


def test_query_terms_by_length() -> None:
    assert [t.kind for t in query_terms("工 焊工 钢筋工 c1")] == ["char", "pairs", "pairs", "word"]
    assert query_terms("钢筋工")[0].values == ("钢筋", "筋工")
    assert query_terms("🙂 -- *") == []


def test_brute_force_meaning() -> None:
    assert matches("焊工", "电焊工 渝中区")
    assert matches("沙坪坝", "沙坪坝区")
    assert not matches("焊渝", "电焊工 渝中区")  # not across words
    assert not matches("🙂", "🙂")


@settings(max_examples=50)
@given(st.text(max_size=6), st.text(max_size=6))
def test_meilisearch_terms_are_whole_plain_words(a: str, b: str) -> None:
    # Lower-case ASCII letters only, so Meilisearch's tokenizer keeps each whole; fixed
    # lengths (or the end mark) so no term is a prefix of another of its kind.
    for ch in a + b:
        if not ch.isalnum() or ord(ch) < 0x2E80:
            continue
        term = uni_term(ch)
        assert term.isascii()
        assert term.isalpha()
        assert term.islower()
        assert len(term) == 7
    pair = pair_term("电焊")
    assert pair.isalpha()
    assert len(pair) == 13
    if a.isalnum() and b.isalnum() and a != b:
        assert not word_term(b).startswith(word_term(a))


def test_meilisearch_query_and_settings() -> None:
    assert encode_query(query_terms("钢筋工 工")) == (
        f'"{pair_term("钢筋")} {pair_term("筋工")}" {uni_term("工")}'
    )
    settings = index_settings(WORKERS)
    assert settings["typoTolerance"] == {"enabled": False}
    assert "k_region" in settings["filterableAttributes"]
    assert "n_updated" in settings["sortableAttributes"]
