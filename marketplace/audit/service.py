"""Writing, reading and verifying the audit log."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Actor
from marketplace.audit.models import AuditEntry, AuditHead
from marketplace.clock import utcnow
from marketplace.db import fetch_page

GENESIS_HASH = "0" * 64


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}|{canonical}".encode()).hexdigest()


def _hashed_fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(timespec="microseconds"),
        "actor_user_id": entry.actor_user_id,
        "actor_role": entry.actor_role,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "region_code": entry.region_code,
        "ip": entry.ip,
        "outcome": entry.outcome,
        "detail": entry.detail,
    }


async def _lock_head(session: AsyncSession) -> AuditHead:
    head = (
        await session.execute(select(AuditHead).where(col(AuditHead.id) == 1).with_for_update())
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS_HASH)
        session.add(head)
        await session.flush()
    return head


async def record(
    *,
    session: AsyncSession,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str | int | None = None,
    region_code: str | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction. ``detail`` never holds personal data."""
    head = await _lock_head(session)
    entry = AuditEntry(
        id=head.last_id + 1,
        at=utcnow(),
        actor_user_id=actor.user_id,
        actor_role=actor.role,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        region_code=region_code,
        ip=actor.ip,
        outcome=outcome,
        detail=detail or {},
        prev_hash=head.last_hash,
        hash="",
    )
    entry.hash = entry_hash(entry.prev_hash, _hashed_fields(entry))
    head.last_id = entry.id
    head.last_hash = entry.hash
    session.add(entry)
    session.add(head)
    await session.flush()
    return entry


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    broken_at: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


async def verify(*, session: AsyncSession, batch: int = 5000) -> VerifyResult:
    """Walk the chain in order; report the first entry whose link does not hold."""
    prev_hash = GENESIS_HASH
    expected_id = 1
    checked = 0
    last_id = 0
    while True:
        rows = (
            (
                await session.execute(
                    select(AuditEntry)
                    .where(col(AuditEntry.id) > last_id)
                    .order_by(col(AuditEntry.id))
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for entry in rows:
            if entry.id != expected_id:
                return VerifyResult(checked, expected_id, f"第 {expected_id} 条记录缺失")
            if entry.prev_hash != prev_hash:
                return VerifyResult(checked, entry.id, "与上一条记录的链接不符")
            if entry_hash(prev_hash, _hashed_fields(entry)) != entry.hash:
                return VerifyResult(checked, entry.id, "记录内容与其哈希不符")
            prev_hash = entry.hash
            expected_id += 1
            checked += 1
            last_id = entry.id
        session.expunge_all()
    head = await session.get(AuditHead, 1)
    if head is None:  # the migration creates it; only tampering removes it
        return VerifyResult(checked, last_id + 1, "链头记录缺失")
    if head.last_id != last_id or head.last_hash != prev_hash:
        return VerifyResult(checked, last_id + 1, "链尾记录被删除或链头被改动")
    return VerifyResult(checked, None, None)


async def list_entries(
    *, session: AsyncSession, region_prefix: str, limit: int, offset: int, action: str | None = None
) -> tuple[list[AuditEntry], int]:
    where = [col(AuditEntry.region_code).startswith(region_prefix)] if region_prefix != "50" else []
    if action:
        where.append(col(AuditEntry.action) == action)
    return await fetch_page(
        session, AuditEntry, where, order_by=col(AuditEntry.id).desc(), limit=limit, offset=offset
    )
