"""What can be done with regions: load the tree, read it, set populations, coverage."""

from __future__ import annotations

import csv
import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy import ColumnElement, case, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, require
from marketplace.brokers.models import Broker, BrokerStatus
from marketplace.clock import utcnow
from marketplace.db import fetch_page
from marketplace.errors import Invalid, NotFound
from marketplace.events import emit
from marketplace.regions.models import (
    CODE_LENGTH,
    Coverage,
    Region,
    RegionLevel,
    RegionPublic,
)
from marketplace.regions.rules import (
    RESIDENTS_PER_EXTRA_BROKER,
    Tally,
    prefix_bounds,
    required_brokers,
)

LEVEL_ORDER = [RegionLevel.city, RegionLevel.district, RegionLevel.township, RegionLevel.village]
CHILD_LEVEL = dict(itertools.pairwise(LEVEL_ORDER))


def bundled_csv() -> Path:
    return Path(str(resources.files("marketplace.regions") / "data" / "chongqing_regions_2023.csv"))


@dataclass(frozen=True)
class RegionRow:
    code: str
    name: str
    level: str
    parent_code: str | None
    kind: str | None
    line: int = 0  # where it came from, for messages; not stored

    def values(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "name": self.name,
            "level": self.level,
            "parent_code": self.parent_code,
            "kind": self.kind,
        }


def read_csv(path: Path) -> Iterator[RegionRow]:
    """Parse and check the region file; a bad row stops the load before any write."""
    seen: set[str] = set()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, raw in enumerate(csv.DictReader(handle), start=2):
            row = _parse_row(number, raw)
            if row.code in seen:
                raise Invalid("code", f"第 {number} 行：区划代码 {row.code} 重复")
            seen.add(row.code)
            yield row


def _parse_row(number: int, raw: dict[str, str | None]) -> RegionRow:
    level = (raw.get("level") or "").strip()
    code = (raw.get("code") or "").strip()
    name = (raw.get("name") or "").strip()
    if level not in CODE_LENGTH:
        raise Invalid("level", f"第 {number} 行：未知的层级 {level!r}")
    if not code.isdigit() or len(code) != CODE_LENGTH[RegionLevel(level)]:
        raise Invalid("code", f"第 {number} 行：区划代码 {code!r} 与层级 {level} 不符")
    if not name or len(name) > 64:
        raise Invalid("name", f"第 {number} 行：名称不能为空，也不能超过 64 个字")
    parent = (raw.get("parent_code") or "").strip() or None
    if level == RegionLevel.city:
        if parent is not None:
            raise Invalid("parent_code", f"第 {number} 行：市级区划不应有上级代码")
    else:
        parent_level = LEVEL_ORDER[LEVEL_ORDER.index(RegionLevel(level)) - 1]
        if (
            parent is None
            or len(parent) != CODE_LENGTH[parent_level]
            or not code.startswith(parent)
        ):
            raise Invalid(
                "parent_code", f"第 {number} 行：上级代码 {parent!r} 不是 {code} 的上一级"
            )
    kind = (raw.get("kind") or "").strip() or None
    if kind is not None and len(kind) > 16:
        raise Invalid("kind", f"第 {number} 行：类别 {kind!r} 过长")
    return RegionRow(code=code, name=name, level=level, parent_code=parent, kind=kind, line=number)


async def _check_parents(session: AsyncSession, rows: list[RegionRow]) -> None:
    """Every parent is in the file or already stored, else nothing is written."""
    codes = {row.code for row in rows}
    wanted = {row.parent_code for row in rows if row.parent_code and row.parent_code not in codes}
    if not wanted:
        return
    stored = set(
        (await session.execute(select(col(Region.code)).where(col(Region.code).in_(wanted))))
        .scalars()
        .all()
    )
    orphans = [row for row in rows if row.parent_code in wanted - stored]
    if orphans:
        first = min(orphans, key=lambda row: row.line)
        raise Invalid("parent_code", f"第 {first.line} 行：上级代码 {first.parent_code} 不存在")


async def load(*, session: AsyncSession, rows: Iterable[RegionRow]) -> int:
    """Insert or refresh the tree; populations entered by districts are kept."""
    ordered = sorted(rows, key=lambda row: (LEVEL_ORDER.index(RegionLevel(row.level)), row.code))
    if not ordered:
        return 0
    _names.clear()  # names may change (other processes see them within NAMES_SECONDS)
    await _check_parents(session, ordered)
    values = [row.values() for row in ordered]
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Region)
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"],
        set_={
            "name": stmt.excluded.name,
            "level": stmt.excluded.level,
            "parent_code": stmt.excluded.parent_code,
            "kind": stmt.excluded.kind,
        },
    )
    for start in range(0, len(values), 2000):
        await session.execute(stmt, values[start : start + 2000])
    if dialect == "postgresql":
        # Fresh statistics, so the first coverage queries get a sensible plan.
        await session.execute(text("ANALYZE region"))
    return len(values)


async def get(*, session: AsyncSession, code: str) -> Region:
    region = await session.get(Region, code)
    if region is None:
        raise NotFound(f"区划 {code} 不存在", field="code")
    return region


# Region names change only when the tree is loaded again (``load``; from the CLI, in
# another process). List pages name the regions of every row on every view, so each
# process keeps the names it has read for NAMES_SECONDS (docs/coverage.md), per
# database, bounded (the whole tree is ~12,000 regions).
NAMES_SECONDS = 60.0
NAMES_ENTRIES = 50_000
_names: dict[tuple[str, str], tuple[float, str]] = {}


def _database(session: AsyncSession) -> str:
    bind = session.bind
    engine = bind.engine if isinstance(bind, AsyncConnection) else bind
    return "" if engine is None else str(engine.url)


async def names(*, session: AsyncSession, codes: Iterable[str]) -> dict[str, str]:
    """The names of those of ``codes`` that exist: what this process read in the last
    NAMES_SECONDS, the rest in one query."""
    database, now = _database(session), time.monotonic()
    found: dict[str, str] = {}
    wanted: list[str] = []
    for code in sorted(set(codes)):
        kept = _names.get((database, code))
        if kept is not None and now - kept[0] < NAMES_SECONDS:
            found[code] = kept[1]
        else:
            wanted.append(code)
    if not wanted:
        return found
    rows = await session.execute(
        select(col(Region.code), col(Region.name)).where(col(Region.code).in_(wanted))
    )
    if len(_names) + len(wanted) > NAMES_ENTRIES:
        _names.clear()
    for code, name in rows.all():
        found[str(code)] = str(name)
        _names[(database, str(code))] = (now, str(name))
    return found


async def tallies(*, session: AsyncSession, prefix: str, group_length: int) -> dict[str, Tally]:
    """Coverage tallies of every region of code length ``group_length`` inside ``prefix``.

    The database aggregates the villages (11,270 for the whole city) so only one row
    per group comes back; the staffing rule is applied per village in SQL, in step
    with ``rules.required_brokers`` (a test holds the two together).
    """
    # Villages joined to their active brokers (not to a grouped subquery, which a
    # planner without statistics may re-aggregate once per village), counted per
    # village, then summed per group.
    required = 1 + func.coalesce(col(Region.population), 0) // RESIDENTS_PER_EXTRA_BROKER
    village = (
        select(
            func.substr(col(Region.code), 1, group_length).label("code"),
            required.label("required"),
            func.count(col(Broker.id)).label("brokers"),
        )
        .select_from(Region)
        .outerjoin(
            Broker,
            (col(Broker.village_code) == col(Region.code))
            & (col(Broker.status) == BrokerStatus.active),
        )
        .where(col(Region.level) == RegionLevel.village, _code_within(prefix))
        .group_by(col(Region.code), col(Region.population))
        .subquery()
    )
    query = select(
        village.c.code,
        func.count(),
        func.sum(case((village.c.brokers > 0, 1), else_=0)),
        func.sum(village.c.required),
        func.sum(village.c.brokers),
        func.sum(
            case(
                (village.c.required > village.c.brokers, village.c.required - village.c.brokers),
                else_=0,
            )
        ),
    ).group_by(village.c.code)
    return {
        code: Tally(int(v), int(c or 0), int(r or 0), int(a or 0), int(s or 0))
        for code, v, c, r, a, s in (await session.execute(query)).all()
    }


def _code_within(prefix: str) -> ColumnElement[bool]:
    """Regions whose code starts with ``prefix``, as a range of the primary key (``LIKE
    'p%'`` reads every region on SQLite, and on PostgreSQL under a non-C collation:
    each broker's home page asked for its one village that way)."""
    column = col(Region.code)
    bounds = prefix_bounds(prefix)
    if bounds is None:
        return column.startswith(prefix, autoescape=True)
    low, high = bounds
    return (column >= low) & (column < high) if high else column >= low


def _sum(parts: Iterable[Tally]) -> Tally:
    total = Tally()
    for part in parts:
        total.merge(part)
    return total


def to_public(region: Region, tally: Tally | None) -> RegionPublic:
    tally = tally or Tally()
    return RegionPublic(
        code=region.code,
        name=region.name,
        level=region.level,
        parent_code=region.parent_code,
        kind=region.kind,
        population=region.population,
        required_brokers=(
            required_brokers(region.population)
            if region.level == RegionLevel.village
            else tally.brokers_required
        ),
        active_brokers=tally.brokers_active,
    )


async def list_children(
    *, session: AsyncSession, parent_code: str | None, limit: int, offset: int
) -> tuple[list[RegionPublic], int]:
    where = (
        col(Region.parent_code) == parent_code
        if parent_code is not None
        else col(Region.parent_code).is_(None)
    )
    if parent_code is not None:
        await get(session=session, code=parent_code)
    regions, total = await fetch_page(
        session, Region, [where], order_by=col(Region.code), limit=limit, offset=offset
    )
    if not regions:
        return [], total
    by_code = await tallies(
        session=session, prefix=parent_code or "", group_length=len(regions[0].code)
    )
    return [to_public(region, by_code.get(region.code)) for region in regions], total


async def public(*, session: AsyncSession, code: str) -> RegionPublic:
    region = await get(session=session, code=code)
    by_code = await tallies(session=session, prefix=code, group_length=len(code))
    return to_public(region, by_code.get(code))


async def set_population(
    *, session: AsyncSession, actor: Actor, code: str, population: int | None
) -> RegionPublic:
    region = await get(session=session, code=code)
    require(actor, "region.set_population", region_code=code)
    if region.level != RegionLevel.village:
        raise Invalid("population", "人口只能在村（社区）一级填写，上级按村汇总")
    if population is not None and population < 0:
        raise Invalid("population", "人口不能为负数")
    before = region.population
    region.population = population
    region.population_updated_at = utcnow()
    session.add(region)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="region.set_population",
        object_type="region",
        object_id=code,
        region_code=code,
        detail={"before": before, "after": population},
    )
    await emit(session, "region.population_changed", {"code": code, "population": population})
    return await public(session=session, code=code)


async def coverage(*, session: AsyncSession, code: str) -> Coverage:
    region = await get(session=session, code=code)
    child_level = CHILD_LEVEL.get(RegionLevel(region.level))
    if child_level is None:  # a village: its own numbers, no children
        own = await tallies(session=session, prefix=code, group_length=len(code))
        return _coverage(region.code, region.name, region.level, own.get(code))
    by_child = await tallies(session=session, prefix=code, group_length=CODE_LENGTH[child_level])
    rows = await session.execute(
        select(col(Region.code), col(Region.name), col(Region.level))
        .where(col(Region.parent_code) == code)
        .order_by(col(Region.code))
    )
    node = _coverage(region.code, region.name, region.level, _sum(by_child.values()))
    node.children = [_coverage(c, n, lv, by_child.get(c)) for c, n, lv in rows.all()]
    return node


def _coverage(code: str, name: str, level: str, tally: Tally | None) -> Coverage:
    tally = tally or Tally()
    return Coverage(
        code=code,
        name=name,
        level=level,
        villages=tally.villages,
        villages_covered=tally.villages_covered,
        brokers_required=tally.brokers_required,
        brokers_active=tally.brokers_active,
        shortfall=tally.shortfall,
    )
