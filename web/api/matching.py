"""Ranked candidates for a job and jobs for a worker (docs/matching.md)."""

from __future__ import annotations

from litestar import Controller, get

from marketplace.placements.models import CandidateOut, MatchOut
from matching import matches
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, Paging, RowId


class MatchingController(Controller):
    path = "/api/v1"
    tags = ["匹配"]
    guards = [requires_login]

    @get("/jobs/{job_id:int}/candidates")
    async def candidates(
        self, db: Db, actor: CurrentActor, cipher: Cipher, page: Paging, job_id: RowId
    ) -> Paged[CandidateOut]:
        items, total = await matches.candidates(
            session=db,
            actor=actor,
            cipher=cipher,
            job_id=job_id,
            limit=page.limit,
            offset=page.offset,
        )
        return Paged(items=items, total=total)

    @get("/workers/{worker_id:int}/matches")
    async def matches(
        self, db: Db, actor: CurrentActor, page: Paging, worker_id: RowId
    ) -> Paged[MatchOut]:
        items, total = await matches.matches(
            session=db, actor=actor, worker_id=worker_id, limit=page.limit, offset=page.offset
        )
        return Paged(items=items, total=total)
