"""The search contract every backend implements (docs/search.md).

A backend keeps named indexes (``IndexSpec``) of ``SearchDoc``: an integer id, free
text, keyword fields (exact values, several per document: occupation keys, the codes
of every region above a village…) and integer fields (ranges and sorting). Queries
AND together a text match, keyword clauses (each an OR over field/value pairs) and
ranges. The database stays the truth: callers re-check every hit against it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class IndexSpec:
    name: str
    keywords: tuple[str, ...]
    numbers: tuple[str, ...]


WORKERS = IndexSpec(
    name="workers",
    keywords=("occupation", "region", "status", "broker", "consent"),
    numbers=("available", "updated", "wage_min"),
)
JOBS = IndexSpec(
    name="jobs",
    keywords=("occupation", "region", "board", "lodging", "wage_unit", "organization"),
    numbers=("wage_min", "wage_max", "starts", "updated"),
)
SPECS = {spec.name: spec for spec in (WORKERS, JOBS)}


@dataclass(frozen=True)
class SearchDoc:
    id: int
    text: str
    keywords: Mapping[str, Sequence[str]] = field(default_factory=dict)
    numbers: Mapping[str, int] = field(default_factory=dict)


# One clause: the document has at least one of these values in that field, for any
# of the fields named ({"region": ["500101001001", …], "broker": ["7"]}). An empty
# clause matches nothing.
Clause = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class SearchQuery:
    text: str | None = None  # None or blank: no text condition
    clauses: Sequence[Clause] = ()
    # field -> (lowest, highest), both inclusive, either may be None
    ranges: Mapping[str, tuple[int | None, int | None]] = field(default_factory=dict)
    # None: relevance when there is text, else newest first; or a number field,
    # "-field" for descending
    sort: str | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class SearchHits:
    ids: list[int]
    total: int


class SearchError(RuntimeError):
    """The search engine failed or is unreachable."""


class SearchBackend(Protocol):
    name: str

    async def upsert(self, spec: IndexSpec, docs: Sequence[SearchDoc]) -> None:
        """Add documents, replacing any with the same id."""

    async def delete(self, spec: IndexSpec, ids: Sequence[int]) -> None:
        """Remove documents by id (absent ids are fine)."""

    async def search(self, spec: IndexSpec, query: SearchQuery) -> SearchHits: ...

    async def count(self, spec: IndexSpec) -> int: ...

    async def clear(self, spec: IndexSpec) -> None: ...

    async def rebuild(self, spec: IndexSpec, batches: AsyncIterator[Sequence[SearchDoc]]) -> int:
        """Replace the whole index with these documents; searches see the old index
        until the new one is complete. Returns the number of documents."""
        ...

    async def close(self) -> None: ...


def sort_key(query: SearchQuery) -> tuple[str | None, bool]:
    """(number field or None for relevance, descending?)"""
    sort = query.sort
    if sort is None:
        return (None, True) if query.text and query.text.strip() else ("updated", True)
    if sort.startswith("-"):
        return sort[1:], True
    return sort, False
