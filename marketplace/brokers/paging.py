"""One page of rows with a multi-column sort (``db.fetch_page`` takes one column):
oldest first, then by id, so equal timestamps never make pages overlap."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


async def page(
    session: AsyncSession,
    model: type[T],
    where: list[ColumnElement[bool]],
    *,
    order_by: tuple[Any, ...],
    limit: int,
    offset: int,
) -> tuple[list[T], int]:
    total = (
        await session.execute(select(func.count()).select_from(model).where(*where))
    ).scalar_one()
    rows = await session.execute(
        select(model).where(*where).order_by(*order_by).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total)
