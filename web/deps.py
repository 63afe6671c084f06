"""Dependencies injected into handlers: the unit of work, the caller, paging."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.access import Actor
from marketplace.crypto import DataCipher
from marketplace.db import begin_write
from matching.normalize import TaxonomyOccupationMapper, normalize
from matching.taxonomy import load_taxonomy
from web.auth import SAFE_METHODS, Principal, principal_of, request_session


async def provide_db(request: Request[Any, Any, Any]) -> AsyncGenerator[AsyncSession, None]:
    """The request's unit of work: commit once if the handler succeeds, else roll back.

    A read request whose caller the authentication middleware looked up gets that
    session (one transaction for both); the middleware closes it after the response.
    An error that marks ``keep_changes`` (a failed login's counter and audit entry)
    is committed before it propagates.
    """
    shared = request_session(request.scope)
    opened = nullcontext(shared) if shared is not None else request.app.state.sessions()
    async with opened as session:
        if request.method not in SAFE_METHODS:
            await begin_write(session)
        try:
            yield session
        except Exception as exc:
            if getattr(exc, "keep_changes", False):
                await session.commit()
            else:
                await session.rollback()
            raise
        else:
            await session.commit()
            wakeup = request.app.state.get("outbox_wakeup")
            if wakeup is not None and request.method not in SAFE_METHODS:
                wakeup.set()  # deliver the events this request wrote, now


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)


def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    return principal_of(request).actor


def provide_occupations() -> TaxonomyOccupationMapper:
    """Skills to occupations, for the worker register (the matching package's taxonomy)."""
    return TaxonomyOccupationMapper()


class TaxonomyJobOccupations:
    """``marketplace.jobs.service.JobOccupations`` over the taxonomy: a job title to
    the one occupation it names (the keys the worker register stores)."""

    def canonical(self, code: str) -> str | None:
        occupation = load_taxonomy().lookup(code)
        return occupation.key if occupation else None

    def for_title(self, title: str) -> str | None:
        match = normalize(title)
        return match.key if match else None


def provide_job_occupations() -> TaxonomyJobOccupations:
    return TaxonomyJobOccupations()


def provide_cipher(request: Request[Any, Any, Any]) -> DataCipher:
    cipher: DataCipher = request.app.state.cipher
    return cipher


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def provide_page(
    limit: Annotated[int, QueryParameter(ge=1, le=500, description="每页条数")] = 50,
    offset: Annotated[int, QueryParameter(ge=0, le=10_000_000, description="跳过条数")] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


DEPENDENCIES = {
    "db": Provide(provide_db),
    "principal": Provide(provide_principal, sync_to_thread=False),
    "actor": Provide(provide_actor, sync_to_thread=False),
    "cipher": Provide(provide_cipher, sync_to_thread=False),
    "occupations": Provide(provide_occupations, sync_to_thread=False),
    "job_occupations": Provide(provide_job_occupations, sync_to_thread=False),
    "page": Provide(provide_page, sync_to_thread=False),
}


# Handler parameter types: the name picks the dependency, the type is for readers and mypy.
Db = NamedDependency[AsyncSession]
CurrentActor = NamedDependency[Actor]
CurrentPrincipal = NamedDependency[Principal]
Cipher = NamedDependency[DataCipher]
Occupations = NamedDependency[TaxonomyOccupationMapper]
JobOccupationsDep = NamedDependency[TaxonomyJobOccupations]
Paging = NamedDependency[Page]
# A row id in a path: bounded to the 32-bit integer columns, so an absurd id is a 422
# and not a database overflow.
RowId = Annotated[int, PathParameter(ge=1, le=2_147_483_647, description="编号")]
