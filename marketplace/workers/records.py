"""A worker record as plain values, written back encrypted, and its change history.

``state`` is what a record says in clear (decrypted); ``apply`` stores such values
(encrypting the sensitive ones); ``changes`` turns the difference into history rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import col

from marketplace.crypto import DataCipher
from marketplace.workers.identity import mask
from marketplace.workers.models import CertificateOut, Worker, WorkerChange, WorkerPublic

CTX_ID = "worker.id_number"
CTX_PHONE = "worker.phone"
CTX_CERT = "worker.certificate"
CTX_CHANGE = "worker_change"
SENSITIVE = frozenset({"id_number", "phone", "certificates"})
# Fields kept in history, in the order they are shown.
TRACKED = (
    "name",
    "id_number",
    "phone",
    "hukou_village_code",
    "current_region_code",
    "current_location_text",
    "employment_status",
    "skills",
    "occupation_codes",
    "certificates",
    "wage_min_fen",
    "wage_max_fen",
    "wage_unit",
    "available_from",
    "mobility",
    "training_wishes",
    "consent_to_recommend",
    "consent_method",
    "note",
)
PLAIN_COLUMNS = tuple(f for f in TRACKED if f not in SENSITIVE)
# The one history row of a creation: every initial value, as one encrypted JSON object
# (a creation has no old values, and one row instead of ~11 is most of bulk import's
# speed). Reading expands it into one row per field (``initial_values``).
INITIAL = "initial_values"


def _cert_plain(cert: dict[str, Any], cipher: DataCipher) -> dict[str, Any]:
    return {
        "type": cert["type"],
        "number": cipher.decrypt(cert["number_enc"], context=CTX_CERT),
        "expires_on": cert.get("expires_on"),
    }


def state(worker: Worker, cipher: DataCipher) -> dict[str, Any]:
    """The record's tracked fields in clear; dates as ISO text (as JSON keeps them)."""
    values: dict[str, Any] = {f: getattr(worker, f) for f in PLAIN_COLUMNS}
    if isinstance(values["available_from"], date):
        values["available_from"] = values["available_from"].isoformat()
    values["id_number"] = (
        cipher.decrypt(worker.id_number_enc, context=CTX_ID) if worker.id_number_enc else None
    )
    values["phone"] = (
        cipher.decrypt(worker.phone_enc, context=CTX_PHONE) if worker.phone_enc else None
    )
    values["certificates"] = [_cert_plain(c, cipher) for c in worker.certificates]
    return values


def encrypt_certificates(
    items: Iterable[dict[str, Any]], cipher: DataCipher
) -> list[dict[str, Any]]:
    return [
        {
            "type": c["type"],
            "number_enc": cipher.encrypt(c["number"], context=CTX_CERT),
            "expires_on": c.get("expires_on"),
        }
        for c in items
    ]


def apply(worker: Worker, values: dict[str, Any], cipher: DataCipher) -> None:
    """Store clear ``values`` on the record, sensitive ones encrypted with their hash."""
    for field, value in values.items():
        if field == "id_number":
            worker.id_number_enc = cipher.encrypt(value, context=CTX_ID)
            worker.id_number_hash = cipher.lookup_hash(value)
        elif field == "phone":
            worker.phone_enc = cipher.encrypt(value, context=CTX_PHONE) if value else None
            worker.phone_hash = cipher.lookup_hash(value) if value else None
        elif field == "certificates":
            worker.certificates = encrypt_certificates(value, cipher)
        elif field == "available_from":
            worker.available_from = date.fromisoformat(value) if value else None
        else:
            setattr(worker, field, value)


def _stored(field: str, value: Any, cipher: DataCipher) -> str | None:
    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False)
    return cipher.encrypt(text, context=CTX_CHANGE) if field in SENSITIVE else text


def change_values(
    *,
    worker_id: int,
    action: str,
    old: dict[str, Any],
    new: dict[str, Any],
    actor_user_id: int | None,
    at: datetime,
    cipher: DataCipher,
) -> list[dict[str, Any]]:
    """The columns of one history row per field whose value differs between ``old``
    and ``new`` (bulk import inserts these without building ORM objects)."""
    rows = []
    for field in TRACKED:
        before, after = old.get(field), new.get(field)
        if before == after or (before in (None, []) and after in (None, [])):
            continue
        rows.append(
            {
                "worker_id": worker_id,
                "origin_worker_id": worker_id,
                "action": action,
                "field": field,
                "sensitive": field in SENSITIVE,
                "old_value": _stored(field, before, cipher),
                "new_value": _stored(field, after, cipher),
                "actor_user_id": actor_user_id,
                "at": at,
            }
        )
    return rows


def creation_values(
    *,
    worker_id: int,
    new: dict[str, Any],
    actor_user_id: int | None,
    at: datetime,
    cipher: DataCipher,
) -> dict[str, Any]:
    """The columns of a new record's single history row (``INITIAL``): every tracked
    field that has a value, encrypted together."""
    initial = {f: new[f] for f in TRACKED if new.get(f) not in (None, [])}
    return {
        "worker_id": worker_id,
        "origin_worker_id": worker_id,
        "action": "create",
        "field": INITIAL,
        "sensitive": True,
        "old_value": None,
        "new_value": cipher.encrypt(json.dumps(initial, ensure_ascii=False), context=CTX_CHANGE),
        "actor_user_id": actor_user_id,
        "at": at,
    }


def creation_row(**kwargs: Any) -> WorkerChange:
    """``creation_values`` as a row object."""
    return WorkerChange(**creation_values(**kwargs))


def initial_values(stored: str | None, cipher: DataCipher) -> list[tuple[str, Any]]:
    """A creation row's values, field by field in ``TRACKED`` order (none once erased)."""
    if stored is None:
        return []
    values = json.loads(cipher.decrypt(stored, context=CTX_CHANGE))
    return [(f, values[f]) for f in TRACKED if f in values]


def changes(
    *,
    worker_id: int,
    action: str,
    old: dict[str, Any],
    new: dict[str, Any],
    actor_user_id: int | None,
    at: datetime,
    cipher: DataCipher,
) -> list[WorkerChange]:
    """One history row per field whose value differs between ``old`` and ``new``."""
    return [
        WorkerChange(**row)
        for row in change_values(
            worker_id=worker_id,
            action=action,
            old=old,
            new=new,
            actor_user_id=actor_user_id,
            at=at,
            cipher=cipher,
        )
    ]


def note_row(
    *, worker_id: int, action: str, field: str, value: Any, actor_user_id: int | None, at: datetime
) -> WorkerChange:
    """A history row for an event rather than a field edit (verify, merged_from, delete)."""
    return WorkerChange(
        worker_id=worker_id,
        origin_worker_id=worker_id,
        action=action,
        field=field,
        new_value=json.dumps(value, ensure_ascii=False),
        actor_user_id=actor_user_id,
        at=at,
    )


def masked_value(field: str, stored: str | None, sensitive: bool, cipher: DataCipher) -> Any:
    """A history value as shown: sensitive ones decrypted and masked."""
    if stored is None:
        return None
    return shown(
        field, json.loads(cipher.decrypt(stored, context=CTX_CHANGE) if sensitive else stored)
    )


def shown(field: str, value: Any) -> Any:
    """A clear history value as shown: ID numbers, phones, certificate numbers masked."""
    if field in ("id_number", "phone") and isinstance(value, str):
        return mask(value)
    if field == "certificates" and isinstance(value, list):
        return [{**c, "number": mask(str(c.get("number", "")))} for c in value]
    return value


def to_public(worker: Worker, cipher: DataCipher, *, reveal: bool = False) -> WorkerPublic:
    """The record as a response: numbers masked unless ``reveal`` (already authorised)."""
    assert worker.id is not None
    # Only the three encrypted fields are decrypted here (``state`` would also copy
    # every plain field, which a list of 20 records paid for 20 times over).
    id_number = cipher.decrypt(worker.id_number_enc, context=CTX_ID) if worker.id_number_enc else ""
    phone = cipher.decrypt(worker.phone_enc, context=CTX_PHONE) if worker.phone_enc else None
    certificates = [_cert_plain(c, cipher) for c in worker.certificates]
    assert worker.birth_date is not None
    return WorkerPublic(
        id=worker.id,
        name=worker.name or "",
        id_number_masked=mask(id_number),
        id_number=id_number if reveal else None,
        phone_masked=mask(phone) if phone else None,
        phone=phone if reveal else None,
        gender=worker.gender or "",
        birth_date=worker.birth_date,
        hukou_village_code=worker.hukou_village_code,
        current_region_code=worker.current_region_code,
        current_location_text=worker.current_location_text,
        employment_status=worker.employment_status,
        skills=list(worker.skills),
        occupation_codes=list(worker.occupation_codes),
        certificates=[
            CertificateOut(
                type=c["type"],
                number=c["number"] if reveal else mask(c["number"]),
                expires_on=date.fromisoformat(c["expires_on"]) if c["expires_on"] else None,
            )
            for c in certificates
        ],
        wage_min_fen=worker.wage_min_fen,
        wage_max_fen=worker.wage_max_fen,
        wage_unit=worker.wage_unit,
        available_from=worker.available_from,
        mobility=worker.mobility,
        training_wishes=list(worker.training_wishes),
        consent_to_recommend=worker.consent_to_recommend,
        consent_at=worker.consent_at,
        consent_method=worker.consent_method,
        consent_recorded_by=worker.consent_recorded_by,
        note=worker.note,
        last_verified_at=worker.last_verified_at,
        broker_id=worker.broker_id,
        created_at=worker.created_at,
        updated_at=worker.updated_at,
    )


@dataclass(frozen=True)
class WorkerLine:
    """A row of the register list: what the list shows of a record, numbers masked."""

    id: int
    name: str
    employment_status: str
    id_number_masked: str
    phone_masked: str | None
    hukou_village_code: str
    last_verified_at: datetime | None


# What ``line`` reads, in its order: a listing selects these, not whole records.
LINE_COLUMNS = (
    col(Worker.id),
    col(Worker.name),
    col(Worker.employment_status),
    col(Worker.id_number_enc),
    col(Worker.phone_enc),
    col(Worker.hukou_village_code),
    col(Worker.last_verified_at),
)


def line(row: Sequence[Any], cipher: DataCipher) -> WorkerLine:
    """A row of LINE_COLUMNS as the list shows it (as ``to_public`` would mask it)."""
    worker_id, name, status, id_enc, phone_enc, village, verified = row
    id_number = cipher.decrypt(id_enc, context=CTX_ID) if id_enc else ""
    phone = cipher.decrypt(phone_enc, context=CTX_PHONE) if phone_enc else None
    return WorkerLine(
        id=worker_id,
        name=name or "",
        employment_status=status,
        id_number_masked=mask(id_number),
        phone_masked=mask(phone) if phone else None,
        hukou_village_code=village,
        last_verified_at=verified,
    )


def erase(worker: Worker) -> None:
    """Remove every piece of personal data, keeping what counts need."""
    worker.name = None
    worker.id_number_enc = worker.id_number_hash = None
    worker.phone_enc = worker.phone_hash = None
    worker.gender = None
    worker.birth_date = None
    worker.current_region_code = worker.current_location_text = None
    worker.skills, worker.occupation_codes, worker.certificates = [], [], []
    worker.wage_min_fen = worker.wage_max_fen = None
    worker.wage_unit = worker.mobility = None
    worker.available_from = None
    worker.training_wishes = []
    worker.note = None
    worker.consent_to_recommend = False
    worker.consent_at = worker.consent_method = None
    worker.consent_recorded_by = None
    worker.last_verified_at = None
