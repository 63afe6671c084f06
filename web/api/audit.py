"""The audit log, for auditors."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter
from pydantic import BaseModel

from marketplace.access import require
from marketplace.audit import service as audit
from marketplace.audit.models import AuditPublic
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import CurrentActor, Db, Paging


class ChainReport(BaseModel):
    ok: bool
    checked: int
    broken_at: int | None
    reason: str | None


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["审计"]
    guards = [requires_login]

    @get("/")
    async def list_entries(
        self,
        db: Db,
        actor: CurrentActor,
        page: Paging,
        action: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> Paged[AuditPublic]:
        require(actor, "audit.view")
        rows, total = await audit.list_entries(
            session=db,
            region_prefix=actor.region_code,
            limit=page.limit,
            offset=page.offset,
            action=action,
        )
        return Paged(
            items=[AuditPublic.model_validate(r, from_attributes=True) for r in rows], total=total
        )

    @get("/verify")
    async def verify(self, db: Db, actor: CurrentActor) -> ChainReport:
        """从第一条起校验哈希链，报告第一处断裂。"""
        require(actor, "audit.view")
        result = await audit.verify(session=db)
        return ChainReport(
            ok=result.ok, checked=result.checked, broken_at=result.broken_at, reason=result.reason
        )
