"""The embedded backend (the default, no server): tantivy indexes under ``var/search``.

Chinese text is pre-tokenised (``tokens.analyze``) into three whitespace-separated
fields — single characters, overlapping pairs (with positions, for phrases) and
Latin/digit words — so tantivy's plain ``whitespace`` tokenizer indexes exactly our
terms. Keyword fields use the ``raw`` tokenizer; numbers are i64 fast fields.

Processes: tantivy allows one ``IndexWriter`` per index directory (a lock file).
Every write here takes the writer for one batch only, commits and lets go, retrying
for ``lock_wait`` seconds while another process (another ``laowu serve`` draining the
outbox, ``laowu worker``, ``laowu index rebuild``) holds it; a write that still cannot
get it raises, and the outbox retries the event later. Readers reload before each
search, so a commit from any process is visible at once. See docs/search.md.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import tantivy
from tantivy import FieldType, Occur, Order, Query

from matching.search.base import (
    IndexSpec,
    SearchDoc,
    SearchError,
    SearchHits,
    SearchQuery,
    sort_key,
)
from matching.search.tokens import Term, analyze, query_terms

SCHEMA_VERSION = "v1"
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
WRITE_HEAP = 32_000_000
REBUILD_HEAP = 256_000_000


def _schema(spec: IndexSpec) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", stored=False, indexed=True, fast=True)
    builder.add_text_field("uni", tokenizer_name="whitespace", index_option="freq")
    builder.add_text_field("bi", tokenizer_name="whitespace", index_option="position")
    builder.add_text_field("word", tokenizer_name="whitespace", index_option="freq")
    for name in spec.keywords:
        builder.add_text_field(f"k_{name}", tokenizer_name="raw", index_option="basic")
    for name in spec.numbers:
        builder.add_integer_field(f"n_{name}", indexed=True, fast=True)
    return builder.build()


def to_document(doc: SearchDoc) -> tantivy.Document:
    terms = analyze(doc.text)
    fields: dict[str, Any] = {
        "id": doc.id,
        "uni": " ".join(terms.unigrams),
        "bi": " ".join(terms.bigrams),
        "word": " ".join(terms.words),
    }
    for name, values in doc.keywords.items():
        fields[f"k_{name}"] = [str(v) for v in values]
    for name, value in doc.numbers.items():
        fields[f"n_{name}"] = int(value)
    return tantivy.Document(**fields)


class _Index:
    def __init__(self, spec: IndexSpec, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.spec = spec
        self.path = path
        self.schema = _schema(spec)
        self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        # Writers of this process queue here; other processes are kept out by the lock file.
        self.write_lock = threading.Lock()

    def writer(self, heap: int, lock_wait: float, threads: int = 1) -> tantivy.IndexWriter:
        deadline = time.monotonic() + lock_wait
        while True:
            try:
                return self.index.writer(heap_size=heap, num_threads=threads)
            except ValueError as exc:
                if "LockBusy" not in str(exc) or time.monotonic() > deadline:
                    raise SearchError(f"search index {self.spec.name} is busy: {exc}") from exc
                time.sleep(0.05)


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, root: Path, *, lock_wait: float = 10.0) -> None:
        self.root = Path(root) / SCHEMA_VERSION
        self.lock_wait = lock_wait
        self._indexes: dict[str, _Index] = {}
        self._open_lock = threading.Lock()

    def _get(self, spec: IndexSpec) -> _Index:
        with self._open_lock:
            found = self._indexes.get(spec.name)
            if found is None:
                found = self._indexes[spec.name] = _Index(spec, self.root / spec.name)
            return found

    # --- writes ------------------------------------------------------------------

    def _write(self, spec: IndexSpec, docs: Sequence[SearchDoc], delete: Sequence[int]) -> None:
        idx = self._get(spec)
        with idx.write_lock:
            writer = idx.writer(WRITE_HEAP, self.lock_wait)
            try:
                for doc_id in [*delete, *(d.id for d in docs)]:
                    writer.delete_documents_by_term("id", int(doc_id))
                for doc in docs:
                    writer.add_document(to_document(doc))
                writer.commit()
            except BaseException:
                writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()  # lets go of the lock

    async def upsert(self, spec: IndexSpec, docs: Sequence[SearchDoc]) -> None:
        if docs:
            await asyncio.to_thread(self._write, spec, docs, ())

    async def delete(self, spec: IndexSpec, ids: Sequence[int]) -> None:
        if ids:
            await asyncio.to_thread(self._write, spec, (), ids)

    def _clear(self, spec: IndexSpec) -> None:
        idx = self._get(spec)
        with idx.write_lock:
            writer = idx.writer(WRITE_HEAP, self.lock_wait)
            try:
                writer.delete_all_documents()
                writer.commit()
            finally:
                writer.wait_merging_threads()

    async def clear(self, spec: IndexSpec) -> None:
        await asyncio.to_thread(self._clear, spec)

    async def rebuild(self, spec: IndexSpec, batches: AsyncIterator[Sequence[SearchDoc]]) -> int:
        """One writer for the whole run: delete everything, add every batch, commit
        once, so searches see the old index until the new one is complete. tantivy
        spills to disk past its heap, so memory stays bounded."""
        idx = self._get(spec)
        await asyncio.to_thread(idx.write_lock.acquire)
        count = 0
        try:
            writer = await asyncio.to_thread(idx.writer, REBUILD_HEAP, self.lock_wait * 6, 2)
            try:
                writer.delete_all_documents()
                adding: asyncio.Future[None] | None = None
                async for batch in batches:  # the next batch is read while this one is added
                    if adding is not None:
                        await adding
                    adding = asyncio.ensure_future(asyncio.to_thread(_add_all, writer, batch))
                    count += len(batch)
                if adding is not None:
                    await adding
                await asyncio.to_thread(writer.commit)
            except BaseException:
                writer.rollback()
                raise
            finally:
                await asyncio.to_thread(writer.wait_merging_threads)
        finally:
            idx.write_lock.release()
        return count

    # --- reads -------------------------------------------------------------------

    def _query(self, idx: _Index, query: SearchQuery) -> Query | None:
        """The tantivy query, or None when nothing can match."""
        schema = idx.schema
        must: list[tuple[Occur, Query]] = []
        if query.text is not None and query.text.strip():
            terms = query_terms(query.text)
            if not terms:
                return None
            must.extend((Occur.Must, _term_query(schema, term)) for term in terms)
        for clause in query.clauses:
            pairs = [(f, str(v)) for f, values in clause.items() for v in values]
            if not pairs:
                return None
            should = [(Occur.Should, Query.term_query(schema, f"k_{f}", v)) for f, v in pairs]
            must.append((Occur.Must, Query.boolean_query(should)))
        for name, (low, high) in query.ranges.items():
            must.append(
                (
                    Occur.Must,
                    Query.range_query(
                        schema,
                        f"n_{name}",
                        FieldType.Integer,
                        I64_MIN if low is None else low,
                        I64_MAX if high is None else high,
                    ),
                )
            )
        if not must:
            return Query.all_query()
        return Query.boolean_query(must)

    def _search(self, spec: IndexSpec, query: SearchQuery) -> SearchHits:
        idx = self._get(spec)
        tq = self._query(idx, query)
        if tq is None or query.limit <= 0:
            return SearchHits(ids=[], total=0)
        idx.index.reload()
        searcher = idx.index.searcher()
        field, descending = sort_key(query)
        kwargs: dict[str, Any] = {"count": True, "offset": query.offset}
        if field is not None:
            if field not in spec.numbers:
                raise SearchError(f"cannot sort {spec.name} by {field}")
            kwargs["order_by_field"] = f"n_{field}"
            kwargs["order"] = Order.Desc if descending else Order.Asc
        result = searcher.search(tq, query.limit, **kwargs)
        addresses = [address for _, address in result.hits]
        ids = searcher.fast_field_values("id", addresses) if addresses else []
        total = getattr(result, "count", None) or 0
        return SearchHits(ids=[int(i) for i in ids if i is not None], total=int(total))

    async def search(self, spec: IndexSpec, query: SearchQuery) -> SearchHits:
        return await asyncio.to_thread(self._search, spec, query)

    def _count(self, spec: IndexSpec) -> int:
        idx = self._get(spec)
        idx.index.reload()
        return int(idx.index.searcher().num_docs)

    async def count(self, spec: IndexSpec) -> int:
        return await asyncio.to_thread(self._count, spec)

    async def close(self) -> None:
        self._indexes.clear()


def _add_all(writer: tantivy.IndexWriter, batch: Sequence[SearchDoc]) -> None:
    for doc in batch:
        writer.add_document(to_document(doc))


def _term_query(schema: tantivy.Schema, term: Term) -> Query:
    if term.kind == "char":
        return Query.term_query(schema, "uni", term.values[0])
    if term.kind == "word":
        return Query.term_query(schema, "word", term.values[0])
    if len(term.values) == 1:
        return Query.term_query(schema, "bi", term.values[0])
    return Query.phrase_query(schema, "bi", list(term.values))
