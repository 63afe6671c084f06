"""The region tree, village populations and broker coverage."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, patch
from litestar.params import JSONBody, PathParameter, QueryParameter

from marketplace.access import require
from marketplace.regions import service as regions
from marketplace.regions.models import Coverage, RegionPublic, RegionUpdate
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import CurrentActor, Db, Paging

Code = Annotated[
    str, PathParameter(pattern=r"^\d{2}(\d{4}(\d{3}(\d{3})?)?)?$", description="统计用区划代码")
]


class RegionsController(Controller):
    path = "/api/v1/regions"
    tags = ["区划"]
    guards = [requires_login]

    @get("/")
    async def list_regions(
        self,
        db: Db,
        page: Paging,
        parent_code: Annotated[
            str | None,
            QueryParameter(pattern=r"^\d{2}(\d{4}(\d{3})?)?$", description="上级区划代码"),
        ] = None,
    ) -> Paged[RegionPublic]:
        items, total = await regions.list_children(
            session=db, parent_code=parent_code, limit=page.limit, offset=page.offset
        )
        return Paged(items=items, total=total)

    @get("/{code:str}")
    async def get_region(self, db: Db, code: Code) -> RegionPublic:
        return await regions.public(session=db, code=code)

    @patch("/{code:str}")
    async def update_region(
        self, db: Db, actor: CurrentActor, data: JSONBody[RegionUpdate], code: Code
    ) -> RegionPublic:
        return await regions.set_population(
            session=db, actor=actor, code=code, population=data.population
        )

    @get("/{code:str}/coverage")
    async def coverage(self, db: Db, actor: CurrentActor, code: Code) -> Coverage:
        await regions.get(session=db, code=code)
        require(actor, "coverage.view", region_code=code)
        return await regions.coverage(session=db, code=code)
