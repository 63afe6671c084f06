"""Employers and HR agencies: registration, verification, members, authorisations."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import JSONBody, QueryParameter

from marketplace.organizations import service as orgs
from marketplace.organizations.models import (
    AuthorizationCreate,
    AuthorizationPublic,
    MemberAdd,
    MemberPublic,
    Organization,
    OrganizationCreate,
    OrganizationKind,
    OrganizationPublic,
    OrganizationStatus,
    VerifyRequest,
)
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import CurrentActor, Db, Paging, RowId


def to_public(org: Organization) -> OrganizationPublic:
    return OrganizationPublic.model_validate(org.model_dump())


class OrganizationsController(Controller):
    path = "/api/v1/organizations"
    tags = ["用人单位"]
    guards = [requires_login]

    @post("/")
    async def register(
        self, db: Db, actor: CurrentActor, data: JSONBody[OrganizationCreate]
    ) -> OrganizationPublic:
        return to_public(await orgs.register(session=db, actor=actor, data=data))

    @get("/")
    async def list_organizations(
        self,
        db: Db,
        actor: CurrentActor,
        page: Paging,
        status: Annotated[OrganizationStatus | None, QueryParameter()] = None,
        kind: Annotated[OrganizationKind | None, QueryParameter()] = None,
        region_code: Annotated[str | None, QueryParameter(pattern=r"^\d{2,12}$")] = None,
        q: Annotated[
            str | None, QueryParameter(max_length=50, description="名称或信用代码")
        ] = None,
    ) -> Paged[OrganizationPublic]:
        items, total = await orgs.list_organizations(
            session=db,
            actor=actor,
            limit=page.limit,
            offset=page.offset,
            status=status,
            kind=kind,
            region_code=region_code,
            q=q,
        )
        return Paged(items=[to_public(o) for o in items], total=total)

    @get("/{organization_id:int}")
    async def get_organization(
        self, db: Db, actor: CurrentActor, organization_id: RowId
    ) -> OrganizationPublic:
        return to_public(await orgs.get(db, actor, organization_id))

    @post("/{organization_id:int}/verify", status_code=200)
    async def verify(
        self, db: Db, actor: CurrentActor, organization_id: RowId, data: JSONBody[VerifyRequest]
    ) -> OrganizationPublic:
        org = await orgs.verify(session=db, actor=actor, organization_id=organization_id, data=data)
        return to_public(org)

    @get("/{organization_id:int}/members")
    async def members(
        self, db: Db, actor: CurrentActor, organization_id: RowId
    ) -> list[MemberPublic]:
        return await orgs.members(session=db, actor=actor, organization_id=organization_id)

    @post("/{organization_id:int}/members", status_code=201)
    async def add_member(
        self, db: Db, actor: CurrentActor, organization_id: RowId, data: JSONBody[MemberAdd]
    ) -> list[MemberPublic]:
        await orgs.add_member(session=db, actor=actor, organization_id=organization_id, data=data)
        return await orgs.members(session=db, actor=actor, organization_id=organization_id)

    @get("/{organization_id:int}/authorizations")
    async def authorizations(
        self, db: Db, actor: CurrentActor, organization_id: RowId
    ) -> list[AuthorizationPublic]:
        rows = await orgs.authorizations(session=db, actor=actor, organization_id=organization_id)
        return [AuthorizationPublic.model_validate(r.model_dump()) for r in rows]

    @post("/{organization_id:int}/authorizations", status_code=201)
    async def authorize(
        self,
        db: Db,
        actor: CurrentActor,
        organization_id: RowId,
        data: JSONBody[AuthorizationCreate],
    ) -> AuthorizationPublic:
        grant = await orgs.authorize(
            session=db, actor=actor, employer_id=organization_id, data=data
        )
        return AuthorizationPublic.model_validate(grant.model_dump())
