"""The Chongqing region tree (NBS statistical divisions) and its I/O schemas."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class RegionLevel(StrEnum):
    city = "city"
    district = "district"
    township = "township"
    village = "village"


# NBS codes have a fixed length per level, so "inside region R" is "code starts with R".
CODE_LENGTH = {
    RegionLevel.city: 2,
    RegionLevel.district: 6,
    RegionLevel.township: 9,
    RegionLevel.village: 12,
}
CITY_CODE = "50"


class Region(SQLModel, table=True):
    __tablename__ = "region"

    code: str = Field(primary_key=True, max_length=12)
    name: str = Field(max_length=64)
    level: str = Field(max_length=16, index=True)
    parent_code: str | None = Field(
        default=None, foreign_key="region.code", index=True, max_length=12
    )
    kind: str | None = Field(default=None, max_length=16)
    population: int | None = Field(default=None, ge=0)
    population_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RegionPublic(SQLModel):
    code: str
    name: str
    level: str
    parent_code: str | None
    kind: str | None
    population: int | None
    required_brokers: int
    active_brokers: int


class RegionUpdate(SQLModel):
    population: int | None = Field(default=None, ge=0, le=2_000_000)


class Coverage(SQLModel):
    code: str
    name: str
    level: str
    villages: int
    villages_covered: int
    brokers_required: int
    brokers_active: int
    shortfall: int
    children: list[Coverage] = Field(default_factory=list)
