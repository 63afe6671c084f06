"""Occupations taxonomy: the curated occupations brokers, workers and employers name.

Data lives in ``occupations.csv`` (one row per occupation, synonyms joined by ``|``)
and ``ambiguous.csv`` (terms that name no single occupation). See docs/occupations.md.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

FAMILIES = frozenset(
    {
        "construction",
        "manufacturing",
        "logistics",
        "domestic_care",
        "catering",
        "agriculture",
        "security_cleaning",
        "transport",
        "mining",
        "textile",
        "ecommerce",
        "services",
    }
)
CODE_PARTS = (1, 2, 2, 2)  # e.g. "6-18-02-04"


class TaxonomyError(ValueError):
    """The taxonomy data files break a rule; raised on load, never at request time."""


def fold(text: str) -> str:
    """The form terms are compared in: NFKC (full-width to half-width), lower case,
    no whitespace."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


@dataclass(frozen=True, slots=True)
class Occupation:
    key: str
    code: str | None  # 中华人民共和国职业分类大典 code, where known
    name: str
    family: str
    synonyms: tuple[str, ...]

    @property
    def terms(self) -> tuple[str, ...]:
        """The canonical name, then the synonyms."""
        return (self.name, *self.synonyms)


class Taxonomy:
    """Validated, immutable occupations with lookups by key, code, family and term."""

    def __init__(self, occupations: list[Occupation], ambiguous: list[str]) -> None:
        self._by_key: dict[str, Occupation] = {}
        self._by_code: dict[str, Occupation] = {}
        self._by_term: dict[str, Occupation] = {}
        for occ in occupations:
            self._add(occ)
        self.ambiguous: frozenset[str] = frozenset(fold(t) for t in ambiguous)
        clash = sorted(self.ambiguous & self._by_term.keys())
        if clash:
            raise TaxonomyError(f"ambiguous terms also listed as occupation terms: {clash}")

    def _add(self, occ: Occupation) -> None:
        _check(occ)
        if occ.key in self._by_key:
            raise TaxonomyError(f"duplicate key {occ.key!r}")
        self._by_key[occ.key] = occ
        if occ.code is not None:
            if occ.code in self._by_code:
                raise TaxonomyError(f"duplicate code {occ.code!r}")
            self._by_code[occ.code] = occ
        for term in occ.terms:
            folded = fold(term)
            other = self._by_term.get(folded)
            if other is occ:
                raise TaxonomyError(f"{occ.key}: term {term!r} listed twice")
            if other is not None:
                raise TaxonomyError(f"term {term!r} points at both {other.key} and {occ.key}")
            self._by_term[folded] = occ

    def __iter__(self) -> Iterator[Occupation]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> Occupation | None:
        return self._by_key.get(key)

    def by_code(self, code: str) -> Occupation | None:
        return self._by_code.get(code)

    def lookup(self, key_or_code: str) -> Occupation | None:
        """By internal key, else by national code."""
        return self._by_key.get(key_or_code) or self._by_code.get(key_or_code)

    def family(self, family: str) -> list[Occupation]:
        return [occ for occ in self._by_key.values() if occ.family == family]

    def term(self, text: str) -> Occupation | None:
        """The occupation whose name or synonym equals ``text`` (folded)."""
        return self._by_term.get(fold(text))

    @property
    def terms(self) -> dict[str, Occupation]:
        """Every folded name and synonym with its occupation."""
        return dict(self._by_term)


def _check(occ: Occupation) -> None:
    if not occ.key or not occ.key.isascii() or not occ.key.replace("_", "").isalnum():
        raise TaxonomyError(f"bad key {occ.key!r}")
    if not occ.name.strip():
        raise TaxonomyError(f"{occ.key}: empty name")
    if occ.family not in FAMILIES:
        raise TaxonomyError(f"{occ.key}: unknown family {occ.family!r}")
    if occ.code is not None:
        parts = occ.code.split("-")
        if [len(p) for p in parts] != list(CODE_PARTS) or not all(p.isdigit() for p in parts):
            raise TaxonomyError(f"{occ.key}: bad code {occ.code!r}")
    if any(not s.strip() for s in occ.synonyms):
        raise TaxonomyError(f"{occ.key}: empty synonym")


def parse_occupations(text: str) -> list[Occupation]:
    rows = csv.DictReader(io.StringIO(text))
    expected = ["key", "code", "name", "family", "synonyms"]
    if rows.fieldnames != expected:
        raise TaxonomyError(f"occupations header must be {expected}, got {rows.fieldnames}")
    return [
        Occupation(
            key=row["key"].strip(),
            code=row["code"].strip() or None,
            name=row["name"].strip(),
            family=row["family"].strip(),
            synonyms=tuple(s.strip() for s in row["synonyms"].split("|"))
            if row["synonyms"]
            else (),
        )
        for row in rows
    ]


def parse_ambiguous(text: str) -> list[str]:
    return [row["term"].strip() for row in csv.DictReader(io.StringIO(text))]


def _read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    """The packaged taxonomy, validated once per process."""
    return Taxonomy(
        parse_occupations(_read("occupations.csv")), parse_ambiguous(_read("ambiguous.csv"))
    )


__all__ = ["FAMILIES", "Occupation", "Taxonomy", "TaxonomyError", "fold", "load_taxonomy"]
