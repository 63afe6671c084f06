"""Shared set-up for the training and exam tests: villages, applicants in training."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import SYSTEM
from marketplace.brokers import applications, questions
from marketplace.brokers.applications import ApplicationInput
from marketplace.brokers.models import ApplicationStatus, BrokerApplication
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.regions.models import Region
from marketplace.workers.identity import check_char

PHONE = "13800138000"


def make_id(n: int, born: date = date(1986, 3, 9)) -> str:
    first17 = f"500103{born:%Y%m%d}{n % 1000:03d}"
    return first17 + check_char(first17)


async def first_child(session: AsyncSession, parent: str) -> str:
    code = (
        await session.execute(
            select(col(Region.code))
            .where(col(Region.parent_code) == parent)
            .order_by(col(Region.code))
            .limit(1)
        )
    ).scalar_one()
    return str(code)


async def village_under(
    sessions: async_sessionmaker[AsyncSession], district: str
) -> tuple[str, str]:
    """(township, village): the first of each under ``district``."""
    async with sessions() as session:
        township = await first_child(session, district)
        return township, await first_child(session, township)


async def applicant_in_training(
    sessions: async_sessionmaker[AsyncSession],
    cipher: DataCipher,
    village: str,
    n: int,
    *,
    name: str = "考生",
) -> BrokerApplication:
    """An application submitted and moved straight to ``in_training`` (the review chain
    itself is tested with the applications)."""
    async with unit_of_work(sessions) as session:
        application = await applications.submit(
            session=session,
            cipher=cipher,
            data=ApplicationInput(
                name=f"{name}{n}",
                id_number=make_id(n),
                phone=PHONE,
                village_code=village,
                background="grid_worker",
                computer_skills=True,
                smartphone_skills=True,
                enough_time=True,
                not_on_public_payroll=True,
            ),
        )
        await session.execute(
            update(BrokerApplication)
            .where(col(BrokerApplication.id) == application.id)
            .values(status=ApplicationStatus.in_training)
        )
        application.status = ApplicationStatus.in_training
    return application


async def load_bank(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with unit_of_work(sessions) as session:
        await questions.load_starter(session=session, actor=SYSTEM)
