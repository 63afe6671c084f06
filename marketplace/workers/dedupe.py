"""Likely duplicates in a broker's register, dismissing a flagged pair, and merging.

The same ID number twice never gets this far (``service`` refuses it with 409);
these are records whose ID numbers differ, where one was probably mistyped.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.errors import Invalid
from marketplace.events import emit
from marketplace.workers import records, rules, scope, service
from marketplace.workers.models import (
    MERGED,
    DismissRequest,
    DuplicateDismissal,
    DuplicatePair,
    Worker,
    WorkerChange,
)

MAX_PAIRS = 500
LISTS = ("skills", "occupation_codes", "training_wishes")


def _candidate(worker: Worker) -> rules.DuplicateCandidate:
    assert worker.id is not None
    return rules.DuplicateCandidate(
        id=worker.id,
        name=worker.name or "",
        phone_hash=worker.phone_hash,
        village_code=worker.hukou_village_code,
        birth_date=worker.birth_date,
    )


def find_pairs(workers: list[Worker]) -> list[tuple[Worker, Worker, list[str]]]:
    """Pairs sharing a phone or a (village, birth date), checked by ``rules``; grouping
    first keeps this linear in the register's size, not quadratic."""
    groups: dict[Any, list[Worker]] = defaultdict(list)
    for worker in workers:
        if worker.phone_hash:
            groups[("phone", worker.phone_hash)].append(worker)
        if worker.birth_date:
            groups[("born", worker.hukou_village_code, worker.birth_date)].append(worker)
    seen: set[tuple[int, int]] = set()
    pairs = []
    for group in groups.values():
        for a, b in combinations(sorted(group, key=lambda w: w.id or 0), 2):
            key = (a.id or 0, b.id or 0)
            if key in seen:
                continue
            seen.add(key)
            reasons = rules.duplicate_reasons(_candidate(a), _candidate(b))
            if reasons:
                pairs.append((a, b, reasons))
    pairs.sort(key=lambda p: (p[0].id or 0, p[1].id or 0))
    return pairs


async def likely_duplicates(
    *, session: AsyncSession, actor: Actor, cipher: DataCipher
) -> list[DuplicatePair]:
    """Flagged pairs among the broker's own register, minus dismissed ones."""
    reach = await scope.reach(session, actor, "worker.edit")
    rows = await session.execute(
        select(Worker).where(
            col(Worker.deleted_at).is_(None),
            col(Worker.hukou_village_code).in_(reach.villages)
            | (col(Worker.broker_id) == reach.broker_id),
        )
    )
    pairs = find_pairs(list(rows.scalars()))[:MAX_PAIRS]
    dismissed: set[tuple[int, int]] = set()
    if pairs:
        keys = [(a.id, b.id) for a, b, _ in pairs]
        found = await session.execute(
            select(col(DuplicateDismissal.worker_a_id), col(DuplicateDismissal.worker_b_id)).where(
                tuple_(
                    col(DuplicateDismissal.worker_a_id), col(DuplicateDismissal.worker_b_id)
                ).in_(keys)
            )
        )
        dismissed = {(a, b) for a, b in found.all()}
    return [
        DuplicatePair(
            a=records.to_public(a, cipher),
            b=records.to_public(b, cipher),
            reasons=reasons,
            name_similarity=rules.name_similarity(a.name or "", b.name or ""),
        )
        for a, b, reasons in pairs
        if (a.id, b.id) not in dismissed
    ]


async def dismiss(*, session: AsyncSession, actor: Actor, data: DismissRequest) -> None:
    """Remember that the broker said these two are different people."""
    if data.a == data.b:
        raise Invalid("b", "不能把同一条记录标记为非重复")
    _, first = await scope.load_for_edit(session, actor, data.a, field="a")
    await scope.load_for_edit(session, actor, data.b, field="b")
    low, high = sorted((data.a, data.b))
    if await session.get(DuplicateDismissal, (low, high)) is None:
        session.add(
            DuplicateDismissal(worker_a_id=low, worker_b_id=high, dismissed_by=actor.user_id)
        )
    await audit.record(
        session=session,
        actor=actor,
        action="worker.dismiss_duplicate",
        object_type="worker",
        object_id=low,
        region_code=first.hukou_village_code,
        detail={"pair": [low, high]},
    )
    await session.flush()


def _merged_values(keep: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """The survivor's values win; empty ones are filled from the other record and
    lists are joined. The survivor's ID number, village and keeper never change."""
    merged = dict(keep)
    for field, value in other.items():
        if field in ("id_number", "hukou_village_code"):
            continue
        if field in LISTS:
            merged[field] = list(dict.fromkeys([*keep[field], *value]))
        elif field == "certificates":
            known = {(c["type"], c["number"]) for c in keep[field]}
            merged[field] = keep[field] + [
                c for c in value if (c["type"], c["number"]) not in known
            ]
        elif keep.get(field) in (None, "") and value not in (None, ""):
            merged[field] = value
    if merged.get("current_region_code") and merged.get("current_location_text"):
        merged["current_location_text"] = keep.get("current_location_text")
        merged["current_region_code"] = keep.get("current_region_code")
    if keep.get("wage_unit") and (keep.get("wage_min_fen") or keep.get("wage_max_fen")):
        for field in ("wage_min_fen", "wage_max_fen", "wage_unit"):
            merged[field] = keep.get(field)
    return merged


async def merge(
    *, session: AsyncSession, actor: Actor, cipher: DataCipher, worker_id: int, other_id: int
) -> Worker:
    """Merge ``other_id`` into ``worker_id``: the survivor takes the other's history
    (re-pointed, with its origin kept) and the other becomes a tombstone pointing here."""
    if worker_id == other_id:
        raise Invalid("other_id", "不能把记录合并到它自己")
    _, keep = await scope.load_for_edit(session, actor, worker_id)
    _, other = await scope.load_for_edit(session, actor, other_id, field="other_id")
    assert keep.id is not None
    assert other.id is not None
    now = utcnow()
    old = records.state(keep, cipher)
    new = _merged_values(old, records.state(other, cipher))
    rows = records.changes(
        worker_id=keep.id,
        action="merge",
        old=old,
        new=new,
        actor_user_id=actor.user_id,
        at=now,
        cipher=cipher,
    )
    await session.execute(
        update(WorkerChange)
        .where(col(WorkerChange.worker_id) == other.id)
        .values(worker_id=keep.id)
    )
    records.apply(keep, {r.field: new[r.field] for r in rows}, cipher)
    keep.last_verified_at = max(
        (t for t in (keep.last_verified_at, other.last_verified_at) if t), default=None
    )
    keep.updated_at = now
    records.erase(other)
    other.deleted_at, other.deleted_reason, other.merged_into_id = now, MERGED, keep.id
    other.updated_at = now
    session.add_all([keep, other])
    await session.flush()
    rows.append(
        records.note_row(
            worker_id=keep.id,
            action="merge",
            field="merged_from",
            value=other.id,
            actor_user_id=actor.user_id,
            at=now,
        )
    )
    # The other record leaves the search index; the survivor is re-indexed below.
    await emit(
        session, service.EVENT, {"worker_id": other.id, "action": "merge", "merged_into": keep.id}
    )
    await service.record_change(session, actor=actor, worker=keep, action="merge", rows=rows)
    return keep
