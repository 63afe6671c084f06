"""Fees belong to the organisation of the placement: another employer's is not found."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import fees
from billing.models import MarketFee
from marketplace.access import Actor
from marketplace.db import unit_of_work
from tests.billing.conftest import YUZHONG


async def test_an_organisation_sees_only_its_own_placements_fees(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    """The fee of a placement at one employer is not found for another employer."""
    from marketplace.accounts.models import User
    from marketplace.errors import NotFound
    from marketplace.organizations.models import Organization, OrganizationMember

    async with unit_of_work(factory) as session:
        orgs, users = [], []
        for n, code in enumerate(("91500103MA5U000001", "91500103MA5U000002")):
            org = Organization(
                kind="employer",
                name=f"单位{n}",
                credit_code=code,
                contact_name="联系人",
                contact_phone="023-63000000",
                address="渝中区",
                region_code=YUZHONG,
                status="verified",
            )
            user = User(
                username=f"fee_employer_{n}",
                display_name=f"雇主{n}",
                role="employer",
                region_code=YUZHONG,
                password_hash="!",
            )
            session.add_all([org, user])
            await session.flush()
            session.add(OrganizationMember(organization_id=org.id or 0, user_id=user.id or 0))
            orgs.append(org)
            users.append(user)
        session.add(MarketFee(placement_id=77_001, organization_id=orgs[0].id, amount_fen=30_000))
    owner = Actor(
        user_id=users[0].id, username="fee_employer_0", role="employer", region_code=YUZHONG
    )
    other = Actor(
        user_id=users[1].id, username="fee_employer_1", role="employer", region_code=YUZHONG
    )
    async with factory() as session:
        fee = await fees.get_fee(session, actor=owner, placement_id=77_001)
        assert fee.amount_fen == 30_000
        with pytest.raises(NotFound):
            await fees.get_fee(session, actor=other, placement_id=77_001)
