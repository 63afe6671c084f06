"""Recruitment gaps: the villages of a district below their staffing need
(``regions.rules.required_brokers``), each with the open applications from there.

"Active" is the coverage definition (docs/coverage.md): active brokers who live in
the village. Brokers of other villages assigned there are shown beside the gap but
do not close it: an assignment is a stopgap until someone from the village is
certified.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Actor, require
from marketplace.brokers import rules
from marketplace.brokers.models import (
    Broker,
    BrokerApplication,
    BrokerStatus,
    BrokerVillage,
    GapApplication,
    GapVillage,
)
from marketplace.errors import Forbidden, Invalid
from marketplace.regions import service as regions
from marketplace.regions.models import Region, RegionLevel


@dataclass(frozen=True)
class DistrictGap:
    code: str
    name: str
    villages: int
    villages_short: int
    shortfall: int
    open_applications: int


def _district_of(actor: Actor, code: str | None) -> str:
    district = code or (actor.region_code[:6] if len(actor.region_code) >= 6 else "")
    if len(district) != 6 or not district.isdigit():
        raise Invalid("district_code", "请选择一个区县（6 位区划代码）")
    return district


async def village_gaps(
    *, session: AsyncSession, actor: Actor, district_code: str | None = None
) -> list[GapVillage]:
    """Villages of the district (within the actor's reach) below need, largest gap first."""
    require(actor, "broker.recruitment_gaps")
    district = _district_of(actor, district_code)
    prefix = actor.region_code if actor.region_code.startswith(district) else district
    if not (prefix.startswith(actor.region_code) or actor.is_system):
        raise Forbidden(f"区县 {district} 不在您的管辖范围内", field="district_code")
    await regions.get(session=session, code=district)
    by_village = await regions.tallies(session=session, prefix=prefix, group_length=12)
    short = {code: t for code, t in by_village.items() if t.shortfall > 0}
    if not short:
        return []
    codes = list(short)
    names = dict(
        (
            await session.execute(
                select(col(Region.code), col(Region.name)).where(
                    col(Region.level).in_([RegionLevel.village, RegionLevel.township]),
                    col(Region.code).startswith(prefix[:9] if len(prefix) >= 9 else prefix),
                )
            )
        ).all()
    )
    populations = dict(
        (
            await session.execute(
                select(col(Region.code), col(Region.population)).where(col(Region.code).in_(codes))
            )
        ).all()
    )
    assigned = dict(
        (
            await session.execute(
                select(col(BrokerVillage.village_code), func.count())
                .join(Broker, col(Broker.id) == col(BrokerVillage.broker_id))
                .where(
                    col(BrokerVillage.village_code).startswith(prefix),
                    col(Broker.village_code) != col(BrokerVillage.village_code),
                    col(Broker.status) == BrokerStatus.active,
                )
                .group_by(col(BrokerVillage.village_code))
            )
        ).all()
    )
    applications: dict[str, list[GapApplication]] = {}
    rows = await session.execute(
        select(BrokerApplication)
        .where(
            col(BrokerApplication.village_code).startswith(prefix),
            col(BrokerApplication.status).in_(list(rules.OPEN_STATES)),
        )
        .order_by(col(BrokerApplication.submitted_at))
    )
    for app in rows.scalars():
        assert app.id is not None
        applications.setdefault(app.village_code, []).append(
            GapApplication(
                id=app.id,
                tracking_code=app.tracking_code,
                name=app.name,
                status=app.status,
                submitted_at=app.submitted_at,
            )
        )
    gaps = [
        GapVillage(
            village_code=code,
            village_name=names.get(code, code),
            township_name=names.get(code[:9], code[:9]),
            population=populations.get(code),
            required=tally.brokers_required,
            active=tally.brokers_active,
            gap=tally.shortfall,
            assigned_from_elsewhere=int(assigned.get(code, 0)),
            open_applications=applications.get(code, []),
        )
        for code, tally in short.items()
    ]
    gaps.sort(key=lambda g: (-g.gap, not g.open_applications, g.village_code))
    return gaps


async def district_summary(*, session: AsyncSession, actor: Actor) -> list[DistrictGap]:
    """One line per district in the actor's reach: how many villages are short."""
    require(actor, "broker.recruitment_gaps")
    prefix = actor.region_code[:6] if len(actor.region_code) > 6 else actor.region_code
    tallies = await regions.tallies(session=session, prefix=prefix, group_length=12)
    per_district: dict[str, list[int]] = {}
    for code, tally in tallies.items():
        if not code.startswith(actor.region_code) and not actor.is_system:
            continue
        entry = per_district.setdefault(code[:6], [0, 0, 0])
        entry[0] += 1
        entry[1] += 1 if tally.shortfall > 0 else 0
        entry[2] += tally.shortfall
    open_counts: dict[str, int] = dict(
        (
            await session.execute(
                select(func.substr(col(BrokerApplication.village_code), 1, 6), func.count())
                .where(
                    col(BrokerApplication.village_code).startswith(actor.region_code),
                    col(BrokerApplication.status).in_(list(rules.OPEN_STATES)),
                )
                .group_by(func.substr(col(BrokerApplication.village_code), 1, 6))
            )
        ).all()
    )
    names = dict(
        (
            await session.execute(
                select(col(Region.code), col(Region.name)).where(
                    col(Region.code).in_(list(per_district))
                )
            )
        ).all()
    )
    return [
        DistrictGap(
            code=code,
            name=names.get(code, code),
            villages=v,
            villages_short=s,
            shortfall=f,
            open_applications=int(open_counts.get(code, 0)),
        )
        for code, (v, s, f) in sorted(per_district.items())
    ]
