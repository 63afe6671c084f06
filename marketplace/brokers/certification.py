"""Certification: a passed applicant becomes an active broker with a number, an
account that can log in, and their home village.

The account is made the way every account is made (``accounts.create_user``, which
also creates the broker row for its village); its initial password is random and
returned once to the certifying district admin, who hands it over in person. Only
its argon2 hash is stored; the broker changes it after the first login.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, Role
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate
from marketplace.brokers import rules
from marketplace.brokers.models import Broker, BrokerApplication, BrokerStatus, BrokerStatusChange
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.errors import Conflict
from marketplace.events import emit

PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"  # noqa: S105
PASSWORD_LENGTH = 12


def initial_password() -> str:
    while True:
        password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
        # At least a digit and a letter, so it passes any password rule we have.
        if any(c.isdigit() for c in password) and any(c.isalpha() for c in password):
            return password


async def certify(
    *, session: AsyncSession, actor: Actor, application: BrokerApplication, cipher: DataCipher
) -> tuple[str, str]:
    """Create the broker (active, numbered, certified now) and its login; returns the
    username and the one-time initial password. Emits ``broker.certified``."""
    assert application.id is not None
    district = application.village_code[:6]
    number = rules.broker_no(district, application.id)
    username = number.lower()
    password = initial_password()
    user, _ = await accounts.create_user(
        session=session,
        actor=actor,
        data=UserCreate(
            username=username,
            display_name=application.name,
            role=Role.broker,
            region_code=application.village_code,
            password=password,
        ),
        cipher=cipher,
    )
    broker = (
        await session.execute(select(Broker).where(col(Broker.user_id) == user.id))
    ).scalar_one_or_none()
    if broker is None:  # create_user makes it for every broker account
        raise Conflict("经纪人账号已创建，但经纪人记录缺失，请联系系统管理员")
    broker.broker_no = number
    broker.certified_at = utcnow()
    broker.status = BrokerStatus.active
    session.add(broker)
    await session.flush()
    assert broker.id is not None
    application.broker_id = broker.id
    session.add(
        BrokerStatusChange(
            broker_id=broker.id,
            old_status=None,
            new_status=BrokerStatus.active,
            reason=f"经申请 {application.tracking_code} 考核合格认证",
            actor_user_id=actor.user_id,
        )
    )
    await audit.record(
        session=session,
        actor=actor,
        action="broker.certify",
        object_type="broker",
        object_id=broker.id,
        region_code=broker.village_code,
        detail={"application_id": application.id, "broker_no": number},
    )
    await emit(
        session,
        "broker.certified",
        {
            "broker_id": broker.id,
            "application_id": application.id,
            "village_code": broker.village_code,
        },
    )
    return username, password
