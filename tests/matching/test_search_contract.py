"""One contract for every search backend: the embedded one always, Meilisearch when
``LAOWU_TEST_MEILI_URL`` points at a server (each test in its own indexes)."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from matching.search import SearchBackend, SearchDoc, SearchError, SearchQuery
from matching.search.base import IndexSpec
from matching.search.embedded import EmbeddedBackend
from matching.search.tokens import matches, query_terms

MEILI_ENV = "LAOWU_TEST_MEILI_URL"
SPEC = IndexSpec(name="contract", keywords=("region", "status"), numbers=("rank", "updated"))

TEXTS = {
    1: "电焊工 渝中区 解放碑街道",
    2: "钢筋工 扎钢筋 万州区 高笋塘街道",
    3: "普工 包吃住 巫溪县",
    4: "焊工 二保焊 沙坪坝区",
    5: "保洁员 C1驾照 万州区",
    6: "厨师 厨房帮工 渝中区",
}


def doc(i: int, text: str, region: str = "500103", status: str = "seeking") -> SearchDoc:
    return SearchDoc(
        id=i,
        text=text,
        keywords={"region": ["50", region], "status": [status]},
        numbers={"rank": i * 10, "updated": 1000 + i},
    )


@pytest.fixture(params=["embedded", "meilisearch"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchBackend]:
    if request.param == "embedded":
        engine: SearchBackend = EmbeddedBackend(tmp_path / "search")
    else:
        url = os.environ.get(MEILI_ENV)
        if not url:
            pytest.skip(f"Meilisearch contract runs need {MEILI_ENV} (e.g. http://127.0.0.1:7700)")
        from matching.search.meili import MeilisearchBackend

        engine = MeilisearchBackend(
            url, os.environ.get("LAOWU_TEST_MEILI_KEY"), prefix=f"t{uuid.uuid4().hex[:8]}_"
        )
    yield engine
    await engine.clear(SPEC)
    await engine.close()


async def ids(backend: SearchBackend, text: str | None = None, **kw: object) -> list[int]:
    hits = await backend.search(SPEC, SearchQuery(text=text, limit=50, **kw))  # type: ignore[arg-type]
    return sorted(hits.ids)


async def batches(items: Sequence[SearchDoc], size: int) -> AsyncIterator[Sequence[SearchDoc]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TestBackendContract:
    async def test_chinese_terms_of_any_length_and_inside_longer_words(
        self, backend: SearchBackend
    ) -> None:
        await backend.upsert(SPEC, [doc(i, t) for i, t in TEXTS.items()])
        assert await ids(backend, "普工") == [3]
        assert await ids(backend, "焊工") == [1, 4]  # 电焊工 too
        assert await ids(backend, "钢筋工") == [2]
        assert await ids(backend, "万州") == [2, 5]
        assert await ids(backend, "沙坪坝") == [4]
        assert await ids(backend, "厨") == [6]
        assert await ids(backend, "工") == [1, 2, 3, 4, 6]
        # Characters that occur, but not next to each other, are not the phrase.
        assert await ids(backend, "焊钢") == []
        assert await ids(backend, "电焊 渝中") == [1]  # every term must match
        assert await ids(backend, "c1") == [5]
        assert await ids(backend, "Ｃ１驾照") == [5]  # full-width folds to half-width

    async def test_any_query_text_is_safe(self, backend: SearchBackend) -> None:
        await backend.upsert(SPEC, [doc(i, t) for i, t in TEXTS.items()])
        for text in [
            '" OR 1=1 --',
            "*",
            "NEAR(焊 工)",
            "焊工 AND",
            "a:b",
            "🙂🙂",
            "\x00",
            "焊" * 500,
        ]:
            await backend.search(SPEC, SearchQuery(text=text))
        assert await ids(backend, "🙂") == []  # nothing searchable: nothing found
        assert await ids(backend, "焊工!!") == [1, 4]
        assert await ids(backend, "") == [1, 2, 3, 4, 5, 6]  # no text: no text condition

    async def test_filters_sorting_and_paging(self, backend: SearchBackend) -> None:
        await backend.upsert(
            SPEC,
            [
                doc(1, TEXTS[1], region="500103", status="seeking"),
                doc(2, TEXTS[2], region="500101", status="employed_away"),
                doc(3, TEXTS[3], region="500238", status="seeking"),
                doc(4, TEXTS[4], region="500106", status="seeking"),
            ],
        )
        assert await ids(backend, clauses=[{"region": ["500101", "500238"]}]) == [2, 3]
        assert await ids(
            backend, clauses=[{"region": ["500103"], "status": ["employed_away"]}]
        ) == [1, 2]
        assert await ids(backend, clauses=[{"region": ["50"]}, {"status": ["seeking"]}]) == [
            1,
            3,
            4,
        ]
        assert await ids(backend, clauses=[{"region": []}]) == []
        assert await ids(backend, ranges={"rank": (20, 30)}) == [2, 3]
        assert await ids(backend, ranges={"rank": (None, 10)}) == [1]
        assert await ids(backend, "工", ranges={"rank": (15, None)}) == [2, 3, 4]
        page = await backend.search(SPEC, SearchQuery(sort="-rank", limit=2, offset=1))
        assert page.ids == [3, 2]
        assert page.total == 4
        ascending = await backend.search(SPEC, SearchQuery(sort="rank", limit=10))
        assert ascending.ids == [1, 2, 3, 4]
        newest = await backend.search(SPEC, SearchQuery(limit=1))
        assert newest.ids == [4]  # no text: newest first

    async def test_upsert_replaces_delete_removes_clear_empties(
        self, backend: SearchBackend
    ) -> None:
        await backend.upsert(SPEC, [doc(i, t) for i, t in TEXTS.items()])
        assert await backend.count(SPEC) == 6
        await backend.upsert(SPEC, [doc(1, "木工 巫山县")])
        assert await ids(backend, "焊工") == [4]
        assert await ids(backend, "木工") == [1]
        await backend.delete(SPEC, [4, 999])
        assert await ids(backend, "焊") == []
        assert await backend.count(SPEC) == 5
        await backend.clear(SPEC)
        assert await backend.count(SPEC) == 0

    async def test_rebuild_replaces_everything(self, backend: SearchBackend) -> None:
        await backend.upsert(SPEC, [doc(i, t) for i, t in TEXTS.items()])
        fresh = [doc(100 + i, f"砌筑工 {i} 号") for i in range(25)]
        assert await backend.rebuild(SPEC, batches(fresh, 10)) == 25
        assert await backend.count(SPEC) == 25
        assert await ids(backend, "焊工") == []
        assert len(await ids(backend, "砌筑工")) == 25

    async def test_finds_exactly_what_a_full_scan_finds(self, backend: SearchBackend) -> None:
        rng = random.Random(5)
        words = [
            "电焊工",
            "焊工",
            "钢筋工",
            "普工",
            "万州区",
            "沙坪坝区",
            "保洁",
            "叉车司机",
            "木工",
            "厨师",
        ]
        texts = {i: " ".join(rng.sample(words, 3)) + f" 第{i}号" for i in range(1, 121)}
        await backend.upsert(SPEC, [doc(i, t) for i, t in texts.items()])
        chars = "".join(words)
        for _ in range(40):
            start = rng.randrange(len(chars) - 3)
            query = chars[start : start + rng.choice([1, 2, 3])]
            if not query_terms(query):
                continue
            expected = sorted(i for i, t in texts.items() if matches(query, t))
            got = await backend.search(SPEC, SearchQuery(text=query, limit=200))
            assert sorted(got.ids) == expected, query
            assert got.total == len(expected)


async def test_embedded_writers_take_turns_and_readers_see_every_commit(tmp_path: Path) -> None:
    """Two backends on one folder stand for two processes (serve and worker)."""
    import asyncio

    from matching.search.embedded import WRITE_HEAP

    first = EmbeddedBackend(tmp_path / "search", lock_wait=10)
    second = EmbeddedBackend(tmp_path / "search", lock_wait=10)
    await first.upsert(SPEC, [doc(1, TEXTS[1])])
    assert await ids(second, "焊工") == [1]  # a commit elsewhere is visible at once

    held = second._get(SPEC).index.writer(heap_size=WRITE_HEAP, num_threads=1)
    writing = asyncio.ensure_future(first.upsert(SPEC, [doc(2, TEXTS[2])]))
    await asyncio.sleep(0.3)
    assert not writing.done()  # waits for the other writer instead of failing
    held.rollback()
    held.wait_merging_threads()  # the other process lets go
    await asyncio.wait_for(writing, timeout=10)
    assert await ids(second, "钢筋") == [2]

    impatient = EmbeddedBackend(tmp_path / "search", lock_wait=0.2)
    held = second._get(SPEC).index.writer(heap_size=WRITE_HEAP, num_threads=1)
    try:
        with pytest.raises(SearchError, match="busy"):
            await impatient.delete(SPEC, [1])  # the outbox retries it later
    finally:
        held.rollback()
        held.wait_merging_threads()
