"""Public disclosure (公示): rankings with masked names, village, score and grade,
the year's review outcomes, and coverage by district. Nothing else personal: no
broker number, no phone, no ID number, no component inputs."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.brokers.models import Broker
from marketplace.errors import Invalid, NotFound
from marketplace.regions import service as regions
from marketplace.regions.models import Region
from marketplace.scoring.models import AnnualReview, BrokerScore
from marketplace.scoring.rules import Period


def mask_name(name: str) -> str:
    """张三明 → 张*明, 张三 → 张*, 欧阳小明 → 欧**明; a single character → *."""
    name = (name or "").strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


@dataclass(frozen=True)
class PublicRow:
    district: str
    rank: int
    name: str
    village: str
    score: float
    grade: str


@dataclass(frozen=True)
class PublicReview:
    name: str
    village: str
    outcome: str


@dataclass(frozen=True)
class DistrictFigure:
    code: str
    name: str
    villages: int
    villages_covered: int
    average_score: float | None


async def latest_period(session: AsyncSession) -> Period | None:
    value = (await session.execute(select(func.max(col(BrokerScore.period))))).scalar_one()
    return None if value is None else Period.parse(value)


async def districts(session: AsyncSession) -> list[Region]:
    rows = await session.execute(
        select(Region).where(col(Region.level) == "district").order_by(col(Region.code))
    )
    return list(rows.scalars())


async def district_region(session: AsyncSession, code: str) -> Region:
    if len(code) != 6 or not code.isdigit():
        raise Invalid("district", "应为 6 位区县代码")
    region = await session.get(Region, code)
    if region is None or region.level != "district":
        raise NotFound("没有这个区县")
    return region


async def ranking(
    session: AsyncSession, district_code: str | None, period: Period
) -> list[PublicRow]:
    """One district's ranking, or every district's (by district, then rank)."""
    village = Region.__table__.alias("village")  # type: ignore[attr-defined]
    district = Region.__table__.alias("district")  # type: ignore[attr-defined]
    query = (
        select(
            district.c.name,
            col(BrokerScore.rank_district),
            col(Broker.name),
            village.c.name,
            col(BrokerScore.score),
            col(BrokerScore.grade),
        )
        .join(Broker, col(Broker.id) == col(BrokerScore.broker_id))
        .join(village, village.c.code == col(BrokerScore.village_code))
        .join(district, district.c.code == col(BrokerScore.district_code))
        .where(col(BrokerScore.period) == str(period))
        .order_by(
            col(BrokerScore.district_code),
            col(BrokerScore.rank_district),
            col(BrokerScore.broker_id),
        )
    )
    if district_code is not None:
        await district_region(session, district_code)
        query = query.where(col(BrokerScore.district_code) == district_code)
    rows = await session.execute(query)
    return [
        PublicRow(dname, rank, mask_name(name), vname, score, grade)
        for dname, rank, name, vname, score, grade in rows.all()
    ]


async def reviews(session: AsyncSession, district_code: str, year: int) -> list[PublicReview]:
    village = Region.__table__.alias("village")  # type: ignore[attr-defined]
    rows = await session.execute(
        select(col(Broker.name), village.c.name, col(AnnualReview.outcome))
        .join(Broker, col(Broker.id) == col(AnnualReview.broker_id))
        .join(village, village.c.code == col(Broker.village_code))
        .where(
            col(AnnualReview.year) == year,
            col(AnnualReview.outcome).is_not(None),
            col(Broker.village_code).startswith(district_code),
        )
        .order_by(col(Broker.village_code), col(Broker.id))
    )
    return [PublicReview(mask_name(n), v, o) for n, v, o in rows.all()]


async def district_figures(session: AsyncSession, period: Period | None) -> list[DistrictFigure]:
    """Every district's village coverage and, for the period, average score."""
    tallies = await regions.tallies(session=session, prefix="", group_length=6)
    averages: dict[str, float] = {}
    if period is not None:
        rows = await session.execute(
            select(col(BrokerScore.district_code), func.avg(col(BrokerScore.score)))
            .where(col(BrokerScore.period) == str(period))
            .group_by(col(BrokerScore.district_code))
        )
        averages = {code: round(float(avg), 1) for code, avg in rows.all()}
    out = []
    for district in await districts(session):
        tally = tallies.get(district.code)
        out.append(
            DistrictFigure(
                code=district.code,
                name=district.name,
                villages=tally.villages if tally else 0,
                villages_covered=tally.villages_covered if tally else 0,
                average_score=averages.get(district.code),
            )
        )
    return out


def ranking_csv(period: Period, rows: list[PublicRow]) -> str:
    out = io.StringIO()
    out.write("\ufeff")  # Excel opens UTF-8 Chinese correctly only with a BOM
    writer = csv.writer(out)
    writer.writerow(["区县", "期间", "名次", "姓名", "村（社区）", "积分", "等级"])
    for row in rows:
        writer.writerow(
            [
                row.district,
                str(period),
                row.rank,
                row.name,
                row.village,
                f"{row.score:.2f}",
                row.grade,
            ]
        )
    return out.getvalue()
