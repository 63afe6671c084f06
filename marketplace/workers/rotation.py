"""``laowu keys rotate``: re-encrypt every encrypted column under the current data key.

Runs beside live traffic: each batch is its own short transaction, and readers keep
working throughout because ``DataCipher`` still decrypts with the old keys. A row
whose ciphertexts already carry the current key id is left alone, so a second run
(or a run after a crash) only finishes what is left. Lookup hashes are keyed by the
data key too, so they are recomputed in the same write as the ciphertext; until a
row is rotated, lookups also try the old keys' hashes (``DataCipher.lookup_hashes``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel, col

from marketplace.accounts.models import User
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.errors import Invalid
from marketplace.workers.models import Worker, WorkerChange
from marketplace.workers.records import CTX_CERT, CTX_CHANGE, CTX_ID, CTX_PHONE

BATCH_SIZE = 500
M = TypeVar("M", bound=SQLModel)


@dataclass
class RotationReport:
    workers: int = 0
    changes: int = 0
    users: int = 0
    scanned: int = 0


def _reseal(cipher: DataCipher, token: str, context: str, where: str) -> tuple[str, str]:
    """(plaintext, new ciphertext) of ``token``."""
    try:
        plain = cipher.decrypt(token, context=context)
    except ValueError as exc:
        raise Invalid(
            "LAOWU_OLD_DATA_KEYS",
            f"{where} 的密文无法解密：请把加密它的旧密钥放入 LAOWU_OLD_DATA_KEYS",
        ) from exc
    return plain, cipher.encrypt(plain, context=context)


def rotate_worker(worker: Worker, cipher: DataCipher) -> bool:
    changed = False
    where = f"劳动者 {worker.id}"
    if worker.id_number_enc and not cipher.is_current(worker.id_number_enc):
        plain, worker.id_number_enc = _reseal(cipher, worker.id_number_enc, CTX_ID, where)
        worker.id_number_hash = cipher.lookup_hash(plain)
        changed = True
    if worker.phone_enc and not cipher.is_current(worker.phone_enc):
        plain, worker.phone_enc = _reseal(cipher, worker.phone_enc, CTX_PHONE, where)
        worker.phone_hash = cipher.lookup_hash(plain)
        changed = True
    if any(not cipher.is_current(c["number_enc"]) for c in worker.certificates):
        # A new list, so the JSON column is seen as changed.
        worker.certificates = [
            {**c, "number_enc": _reseal(cipher, c["number_enc"], CTX_CERT, where)[1]}
            for c in worker.certificates
        ]
        changed = True
    return changed


def rotate_change(row: WorkerChange, cipher: DataCipher) -> bool:
    if not row.sensitive:
        return False
    changed = False
    where = f"劳动者变更记录 {row.id}"
    if row.old_value and not cipher.is_current(row.old_value):
        row.old_value = _reseal(cipher, row.old_value, CTX_CHANGE, where)[1]
        changed = True
    if row.new_value and not cipher.is_current(row.new_value):
        row.new_value = _reseal(cipher, row.new_value, CTX_CHANGE, where)[1]
        changed = True
    return changed


def rotate_user(user: User, cipher: DataCipher) -> bool:
    if not user.totp_secret_enc or cipher.is_current(user.totp_secret_enc):
        return False
    user.totp_secret_enc = _reseal(cipher, user.totp_secret_enc, "totp", f"账号 {user.id}")[1]
    return True


async def _rotate_table(
    factory: async_sessionmaker[AsyncSession],
    model: type[M],
    fix: Callable[[M, DataCipher], bool],
    cipher: DataCipher,
    batch_size: int,
    report: RotationReport,
) -> int:
    """Walk ``model`` by primary key, one short transaction per batch."""
    pk: Any = col(model.id)  # type: ignore[attr-defined]
    last, changed = 0, 0
    while True:
        async with unit_of_work(factory) as session:
            rows = list(
                (
                    await session.execute(
                        select(model).where(pk > last).order_by(pk).limit(batch_size)
                    )
                ).scalars()
            )
            for row in rows:
                if fix(row, cipher):
                    session.add(row)
                    changed += 1
        if not rows:
            return changed
        report.scanned += len(rows)
        last = rows[-1].id  # type: ignore[attr-defined]


async def rotate_keys(
    factory: async_sessionmaker[AsyncSession], cipher: DataCipher, *, batch_size: int = BATCH_SIZE
) -> RotationReport:
    report = RotationReport()
    report.workers = await _rotate_table(factory, Worker, rotate_worker, cipher, batch_size, report)
    report.changes = await _rotate_table(
        factory, WorkerChange, rotate_change, cipher, batch_size, report
    )
    report.users = await _rotate_table(factory, User, rotate_user, cipher, batch_size, report)
    return report
