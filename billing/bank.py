"""Brokers' bank accounts for payouts: personal data, encrypted at rest (AES-GCM via
``DataCipher``), shown masked (**** 1234), every change and every reveal audited.

A broker enters their own; finance reads them masked, and in clear only inside the
bank file of an online payout (itself audited)."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from billing.models import BrokerBankAccount
from marketplace import audit
from marketplace.access import Actor, require
from marketplace.brokers.models import Broker
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.errors import Forbidden, Invalid, NotFound

_ACCOUNT_NO = re.compile(r"^\d{10,30}$")
_FORMULA_START = frozenset("=+-@\t\r")


class BankAccountIn(BaseModel):
    account_name: str = Field(min_length=1, max_length=64, description="户名")
    bank_name: str = Field(min_length=1, max_length=64, description="开户行")
    account_no: str = Field(min_length=1, max_length=40, description="银行账号")


class BankAccountPublic(BaseModel):
    broker_id: int
    account_name: str
    bank_name: str
    account_no_masked: str


def context(broker_id: int) -> str:
    return f"bank:{broker_id}"


def mask(last4: str) -> str:
    return f"**** **** **** {last4}"


async def broker_of(session: AsyncSession, actor: Actor) -> Broker:
    broker = (
        await session.execute(select(Broker).where(col(Broker.user_id) == actor.user_id))
    ).scalar_one_or_none()
    if broker is None:
        raise NotFound("您的账号没有对应的经纪人档案", field="broker_id")
    return broker


def to_public(row: BrokerBankAccount) -> BankAccountPublic:
    return BankAccountPublic(
        broker_id=row.broker_id,
        account_name=row.account_name,
        bank_name=row.bank_name,
        account_no_masked=mask(row.account_no_last4),
    )


async def get_own(session: AsyncSession, actor: Actor) -> BrokerBankAccount | None:
    require(actor, "bank.edit")
    broker = await broker_of(session, actor)
    return (
        await session.execute(
            select(BrokerBankAccount).where(col(BrokerBankAccount.broker_id) == broker.id)
        )
    ).scalar_one_or_none()


async def set_own(
    session: AsyncSession, *, actor: Actor, cipher: DataCipher, data: BankAccountIn
) -> BrokerBankAccount:
    require(actor, "bank.edit")
    broker = await broker_of(session, actor)
    assert broker.id is not None
    if not in_village(actor, broker):
        raise Forbidden("只能登记本人的银行账户")
    number = re.sub(r"[\s-]", "", data.account_no)
    if not _ACCOUNT_NO.match(number):
        raise Invalid("account_no", "银行账号应为 10–30 位数字")
    for field, text in (("account_name", data.account_name), ("bank_name", data.bank_name)):
        # The name goes into the bank file (CSV) that finance opens in a spreadsheet:
        # a leading = + - @ would run as a formula there.
        if text.strip()[:1] in _FORMULA_START:
            raise Invalid(field, "户名和开户行不能以 = + - @ 开头")
    row = await get_own(session, actor) or BrokerBankAccount(
        broker_id=broker.id, account_name="", bank_name="", account_no_enc="", account_no_last4=""
    )
    row.account_name = data.account_name.strip()
    row.bank_name = data.bank_name.strip()
    row.account_no_enc = cipher.encrypt(number, context=context(broker.id))
    row.account_no_last4 = number[-4:]
    row.updated_at = utcnow()
    row.updated_by = actor.user_id
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="bank.update",
        object_type="broker_bank_account",
        object_id=broker.id,
        region_code=broker.village_code,
        detail={"last4": row.account_no_last4},
    )
    return row


def in_village(actor: Actor, broker: Broker) -> bool:
    return broker.user_id == actor.user_id
