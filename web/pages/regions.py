"""The region tree with broker coverage, and inline village population edits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.access import Actor, can, require
from marketplace.errors import Invalid
from marketplace.regions import service as regions
from marketplace.regions.models import (
    CODE_LENGTH,
    Coverage,
    Region,
    RegionLevel,
    RegionPublic,
    RegionUpdate,
)
from web.auth import requires_login
from web.deps import CurrentActor, Db
from web.pages.base import field_errors, is_htmx, refuse_in_form, render

# Enough for the largest township; the page shows every village at once.
MAX_VILLAGES = 1000


class PopulationForm(BaseModel):
    population: str = ""


@dataclass(frozen=True)
class Crumb:
    code: str
    name: str
    link: bool


@dataclass(frozen=True)
class Row:
    """A child region's coverage, and for a village its population."""

    cov: Coverage
    village: RegionPublic | None


async def _breadcrumb(db: AsyncSession, actor: Actor, region: Region) -> list[Crumb]:
    lengths = sorted(n for n in CODE_LENGTH.values() if n < len(region.code))
    crumbs = []
    for length in lengths:
        ancestor = await regions.get(session=db, code=region.code[:length])
        link = can(actor, "coverage.view", region_code=ancestor.code)
        crumbs.append(Crumb(ancestor.code, ancestor.name, link))
    return crumbs


async def _rows(db: AsyncSession, region: Region, cov: Coverage) -> list[Row]:
    villages: dict[str, RegionPublic] = {}
    if region.level == RegionLevel.township:
        items, _ = await regions.list_children(
            session=db, parent_code=region.code, limit=MAX_VILLAGES, offset=0
        )
        villages = {item.code: item for item in items}
    return [Row(child, villages.get(child.code)) for child in cov.children]


async def _region_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    code: str,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    region = await regions.get(session=db, code=code)
    require(actor, "coverage.view", region_code=code)
    cov = await regions.coverage(session=db, code=code)
    village = (
        await regions.public(session=db, code=code) if region.level == RegionLevel.village else None
    )
    return await render(
        request,
        db,
        "regions/region.html",
        status_code=status_code,
        region=region,
        crumbs=await _breadcrumb(db, actor, region),
        cov=cov,
        rows=await _rows(db, region, cov),
        village=village,
        can_edit=can(actor, "region.set_population", region_code=code),
        errors=errors or {},
    )


@get("/regions", guards=[requires_login], include_in_schema=False)
async def regions_root(actor: CurrentActor) -> Redirect:
    return Redirect(f"/regions/{actor.region_code}")


@get("/regions/{code:str}", guards=[requires_login], include_in_schema=False)
async def region_page(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, code: FromPath[str]
) -> Template:
    return await _region_page(request, db, actor, code)


@get("/regions/{code:str}/row", guards=[requires_login], include_in_schema=False)
async def village_row(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    code: FromPath[str],
    edit: FromQuery[bool] = False,
) -> Template:
    """One village's row in its township's table, shown or as an edit form (HTMX)."""
    require(actor, "coverage.view", region_code=code)
    return await _row(request, db, actor, code, edit=edit)


async def _row(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    code: str,
    *,
    edit: bool,
    error: str | None = None,
    value: str | None = None,
    status_code: int = 200,
    parent: Coverage | None = None,
) -> Template:
    cov = await regions.coverage(session=db, code=code)
    village = await regions.public(session=db, code=code)
    return await render(
        request,
        db,
        "regions/_row.html",
        status_code=status_code,
        row=Row(cov, village),
        edit=edit,
        can_edit=can(actor, "region.set_population", region_code=code),
        error=error,
        value=value,
        summary=parent,
    )


def _parse_population(raw: str) -> int | None:
    text = raw.strip().replace(",", "").replace("，", "")
    if not text:
        return None
    if not text.isdigit():
        raise Invalid("population", "人口请填写不小于 0 的整数，未知请留空")
    try:
        return RegionUpdate(population=int(text)).population
    except ValidationError as exc:
        raise Invalid("population", field_errors(exc).get("population", "人口超出范围")) from None


@post("/regions/{code:str}/population", guards=[requires_login], include_in_schema=False)
async def set_population(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    code: FromPath[str],
    data: URLEncodedBody[PopulationForm],
) -> Response[Any] | Template:
    try:
        population = _parse_population(data.population)
        updated = await regions.set_population(
            session=db, actor=actor, code=code, population=population
        )
    except Invalid as exc:
        errors = await refuse_in_form(request, db, exc)
        message = errors.get("population") or exc.message
        if is_htmx(request):
            return await _row(
                request,
                db,
                actor,
                code,
                edit=True,
                error=message,
                value=data.population,
                status_code=422,
            )
        return await _region_page(
            request, db, actor, code, errors={"population": message}, status_code=422
        )
    parent_code = updated.parent_code or code
    if is_htmx(request):
        parent = await regions.coverage(session=db, code=parent_code)
        return await _row(request, db, actor, code, edit=False, parent=parent)
    return Redirect(f"/regions/{code}", status_code=HTTP_303_SEE_OTHER)
