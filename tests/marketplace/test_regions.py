"""The Chongqing region tree, the staffing rule and the coverage roll-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import SYSTEM, Actor
from marketplace.accounts.service import actor_for
from marketplace.audit.models import AuditEntry
from marketplace.brokers.models import Broker, BrokerStatus
from marketplace.db import unit_of_work
from marketplace.errors import Forbidden, Invalid
from marketplace.events import OutboxEvent
from marketplace.regions import service as regions
from marketplace.regions.models import Coverage, Region
from marketplace.regions.rules import prefix_bounds, required_brokers
from tests.conftest import WUXI, YUZHONG

Sessions = async_sessionmaker[AsyncSession]

TOWNSHIP = "500103001"  # 解放碑街道, 8 communities
V1 = "500103001003"
V2 = "500103001006"
V3 = "500103001011"
CITY_VILLAGES = 11_270
HEADER = "code,name,level,parent_code,kind\n"


async def _counts(sessions: Sessions) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(
            select(col(Region.level), func.count()).group_by(col(Region.level))
        )
        return {level: n for level, n in rows.all()}


async def _load_bundled(sessions: Sessions) -> int:
    async with unit_of_work(sessions) as session:
        return await regions.load(session=session, rows=regions.read_csv(regions.bundled_csv()))


# --- loading --------------------------------------------------------------------------


async def test_load_holds_the_whole_tree_and_is_idempotent(sessions: Sessions) -> None:
    # The fixture database was loaded once already; load again and again.
    expected = {"city": 1, "district": 38, "township": 1031, "village": CITY_VILLAGES}
    assert await _counts(sessions) == expected
    async with unit_of_work(sessions) as session:
        await session.execute(update(Region).where(col(Region.code) == V1).values(population=7000))
        await session.execute(update(Region).where(col(Region.code) == V2).values(name="旧名"))

    assert await _load_bundled(sessions) == 12_340
    assert await _load_bundled(sessions) == 12_340

    assert await _counts(sessions) == expected
    async with sessions() as session:
        v1 = await session.get(Region, V1)
        v2 = await session.get(Region, V2)
        city = await session.get(Region, "50")
    assert v1 is not None
    assert v1.population == 7000
    assert v2 is not None
    assert v2.name == "临华路社区居民委员会"
    assert city is not None
    assert (city.name, city.parent_code) == ("重庆市", None)
    assert v1.parent_code == TOWNSHIP
    assert v1.kind == "community"


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "regions.csv"
    path.write_text(HEADER + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


GOOD_NEW = f"{TOWNSHIP}999,新社区,village,{TOWNSHIP},community"


@pytest.mark.parametrize(
    ("bad_row", "field", "words"),
    [
        (f"{TOWNSHIP}998,坏层级,hamlet,{TOWNSHIP},", "level", "未知的层级"),
        ("50010300199,短代码,village,500103001,", "code", "区划代码"),
        ("5001030019x7,字母,village,500103001,", "code", "区划代码"),
        ("500103001997,错上级,village,500238001,", "parent_code", "上级代码"),
        ("500103001996,越级上级,village,500103,", "parent_code", "上级代码"),
        ("51,另一个市,city,50,", "parent_code", "不应有上级"),
        ("500103001995,,village,500103001,", "name", "名称"),
        ("500103001993," + "长" * 65 + ",village,500103001,", "name", "64"),
        (GOOD_NEW, "code", "重复"),
    ],
    ids=[
        "level",
        "code-length",
        "code-digits",
        "parent",
        "parent-level",
        "city-parent",
        "name",
        "long-name",
        "dup",
    ],
)
def test_bad_row_is_refused_naming_row_and_field(
    tmp_path: Path, bad_row: str, field: str, words: str
) -> None:
    path = _csv(tmp_path, GOOD_NEW, bad_row)
    with pytest.raises(Invalid) as caught:
        list(regions.read_csv(path))
    assert caught.value.field == field
    assert "第 3 行" in caught.value.message
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("bad_row", "words"),
    [
        ("500103777001,孤儿,village,500103777,", "上级代码 500103777 不存在"),
        ("500103001994,,village,500103001,", "名称"),
    ],
    ids=["orphan", "bad-after-good"],
)
async def test_refused_file_stores_nothing(
    sessions: Sessions, tmp_path: Path, bad_row: str, words: str
) -> None:
    path = _csv(tmp_path, GOOD_NEW, bad_row)

    async def attempt() -> None:
        async with unit_of_work(sessions) as session:
            await regions.load(session=session, rows=regions.read_csv(path))

    with pytest.raises(Invalid, match=words) as caught:
        await attempt()
    assert "第 3 行" in caught.value.message
    async with sessions() as session:
        assert await session.get(Region, f"{TOWNSHIP}999") is None
    assert (await _counts(sessions))["village"] == CITY_VILLAGES


async def test_a_good_extra_file_adds_rows(sessions: Sessions, tmp_path: Path) -> None:
    path = _csv(tmp_path, GOOD_NEW)
    async with unit_of_work(sessions) as session:
        assert await regions.load(session=session, rows=regions.read_csv(path)) == 1
    async with sessions() as session:
        added = await session.get(Region, f"{TOWNSHIP}999")
    assert added is not None
    assert (added.name, added.level, added.parent_code) == ("新社区", "village", TOWNSHIP)


# --- the staffing rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("population", "brokers"),
    [(0, 1), (4_999, 1), (5_000, 2), (9_999, 2), (10_000, 3), (None, 1), (25_000, 6)],
)
def test_staffing_rule(population: int | None, brokers: int) -> None:
    assert required_brokers(population) == brokers


def test_staffing_rule_refuses_negative_population() -> None:
    with pytest.raises(ValueError, match="negative"):
        required_brokers(-1)


# --- coverage -------------------------------------------------------------------------


def _numbers(node: Coverage) -> tuple[int, int, int, int, int]:
    return (
        node.villages,
        node.villages_covered,
        node.brokers_required,
        node.brokers_active,
        node.shortfall,
    )


async def _staff(sessions: Sessions) -> None:
    """V1: 12,000 residents (needs 3), 1 active broker and 3 inactive ones.
    V2: 4,000 residents (needs 1), 5 active brokers: a surplus that staffs nobody else."""
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(Region).where(col(Region.code) == V1).values(population=12_000)
        )
        await session.execute(update(Region).where(col(Region.code) == V2).values(population=4_000))
        session.add(Broker(name="甲", village_code=V1))
        for status in (BrokerStatus.suspended, BrokerStatus.retired, BrokerStatus.eliminated):
            session.add(Broker(name=f"停用{status}", village_code=V1, status=status))
        for n in range(5):
            session.add(Broker(name=f"乙{n}", village_code=V2))


async def test_coverage_rolls_up_with_shortfall_per_village(sessions: Sessions) -> None:
    await _staff(sessions)
    async with sessions() as session:
        v1 = await regions.coverage(session=session, code=V1)
        v2 = await regions.coverage(session=session, code=V2)
        township = await regions.coverage(session=session, code=TOWNSHIP)
        district = await regions.coverage(session=session, code=YUZHONG)
        city = await regions.coverage(session=session, code="50")
        wuxi = await regions.coverage(session=session, code=WUXI)

    assert _numbers(v1) == (1, 1, 3, 1, 2)  # inactive brokers do not count
    assert v1.children == []
    assert _numbers(v2) == (1, 1, 1, 5, 0)
    # 解放碑街道: 8 communities; 6 unstaffed ones need 1 each.
    assert _numbers(township) == (8, 2, 3 + 1 + 6, 6, 2 + 0 + 6)
    assert [c.code for c in township.children][:2] == [V1, V2]
    assert len(township.children) == 8
    assert _numbers(township.children[0]) == _numbers(v1)
    # 渝中区: 80 villages and communities.
    assert _numbers(district) == (80, 2, 3 + 1 + 78, 6, 2 + 78)
    assert sum(c.villages for c in district.children) == 80
    assert next(c for c in district.children if c.code == TOWNSHIP) == township.model_copy(
        update={"children": []}
    )
    # The city: required - active would say 11,266; the real shortfall is 11,270.
    assert _numbers(city) == (CITY_VILLAGES, 2, CITY_VILLAGES + 2, 6, CITY_VILLAGES)
    assert len(city.children) == 38
    assert sum(c.shortfall for c in city.children) == city.shortfall
    assert _numbers(wuxi)[1] == 0
    assert wuxi.shortfall == wuxi.villages == wuxi.brokers_required


async def test_region_public_carries_required_and_active_brokers(sessions: Sessions) -> None:
    await _staff(sessions)
    async with sessions() as session:
        v1 = await regions.public(session=session, code=V1)
        township = await regions.public(session=session, code=TOWNSHIP)
        children, total = await regions.list_children(
            session=session, parent_code=TOWNSHIP, limit=2, offset=0
        )
    assert (v1.population, v1.required_brokers, v1.active_brokers) == (12_000, 3, 1)
    assert (township.required_brokers, township.active_brokers) == (10, 6)
    assert total == 8
    assert [(c.code, c.required_brokers, c.active_brokers) for c in children] == [
        (V1, 3, 1),
        (V2, 1, 5),
    ]


async def test_broker_account_counts_for_its_village(sessions: Sessions, make_account) -> None:
    await make_account("broker", V3)
    async with sessions() as session:
        village = await regions.coverage(session=session, code=V3)
        township = await regions.coverage(session=session, code=TOWNSHIP)
    assert _numbers(village) == (1, 1, 1, 1, 0)
    assert township.villages_covered == 1


async def test_coverage_api_shape(client, make_account, login) -> None:
    admin = await make_account("district_admin", YUZHONG)
    response = await client.get(f"/api/v1/regions/{TOWNSHIP}/coverage", headers=await login(admin))
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in ("code", "villages", "villages_covered", "shortfall")} == {
        "code": TOWNSHIP,
        "villages": 8,
        "villages_covered": 0,
        "shortfall": 8,
    }
    assert {"brokers_required", "brokers_active", "children"} <= body.keys()
    assert body["children"][0]["code"] == V1


# --- populations ----------------------------------------------------------------------


async def test_set_population_on_a_village_is_audited_and_emits(
    sessions: Sessions,
    make_account,
) -> None:
    admin = await make_account("district_admin", YUZHONG)
    actor = actor_for(admin.user, ip="198.51.100.7")
    async with unit_of_work(sessions) as session:
        result = await regions.set_population(
            session=session, actor=actor, code=V1, population=10_000
        )
    assert (result.population, result.required_brokers) == (10_000, 3)
    async with sessions() as session:
        region = await session.get(Region, V1)
        entry = (
            await session.execute(
                select(AuditEntry).where(col(AuditEntry.action) == "region.set_population")
            )
        ).scalar_one()
        event = (
            await session.execute(
                select(OutboxEvent).where(col(OutboxEvent.name) == "region.population_changed")
            )
        ).scalar_one()
    assert region is not None
    assert region.population == 10_000
    assert region.population_updated_at is not None
    assert (entry.actor_user_id, entry.object_id, entry.region_code) == (admin.id, V1, V1)
    assert (entry.ip, entry.outcome, entry.detail) == (
        "198.51.100.7",
        "ok",
        {"before": None, "after": 10_000},
    )
    assert event.payload == {"code": V1, "population": 10_000}

    # Clearing it back to unknown is allowed, and counts as one broker needed.
    async with unit_of_work(sessions) as session:
        cleared = await regions.set_population(
            session=session, actor=actor, code=V1, population=None
        )
    assert (cleared.population, cleared.required_brokers) == (None, 1)


REFUSALS = [
    # role, scope, code, population, error, field
    ("district_admin", YUZHONG, TOWNSHIP, 100, Invalid, "population"),
    ("district_admin", YUZHONG, YUZHONG, 100, Invalid, "population"),
    ("city_admin", "50", "50", 100, Invalid, "population"),
    ("district_admin", YUZHONG, V1, -1, Invalid, "population"),
    ("district_admin", WUXI, V1, 100, Forbidden, "region_code"),
    ("village_officer", V1, V1, 100, Forbidden, None),
    ("broker", V1, V1, 100, Forbidden, None),
    ("auditor", "50", V1, 100, Forbidden, None),
]


async def test_set_population_refusals_change_nothing(sessions: Sessions) -> None:
    for n, (role, scope, code, population, error, field) in enumerate(REFUSALS):
        actor = Actor(user_id=1000 + n, username=f"u{n}", role=role, region_code=scope)

        async def attempt(
            actor: Actor = actor, code: str = code, population: int = population
        ) -> None:
            async with unit_of_work(sessions) as session:
                await regions.set_population(
                    session=session, actor=actor, code=code, population=population
                )

        with pytest.raises(error) as caught:
            await attempt()
        assert getattr(caught.value, "field", None) == field, (role, code)
    async with sessions() as session:
        populated = (
            await session.execute(
                select(func.count()).select_from(Region).where(col(Region.population).is_not(None))
            )
        ).scalar_one()
        changes = (
            await session.execute(
                select(func.count())
                .select_from(AuditEntry)
                .where(col(AuditEntry.action) == "region.set_population")
            )
        ).scalar_one()
        events = (await session.execute(select(func.count()).select_from(OutboxEvent))).scalar_one()
    assert (populated, changes, events) == (0, 0, 0)


async def test_system_may_set_any_village(sessions: Sessions) -> None:
    async with unit_of_work(sessions) as session:
        result = await regions.set_population(session=session, actor=SYSTEM, code=V2, population=0)
    assert (result.population, result.required_brokers) == (0, 1)


def test_prefix_bounds_are_the_codes_starting_with_the_prefix() -> None:
    low, high = prefix_bounds("500103") or ("", None)
    codes = ["500102999999", "500103", "500103001001", "500103999999", "500104", "500104001001"]
    assert [c for c in codes if low <= c < (high or "~")] == [
        c for c in codes if c.startswith("500103")
    ]
    assert prefix_bounds("50019") == ("50019", "50020")
    assert prefix_bounds("99") == ("99", None)
    assert prefix_bounds("5001%") is None  # not a code: matched with LIKE, escaped


async def test_names_are_kept_a_while_and_a_reload_shows_at_once(
    sessions: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sessions() as session:
        first = await regions.names(session=session, codes=[V1, V2, f"{TOWNSHIP}998"])
    assert first == {V1: "华一坡社区居民委员会", V2: "临华路社区居民委员会"}
    # Renamed by another process (a load from the CLI): this one shows what it read…
    async with unit_of_work(sessions) as session:
        await session.execute(update(Region).where(col(Region.code) == V2).values(name="旧名"))
    async with sessions() as session:
        assert (await regions.names(session=session, codes=[V2]))[V2] == "临华路社区居民委员会"
    # …until NAMES_SECONDS have passed.
    clock = regions.time.monotonic
    monkeypatch.setattr(regions.time, "monotonic", lambda: clock() + regions.NAMES_SECONDS + 1)
    async with sessions() as session:
        assert (await regions.names(session=session, codes=[V2]))[V2] == "旧名"
    # A load in this process shows its names at once.
    async with unit_of_work(sessions) as session:
        await regions.load(session=session, rows=regions.read_csv(regions.bundled_csv()))
    async with sessions() as session:
        assert (await regions.names(session=session, codes=[V2]))[V2] == "临华路社区居民委员会"
