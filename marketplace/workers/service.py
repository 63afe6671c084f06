"""What can be done with the worker register: register, read, list, edit, verify,
delete. Likely duplicates and merging live in ``dedupe``.

One record at a time, so bulk import can call ``register``/``update`` per row inside
its own transactions, and export can page through ``list_workers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any, Protocol

from sqlalchemy import Executable, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, Role, in_scope
from marketplace.brokers.models import Broker
from marketplace.clock import local, utcnow
from marketplace.crypto import DataCipher
from marketplace.errors import Conflict, Forbidden, Invalid
from marketplace.events import emit
from marketplace.regions.models import CITY_CODE, Region, RegionLevel
from marketplace.regions.rules import prefix_bounds
from marketplace.workers import records, rules, scope
from marketplace.workers.identity import parse_mobile, parse_resident_id, require_working_age
from marketplace.workers.models import (
    CertificateIn,
    DeleteReason,
    Worker,
    WorkerChange,
    WorkerChangePublic,
    WorkerCreate,
    WorkerPublic,
    WorkerUpdate,
)

EVENT = "worker.changed"
# The table's columns, looked up once: ``Worker.model_fields`` is a costly property.
WORKER_COLUMNS = frozenset(Worker.model_fields)


class OccupationMapper(Protocol):
    """Maps skills as entered to occupation codes. The matching issue implements it;
    until ``web`` wires one, records keep ``occupation_codes == []``."""

    def codes_for(self, skills: list[str]) -> list[str]: ...


def today_local() -> date:
    return local(utcnow()).date()


# --- checking input --------------------------------------------------------------------


async def _region(
    session: AsyncSession, code: str, known: Mapping[str, Region] | None
) -> Region | None:
    if known is not None:
        return known.get(code)
    return await session.get(Region, code)


async def _village(session: AsyncSession, code: str, known: Mapping[str, Region] | None) -> None:
    region = await _region(session, code, known)
    if region is None:
        raise Invalid("hukou_village_code", f"户籍村（社区）代码 {code} 不存在")
    if region.level != RegionLevel.village:
        raise Invalid("hukou_village_code", f"{code}（{region.name}）不是村（社区）级区划")


async def _current_region(
    session: AsyncSession, code: str, known: Mapping[str, Region] | None
) -> None:
    if not code.startswith(CITY_CODE) or await _region(session, code, known) is None:
        raise Invalid(
            "current_region_code",
            f"现居地区划代码 {code} 不是重庆市的区划；市外或境外请填写 current_location_text",
        )


async def _checked(
    session: AsyncSession,
    given: dict[str, Any],
    today: date,
    regions: Mapping[str, Region] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate the fields in ``given`` (clear values from a request); returns the values
    to store and the fields derived from them (gender, birth date). ``regions``: every
    region by code, when the caller (bulk import) loaded them once."""
    values: dict[str, Any] = {}
    derived: dict[str, Any] = {}
    for field, value in given.items():
        if field == "name":
            values[field] = rules.clean_name(value)
        elif field == "id_number":
            if value is None:
                raise Invalid("id_number", "身份证号不能为空")
            identity = parse_resident_id(value, today=today)
            require_working_age(identity, today=today)
            values[field] = identity.number
            derived = {"gender": identity.gender, "birth_date": identity.birth_date}
        elif field == "phone":
            values[field] = parse_mobile(value) if value not in (None, "") else None
        elif field == "hukou_village_code":
            if value is None:
                raise Invalid(field, "户籍村（社区）不能为空")
            await _village(session, value, regions)
            values[field] = value
        elif field == "current_region_code":
            if value:
                await _current_region(session, value, regions)
            values[field] = value or None
        elif field in ("skills", "training_wishes"):
            values[field] = rules.clean_list(value or [], field=field)
        elif field == "certificates":
            values[field] = [
                {"type": c.type, "number": c.number, "expires_on": _iso(c.expires_on)}
                for c in rules.check_certificates(
                    [CertificateIn.model_validate(c) for c in value or []]
                )
            ]
        elif field == "available_from":
            values[field] = _iso(value)
        elif field == "employment_status" and value is None:
            raise Invalid(field, "就业状态不能为空")
        elif field == "consent_to_recommend" and value is None:
            raise Invalid(field, "是否同意推荐不能为空")
        else:
            values[field] = value.value if hasattr(value, "value") else value
        if isinstance(values.get(field), str) and field in ("current_location_text", "note"):
            values[field] = values[field].strip() or None
    return values, derived


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _check_whole(values: dict[str, Any]) -> None:
    rules.check_wage(
        values.get("wage_min_fen"), values.get("wage_max_fen"), values.get("wage_unit")
    )
    rules.check_location(values.get("current_region_code"), values.get("current_location_text"))


async def find_by_id_number(
    session: AsyncSession, cipher: DataCipher, id_number: str
) -> Worker | None:
    """The record holding this ID number, under the current or an old key's hash."""
    return (
        await session.execute(
            select(Worker).where(col(Worker.id_number_hash).in_(cipher.lookup_hashes(id_number)))
        )
    ).scalar_one_or_none()


async def _refuse_duplicate(
    session: AsyncSession, cipher: DataCipher, id_number: str, *, except_id: int | None = None
) -> None:
    existing = await find_by_id_number(session, cipher, id_number)
    if existing is None or existing.id == except_id:
        return
    broker = await session.get(Broker, existing.broker_id)
    keeper = rules.mask_name(broker.name if broker else None)
    raise Conflict(
        f"此身份证号已登记：劳动者编号 {existing.id}，由经纪人 {keeper} 维护", field="id_number"
    )


async def _flush_unique(session: AsyncSession, cipher: DataCipher, id_number: str) -> None:
    """Flush in a savepoint: a concurrent registration of the same number that won the
    race shows as the same 409, not a 500."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        await _refuse_duplicate(session, cipher, id_number)
        raise


# --- writing ---------------------------------------------------------------------------


def _consent(worker: Worker, changed: set[str], actor: Actor, now: datetime) -> None:
    """When, and by whom, the consent now stored was recorded (PIPL)."""
    if {"consent_to_recommend", "consent_method"} & changed:
        worker.consent_at = now if worker.consent_to_recommend else None
        worker.consent_recorded_by = actor.user_id


async def record_change(
    session: AsyncSession,
    *,
    actor: Actor,
    worker: Worker,
    action: str,
    rows: list[WorkerChange],
    detail: dict[str, Any] | None = None,
) -> None:
    session.add_all(rows)
    await audit.record(
        session=session,
        actor=actor,
        action=f"worker.{action}",
        object_type="worker",
        object_id=worker.id,
        region_code=worker.hukou_village_code,
        detail=detail or {"fields": sorted({r.field for r in rows})},
    )
    await emit(session, EVENT, {"worker_id": worker.id, "action": action})
    await session.flush()


async def check_registration(
    *,
    session: AsyncSession,
    reach: scope.Reach,
    data: WorkerCreate,
    today: date,
    regions: Mapping[str, Region] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every check ``register`` makes before writing, except the duplicate ID number:
    the clear values to store and the fields derived from the ID number. Bulk import
    uses it to validate a row fully before anything is written."""
    given = data.model_dump(exclude={"consent_method"} if not data.consent_to_recommend else set())
    values, derived = await _checked(session, given, today, regions)
    scope.require_village(reach, values["hukou_village_code"])
    _check_whole(values)
    return values, derived


def new_values(
    *,
    values: dict[str, Any],
    derived: dict[str, Any],
    broker_id: int,
    actor: Actor,
    cipher: DataCipher,
    occupations: OccupationMapper | None,
    now: datetime,
) -> dict[str, Any]:
    """The columns of a new record of checked ``values`` (sets
    ``values["occupation_codes"]``); bulk import inserts these without ORM objects."""
    values["occupation_codes"] = occupations.codes_for(values["skills"]) if occupations else []
    row: Any = SimpleNamespace(broker_id=broker_id, created_at=now, updated_at=now, **derived)
    records.apply(row, values, cipher)
    _consent(row, set(values) if values.get("consent_to_recommend") else set(), actor, now)
    return {
        k: v
        for k, v in vars(row).items()
        if k not in ("id_number", "phone") and k in WORKER_COLUMNS
    }


def new_record(**kwargs: Any) -> Worker:
    """A new, unsaved record; the arguments of ``new_values``."""
    return Worker(**new_values(**kwargs))


async def register(
    *,
    session: AsyncSession,
    actor: Actor,
    cipher: DataCipher,
    data: WorkerCreate,
    occupations: OccupationMapper | None = None,
    broker_id: int | None = None,
    today: date | None = None,
) -> Worker:
    """Register a person. A broker registers into their own villages and keeps the
    record; the system (import CLI) names the keeping broker."""
    reach = await scope.reach(session, actor, "worker.edit")
    keeper = reach.broker_id if not actor.is_system else broker_id
    if keeper is None:
        raise Invalid("broker_id", "须指定维护此记录的经纪人")
    values, derived = await check_registration(
        session=session, reach=reach, data=data, today=today or today_local()
    )
    await _refuse_duplicate(session, cipher, values["id_number"])
    now = utcnow()
    worker = new_record(
        values=values,
        derived=derived,
        broker_id=keeper,
        actor=actor,
        cipher=cipher,
        occupations=occupations,
        now=now,
    )
    session.add(worker)
    await _flush_unique(session, cipher, values["id_number"])
    assert worker.id is not None
    row = records.creation_row(
        worker_id=worker.id, new=values, actor_user_id=actor.user_id, at=now, cipher=cipher
    )
    fields = sorted(f for f, _ in records.initial_values(row.new_value, cipher))
    await record_change(
        session, actor=actor, worker=worker, action="create", rows=[row], detail={"fields": fields}
    )
    return worker


async def update_worker(
    *,
    session: AsyncSession,
    actor: Actor,
    cipher: DataCipher,
    worker_id: int,
    data: WorkerUpdate,
    occupations: OccupationMapper | None = None,
    today: date | None = None,
) -> Worker:
    reach, worker = await scope.load_for_edit(session, actor, worker_id)
    given = data.model_dump(exclude_unset=True)
    values, derived = await _checked(session, given, today or today_local())
    if "hukou_village_code" in values and values["hukou_village_code"] != worker.hukou_village_code:
        scope.require_village(reach, values["hukou_village_code"])
    old = records.state(worker, cipher)
    new = {**old, **values}
    if not new["consent_to_recommend"]:
        new["consent_method"] = None
    if "skills" in values and occupations is not None:
        new["occupation_codes"] = occupations.codes_for(new["skills"])
    _check_whole(new)
    if "id_number" in values and values["id_number"] != old["id_number"]:
        await _refuse_duplicate(session, cipher, values["id_number"], except_id=worker.id)
    now = utcnow()
    assert worker.id is not None
    rows = records.changes(
        worker_id=worker.id,
        action="update",
        old=old,
        new=new,
        actor_user_id=actor.user_id,
        at=now,
        cipher=cipher,
    )
    if not rows:
        return worker
    records.apply(worker, {r.field: new[r.field] for r in rows}, cipher)
    _consent(worker, {r.field for r in rows}, actor, now)
    for field, value in derived.items():
        setattr(worker, field, value)
    worker.updated_at = now
    session.add(worker)
    await _flush_unique(session, cipher, new["id_number"])
    await record_change(session, actor=actor, worker=worker, action="update", rows=rows)
    return worker


async def verify(*, session: AsyncSession, actor: Actor, worker_id: int) -> Worker:
    """The broker checked the record with the person: it is fresh as of now."""
    _, worker = await scope.load_for_edit(session, actor, worker_id)
    now = utcnow()
    worker.last_verified_at = now
    session.add(worker)
    assert worker.id is not None
    row = records.note_row(
        worker_id=worker.id,
        action="verify",
        field="last_verified_at",
        value=now.isoformat(),
        actor_user_id=actor.user_id,
        at=now,
    )
    await record_change(session, actor=actor, worker=worker, action="verify", rows=[row])
    return worker


async def delete_worker(
    *, session: AsyncSession, actor: Actor, worker_id: int, reason: DeleteReason
) -> Worker:
    """Erase the person's data and keep an anonymised tombstone (docs/workers.md)."""
    _, worker = await scope.load_for_edit(session, actor, worker_id)
    now = utcnow()
    await erase(session, worker, reason=reason.value, at=now)
    assert worker.id is not None
    row = records.note_row(
        worker_id=worker.id,
        action="delete",
        field="deleted_reason",
        value=reason.value,
        actor_user_id=actor.user_id,
        at=now,
    )
    await record_change(
        session, actor=actor, worker=worker, action="delete", rows=[row], detail={"reason": reason}
    )
    return worker


async def erase(session: AsyncSession, worker: Worker, *, reason: str, at: datetime) -> None:
    """Tombstone ``worker`` and clear the values in its history (and in the history
    merged into it). Kept: id, village, broker, status, times, reason."""
    records.erase(worker)
    worker.deleted_at = at
    worker.deleted_reason = reason
    worker.updated_at = at
    session.add(worker)
    await session.execute(
        update(WorkerChange)
        .where(col(WorkerChange.worker_id) == worker.id)
        .values(old_value=None, new_value=None)
    )


# --- reading ---------------------------------------------------------------------------


async def get_worker(
    *, session: AsyncSession, actor: Actor, cipher: DataCipher, worker_id: int, reveal: bool = False
) -> WorkerPublic:
    reach = await scope.reach(session, actor)
    worker = await scope.load(session, reach, worker_id)
    if reveal:
        if not reach.may_reveal(worker):
            raise Forbidden(
                "只有维护此记录的经纪人和辖区经办人可查看完整证件号和手机号", field="reveal"
            )
        await audit.record(
            session=session,
            actor=actor,
            action="worker.reveal",
            object_type="worker",
            object_id=worker.id,
            region_code=worker.hukou_village_code,
            detail={"fields": ["id_number", "phone", "certificates"]},
        )
    return records.to_public(worker, cipher, reveal=reveal)


async def list_workers(
    *,
    session: AsyncSession,
    actor: Actor,
    limit: int,
    offset: int,
    q: str | None = None,
    village_code: str | None = None,
    employment_status: str | None = None,
    broker_id: int | None = None,
) -> tuple[list[Worker], int]:
    """Live records in the actor's reach, filtered, by id."""
    reach = await scope.reach(session, actor)
    if _whole_broker_register(reach, q, village_code, employment_status) and broker_id is None:
        total, result = await _broker_register(session, reach, _BROKER_ROWS, limit, offset)
        return list(result.scalars()), total
    where = _filters(reach, q=q, village_code=village_code, employment_status=employment_status)
    if broker_id is not None:
        where.append(col(Worker.broker_id) == broker_id)
    total, ids = await _page(session, where, limit=limit, offset=offset)
    rows = await session.execute(
        select(Worker).where(col(Worker.id).in_(ids)).order_by(col(Worker.id))
    )
    return list(rows.scalars()), total


async def list_lines(
    *,
    session: AsyncSession,
    reach: scope.Reach,
    cipher: DataCipher,
    limit: int,
    offset: int,
    q: str | None = None,
    village_code: str | None = None,
    employment_status: str | None = None,
) -> tuple[list[records.WorkerLine], int]:
    """``list_workers`` for the register page: only what its rows show (no records,
    no certificates decrypted), for a reach the caller has already looked up."""
    if _whole_broker_register(reach, q, village_code, employment_status):
        total, rows = await _broker_register(session, reach, _BROKER_LINES, limit, offset)
    else:
        where = _filters(reach, q=q, village_code=village_code, employment_status=employment_status)
        total, ids = await _page(session, where, limit=limit, offset=offset)
        rows = await session.execute(
            select(*records.LINE_COLUMNS).where(col(Worker.id).in_(ids)).order_by(col(Worker.id))
        )
    return [records.line(row, cipher) for row in rows.all()], total


# A broker's whole register, unfiltered, is what most of their visits open: its
# statements are built once (docs/operations.md, "Statements built once"). The same
# conditions as ``_filters`` gives a broker, with the reach as parameters.
_BROKER_WHERE = (
    col(Worker.deleted_at).is_(None),
    col(Worker.hukou_village_code).in_(bindparam("villages", expanding=True))
    | (col(Worker.broker_id) == bindparam("broker_id")),
)
_BROKER_COUNT = select(func.count()).select_from(Worker).where(*_BROKER_WHERE)
_BROKER_IDS = (
    select(col(Worker.id))
    .where(*_BROKER_WHERE)
    .order_by(col(Worker.id) + 0)  # as in ``_page``
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
    .correlate(None)
)
_BROKER_ROWS = select(Worker).where(col(Worker.id).in_(_BROKER_IDS)).order_by(col(Worker.id))
_BROKER_LINES = (
    select(*records.LINE_COLUMNS).where(col(Worker.id).in_(_BROKER_IDS)).order_by(col(Worker.id))
)


def _whole_broker_register(
    reach: scope.Reach, q: str | None, village_code: str | None, employment_status: str | None
) -> bool:
    return reach.actor.role == Role.broker and not (q or village_code or employment_status)


async def _broker_register(
    session: AsyncSession, reach: scope.Reach, page: Executable, limit: int, offset: int
) -> tuple[int, Any]:
    """How many records the broker's reach holds, and one page of ``page``'s rows."""
    params = {
        "villages": sorted(reach.villages),
        "broker_id": reach.broker_id,
        "limit": limit,
        "offset": offset,
    }
    total = (await session.execute(_BROKER_COUNT, params)).scalar_one()
    return int(total), await session.execute(page, params)


def _filters(
    reach: scope.Reach,
    *,
    q: str | None,
    village_code: str | None,
    employment_status: str | None,
) -> list[Any]:
    """The conditions of a listing: live records in ``reach``, then the filters."""
    actor = reach.actor
    where: list[Any] = [col(Worker.deleted_at).is_(None)]
    if actor.role == Role.broker:
        where.append(
            col(Worker.hukou_village_code).in_(reach.villages)
            | (col(Worker.broker_id) == reach.broker_id)
        )
        if village_code and not any(
            v.startswith(village_code) or village_code.startswith(v) for v in reach.villages
        ):
            raise Forbidden(f"区划 {village_code} 不在您服务的村（社区）内", field="village_code")
    else:
        prefix = village_code or actor.region_code
        if not in_scope(actor, prefix):
            raise Forbidden(f"区划 {prefix} 不在您的管辖范围内", field="village_code")
        where.append(_within(actor.region_code))
    if village_code:
        where.append(_within(village_code))
    if q:
        where.append(col(Worker.name).contains(q.strip(), autoescape=True))
    if employment_status:
        where.append(col(Worker.employment_status) == employment_status)
    return where


async def _page(
    session: AsyncSession, where: list[Any], *, limit: int, offset: int
) -> tuple[int, Any]:
    """How many match, and the ids of one page (a subquery). The page's ids are found
    first, answered from the covering indexes, then the caller reads only those rows.
    ``id + 0``: ordered by the bare key, PostgreSQL walks the table in id order testing
    every row, which for a broker's few hundred records among a million reads most of
    the table."""
    total = (
        await session.execute(select(func.count()).select_from(Worker).where(*where))
    ).scalar_one()
    ids = (
        select(col(Worker.id))
        .where(*where)
        .order_by(col(Worker.id) + 0)
        .limit(limit)
        .offset(offset)
        .correlate(None)
    )
    return int(total), ids


def _within(prefix: str) -> Any:
    """Records whose village code starts with ``prefix``, as a range the village index
    serves on both databases (``LIKE 'p%'`` is a full scan on SQLite, and on
    PostgreSQL under a non-C collation)."""
    column = col(Worker.hukou_village_code)
    bounds = prefix_bounds(prefix)
    if bounds is None:
        return column.startswith(prefix, autoescape=True)
    low, high = bounds
    return (column >= low) & (column < high) if high else column >= low


async def history(
    *, session: AsyncSession, actor: Actor, cipher: DataCipher, worker_id: int
) -> list[WorkerChangePublic]:
    """Every change of the record (and of records merged into it), values masked."""
    reach = await scope.reach(session, actor)
    worker = await scope.load(session, reach, worker_id)
    rows = await session.execute(
        select(WorkerChange)
        .where(col(WorkerChange.worker_id) == worker.id)
        .order_by(col(WorkerChange.at), col(WorkerChange.id))
    )
    out: list[WorkerChangePublic] = []
    for row in rows.scalars():
        if row.field == records.INITIAL:  # a creation: one row per initial value
            values = [
                (f, None, records.shown(f, v))
                for f, v in records.initial_values(row.new_value, cipher)
            ]
        else:
            values = [
                (
                    row.field,
                    records.masked_value(row.field, row.old_value, row.sensitive, cipher),
                    records.masked_value(row.field, row.new_value, row.sensitive, cipher),
                )
            ]
        out += [
            WorkerChangePublic(
                id=row.id or 0,
                worker_id=row.worker_id,
                origin_worker_id=row.origin_worker_id,
                action=row.action,
                field=field,
                old_value=old_value,
                new_value=new_value,
                actor_user_id=row.actor_user_id,
                at=row.at,
            )
            for field, old_value, new_value in values
        ]
    return out


async def broker_update_rate(
    *, session: AsyncSession, broker_id: int, start: datetime, end: datetime
) -> float | None:
    """``rules.update_rate`` over the records ``broker_id`` keeps (docs/workers.md)."""
    workers = (
        await session.execute(
            select(col(Worker.id), col(Worker.created_at), col(Worker.deleted_at)).where(
                col(Worker.broker_id) == broker_id, col(Worker.created_at) < end
            )
        )
    ).all()
    touched: dict[int, list[datetime]] = {}
    changes = await session.execute(
        select(col(WorkerChange.worker_id), col(WorkerChange.at))
        .join(Worker, col(Worker.id) == col(WorkerChange.worker_id))
        .where(
            col(Worker.broker_id) == broker_id,
            col(WorkerChange.at) >= start,
            col(WorkerChange.at) < end,
        )
    )
    for worker_id, at in changes.all():
        touched.setdefault(worker_id, []).append(at)
    return rules.update_rate(
        (
            rules.RegisterEntry(
                created_at=created, deleted_at=deleted, touched_at=touched.get(int(wid or 0), [])
            )
            for wid, created, deleted in workers
        ),
        start=start,
        end=end,
    )
