"""The Meilisearch backend (``LAOWU_SEARCH_URL``), through the official client.

Meilisearch segments Chinese into words (jieba) and matches words and word prefixes
only, so 焊工 would not find 电焊工 (meilisearch issues 2499, 4874). We give it the
same terms the embedded backend indexes, spelled as plain lower-case letters so its
tokenizer keeps each one whole: a character → ``u`` + 6 hex digits written with the
letters a–p, a pair → ``p`` + two of those, a word → ``w`` + its UTF-8 bytes + ``z``.
Every term of one kind has a fixed length or an end mark, so no term is a prefix of
another, typo tolerance is off, and a run of pairs is searched as a phrase: both
backends find the same documents. Settings are declared here and applied on first
use; every write waits for its task. The client is synchronous, so every call runs
in a thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import meilisearch
from meilisearch.errors import MeilisearchError

from matching.search.base import (
    IndexSpec,
    SearchDoc,
    SearchError,
    SearchHits,
    SearchQuery,
    sort_key,
)
from matching.search.tokens import Term, analyze, query_terms

_HEX_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
TASK_TIMEOUT_MS = 120_000
MAX_TOTAL_HITS = 1_000_000


def _char(ch: str) -> str:
    return f"{ord(ch):06x}".translate(_HEX_LETTERS)


def uni_term(ch: str) -> str:
    return "u" + _char(ch)


def pair_term(pair: str) -> str:
    return "p" + _char(pair[0]) + _char(pair[1])


def word_term(word: str) -> str:
    return "w" + word.encode().hex().translate(_HEX_LETTERS) + "z"


def to_document(doc: SearchDoc) -> dict[str, Any]:
    terms = analyze(doc.text)
    out: dict[str, Any] = {
        "id": doc.id,
        "t_bi": " ".join(pair_term(p) for p in terms.bigrams),
        "t_uni": " ".join(uni_term(c) for c in terms.unigrams),
        "t_word": " ".join(word_term(w) for w in terms.words),
    }
    for name, values in doc.keywords.items():
        out[f"k_{name}"] = [str(v) for v in values]
    for name, value in doc.numbers.items():
        out[f"n_{name}"] = int(value)
    return out


def encode_query(terms: list[Term]) -> str:
    parts: list[str] = []
    for term in terms:
        if term.kind == "char":
            parts.append(uni_term(term.values[0]))
        elif term.kind == "word":
            parts.append(word_term(term.values[0]))
        else:
            parts.append('"' + " ".join(pair_term(p) for p in term.values) + '"')
    return " ".join(parts)


def _quote(value: str) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def index_settings(spec: IndexSpec) -> dict[str, Any]:
    return {
        "searchableAttributes": ["t_bi", "t_uni", "t_word"],
        "filterableAttributes": [
            *(f"k_{k}" for k in spec.keywords),
            *(f"n_{n}" for n in spec.numbers),
        ],
        "sortableAttributes": [f"n_{n}" for n in spec.numbers],
        "displayedAttributes": ["id"],
        "typoTolerance": {"enabled": False},
        "stopWords": [],
        "pagination": {"maxTotalHits": MAX_TOTAL_HITS},
    }


class MeilisearchBackend:
    name = "meilisearch"

    def __init__(self, url: str, api_key: str | None = None, *, prefix: str = "laowu_") -> None:
        self.client = meilisearch.Client(url, api_key, timeout=30)
        self.prefix = prefix
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    def uid(self, spec: IndexSpec) -> str:
        return f"{self.prefix}{spec.name}"

    def _wait(self, task: Any) -> None:
        done = self.client.wait_for_task(task.task_uid, timeout_in_ms=TASK_TIMEOUT_MS)
        if done.status != "succeeded":
            raise SearchError(f"Meilisearch task {done.uid} {done.status}: {done.error}")

    def _prepare(self, uid: str, spec: IndexSpec) -> None:
        """Create the index if needed and apply the declared settings (once per process)."""
        with self._lock:
            if uid in self._ready:
                return
            try:
                self.client.get_index(uid)
            except MeilisearchError:
                self._wait(self.client.create_index(uid, {"primaryKey": "id"}))
            self._wait(self.client.index(uid).update_settings(index_settings(spec)))
            self._ready.add(uid)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except MeilisearchError as exc:
            raise SearchError(f"Meilisearch: {exc}") from exc

    # --- writes ------------------------------------------------------------------

    def _upsert(self, spec: IndexSpec, docs: Sequence[SearchDoc]) -> None:
        uid = self.uid(spec)
        self._prepare(uid, spec)
        task = self.client.index(uid).add_documents([to_document(d) for d in docs], "id")
        self._wait(task)

    async def upsert(self, spec: IndexSpec, docs: Sequence[SearchDoc]) -> None:
        if docs:
            await asyncio.to_thread(self._call, self._upsert, spec, docs)

    def _delete(self, spec: IndexSpec, ids: Sequence[int]) -> None:
        uid = self.uid(spec)
        self._prepare(uid, spec)
        self._wait(self.client.index(uid).delete_documents([int(i) for i in ids]))

    async def delete(self, spec: IndexSpec, ids: Sequence[int]) -> None:
        if ids:
            await asyncio.to_thread(self._call, self._delete, spec, ids)

    def _clear(self, spec: IndexSpec) -> None:
        uid = self.uid(spec)
        self._prepare(uid, spec)
        self._wait(self.client.index(uid).delete_all_documents())

    async def clear(self, spec: IndexSpec) -> None:
        await asyncio.to_thread(self._call, self._clear, spec)

    async def rebuild(self, spec: IndexSpec, batches: AsyncIterator[Sequence[SearchDoc]]) -> int:
        """Fill a fresh index beside the live one, then swap them: searches see the
        old documents until the new index is complete."""
        live, fresh = self.uid(spec), self.uid(spec) + "_rebuild"
        await asyncio.to_thread(self._call, self._prepare, live, spec)
        await asyncio.to_thread(self._call, self._drop, fresh)
        await asyncio.to_thread(self._call, self._prepare, fresh, spec)
        count = 0
        async for batch in batches:
            await asyncio.to_thread(self._call, self._add, fresh, batch)
            count += len(batch)
        await asyncio.to_thread(
            self._call,
            lambda: self._wait(self.client.swap_indexes([{"indexes": [live, fresh]}])),
        )
        await asyncio.to_thread(self._call, self._drop, fresh)
        return count

    def _add(self, uid: str, batch: Sequence[SearchDoc]) -> None:
        self._wait(self.client.index(uid).add_documents([to_document(d) for d in batch], "id"))

    def _drop(self, uid: str) -> None:
        with self._lock:
            self._ready.discard(uid)
        try:
            self.client.get_index(uid)
        except MeilisearchError:
            return
        self._wait(self.client.delete_index(uid))

    # --- reads -------------------------------------------------------------------

    def _filter(self, query: SearchQuery) -> list[str] | None:
        parts: list[str] = []
        for clause in query.clauses:
            ors = [
                f"k_{f} IN [{', '.join(_quote(v) for v in values)}]"
                for f, values in clause.items()
                if values
            ]
            if not ors:
                return None
            parts.append("(" + " OR ".join(ors) + ")")
        for name, (low, high) in query.ranges.items():
            if low is not None:
                parts.append(f"n_{name} >= {int(low)}")
            if high is not None:
                parts.append(f"n_{name} <= {int(high)}")
        return parts

    def _search(self, spec: IndexSpec, query: SearchQuery) -> SearchHits:
        q = ""
        if query.text is not None and query.text.strip():
            terms = query_terms(query.text)
            if not terms:
                return SearchHits(ids=[], total=0)
            q = encode_query(terms)
        filters = self._filter(query)
        if filters is None or query.limit <= 0:
            return SearchHits(ids=[], total=0)
        uid = self.uid(spec)
        self._prepare(uid, spec)
        params: dict[str, Any] = {
            "limit": query.limit,
            "offset": query.offset,
            "matchingStrategy": "all",
            "attributesToRetrieve": ["id"],
        }
        if filters:
            params["filter"] = " AND ".join(filters)
        field, descending = sort_key(query)
        if field is not None:
            if field not in spec.numbers:
                raise SearchError(f"cannot sort {spec.name} by {field}")
            params["sort"] = [f"n_{field}:{'desc' if descending else 'asc'}"]
        found = self.client.index(uid).search(q, params)
        return SearchHits(
            ids=[int(hit["id"]) for hit in found["hits"]],
            total=int(found.get("estimatedTotalHits", found.get("totalHits", 0))),
        )

    async def search(self, spec: IndexSpec, query: SearchQuery) -> SearchHits:
        return await asyncio.to_thread(self._call, self._search, spec, query)

    def _count(self, spec: IndexSpec) -> int:
        uid = self.uid(spec)
        self._prepare(uid, spec)
        return int(self.client.index(uid).get_stats().number_of_documents)

    async def count(self, spec: IndexSpec) -> int:
        return await asyncio.to_thread(self._call, self._count, spec)

    async def close(self) -> None:
        return None
