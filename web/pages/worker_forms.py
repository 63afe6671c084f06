"""The worker register's page forms: what a phone form posts, turned into the domain's
``WorkerCreate``/``WorkerUpdate`` (yuan to fen, separated skills, certificate rows),
and the domain's field names mapped back to the form's inputs for inline errors."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict

from marketplace.errors import Invalid
from marketplace.workers.models import WorkerCreate, WorkerPublic, WorkerUpdate

# A record not checked with the person for this long is flagged in the list.
NEW_CERT_ROWS = 2
MAX_FEN = 2_000_000_000
_SEPARATORS = re.compile(r"[,，、;；\n]+")
_CERT_KEY = re.compile(r"^cert_(\d{1,2})_(type|number|expires_on|keep)$")
# Domain field → form input, where they differ.
_INPUT_OF = {"wage_min_fen": "wage_min", "wage_max_fen": "wage_max"}


class WorkerForm(BaseModel):
    """The add/edit form as posted; certificate rows arrive as ``cert_{n}_{part}``."""

    model_config = ConfigDict(extra="allow")

    name: str = ""
    id_number: str = ""
    phone: str = ""
    hukou_village_code: str = ""
    current_region_code: str = ""
    current_location_text: str = ""
    employment_status: str = "unknown"
    skills: str = ""
    wage_min: str = ""
    wage_max: str = ""
    wage_unit: str = ""
    available_from: str = ""
    mobility: str = ""
    training_wishes: str = ""
    consent_to_recommend: str = ""  # checkbox: "1" when ticked
    consent_method: str = ""
    note: str = ""

    def cert_rows(self) -> dict[int, dict[str, str]]:
        rows: dict[int, dict[str, str]] = {}
        for key, value in (self.model_extra or {}).items():
            match = _CERT_KEY.match(key)
            if match and isinstance(value, str):
                rows.setdefault(int(match.group(1)), {})[match.group(2)] = value.strip()
        return rows


class ReasonForm(BaseModel):
    reason: str = ""


class MergeForm(BaseModel):
    other_id: str = ""


class DismissForm(BaseModel):
    a: str = ""
    b: str = ""
    back: str = ""


def split_list(text: str) -> list[str]:
    """ "电焊、钢筋工, 木工" → ["电焊", "钢筋工", "木工"]."""
    return [part.strip() for part in _SEPARATORS.split(text) if part.strip()]


def yuan_to_fen(text: str, field: str) -> int | None:
    """ "250" or "250.5" yuan → 25000 or 25050 fen; blank → None."""
    raw = text.strip().replace(",", "").replace("，", "").removesuffix("元")
    if not raw:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise Invalid(field, "请填写金额（元），如 250 或 250.5") from None
    fen = amount * 100
    if not amount.is_finite() or fen != fen.to_integral_value():
        raise Invalid(field, "金额最多两位小数")
    if fen < 0 or fen > MAX_FEN:
        raise Invalid(field, "金额超出范围")
    return int(fen)


def fen_to_yuan(fen: int | None) -> str:
    return "" if fen is None else f"{Decimal(fen) / 100:f}".removesuffix(".00")


def _common(form: WorkerForm) -> dict[str, Any]:
    return {
        "name": form.name.strip(),
        "hukou_village_code": form.hukou_village_code.strip(),
        "current_region_code": form.current_region_code.strip() or None,
        "current_location_text": form.current_location_text.strip() or None,
        "employment_status": form.employment_status or "unknown",
        "skills": split_list(form.skills),
        "wage_min_fen": yuan_to_fen(form.wage_min, "wage_min"),
        "wage_max_fen": yuan_to_fen(form.wage_max, "wage_max"),
        "wage_unit": form.wage_unit or None,
        "available_from": form.available_from.strip() or None,
        "mobility": form.mobility or None,
        "training_wishes": split_list(form.training_wishes),
        "consent_to_recommend": form.consent_to_recommend == "1",
        "consent_method": form.consent_method or None,
        "note": form.note.strip() or None,
    }


def _new_certificates(form: WorkerForm) -> list[dict[str, Any]]:
    """Filled rows among the blank ones (a row with only an expiry date is an error
    for the domain to name)."""
    certs = []
    for _, row in sorted(form.cert_rows().items()):
        if "keep" in row:
            continue
        if row.get("type") or row.get("number"):
            certs.append(
                {
                    "type": row.get("type", ""),
                    "number": row.get("number", ""),
                    "expires_on": row.get("expires_on") or None,
                }
            )
    return certs


def to_create(form: WorkerForm) -> WorkerCreate:
    """Raises ``Invalid`` for a bad amount and pydantic's ``ValidationError``."""
    return WorkerCreate.model_validate(
        {
            **_common(form),
            "id_number": form.id_number.strip(),
            "phone": form.phone.strip() or None,
            "certificates": _new_certificates(form),
        }
    )


def to_update(form: WorkerForm, current: list[dict[str, Any]]) -> WorkerUpdate:
    """The edit form as an update. Sensitive values are never shown in the form: a
    blank ID number or phone keeps the stored one; stored certificates are kept
    unless their row's "keep" box was unticked. ``current`` holds them in clear."""
    values = _common(form)
    if form.id_number.strip():
        values["id_number"] = form.id_number.strip()
    if form.phone.strip():
        values["phone"] = form.phone.strip()
    rows = form.cert_rows()
    kept = [cert for n, cert in enumerate(current) if "keep" in rows.get(n, {})]
    added = _new_certificates(form)
    if added or len(kept) != len(current):
        values["certificates"] = [*kept, *added]
    return WorkerUpdate.model_validate(values)


def form_of(worker: WorkerPublic) -> WorkerForm:
    """The edit form filled from a (masked) record; sensitive inputs start blank."""
    return WorkerForm(
        name=worker.name,
        hukou_village_code=worker.hukou_village_code,
        current_region_code=worker.current_region_code or "",
        current_location_text=worker.current_location_text or "",
        employment_status=worker.employment_status,
        skills="、".join(worker.skills),
        wage_min=fen_to_yuan(worker.wage_min_fen),
        wage_max=fen_to_yuan(worker.wage_max_fen),
        wage_unit=worker.wage_unit or "",
        available_from=worker.available_from.isoformat() if worker.available_from else "",
        mobility=worker.mobility or "",
        training_wishes="、".join(worker.training_wishes),
        consent_to_recommend="1" if worker.consent_to_recommend else "",
        consent_method=worker.consent_method or "",
        note=worker.note or "",
        **{f"cert_{n}_keep": "1" for n in range(len(worker.certificates))},
    )


def input_errors(errors: dict[str, str]) -> dict[str, str]:
    """Domain field names to the form's inputs; amounts on the page are in yuan."""
    return {
        _INPUT_OF.get(field, field): message.replace("（金额单位为分）", "")
        for field, message in errors.items()
    }


def show_value(value: Any, field: str = "", labels: dict[str, dict[str, str]] | None = None) -> str:
    """A history value (JSON: text, number, flag, list, certificates) as a line of text:
    amounts in yuan, codes by their label."""
    if value is None or value == []:
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(
            f"{v.get('type', '')} {v.get('number', '')}" if isinstance(v, dict) else str(v)
            for v in value
        )
    if field in ("wage_min_fen", "wage_max_fen") and isinstance(value, int):
        return fen_to_yuan(value) + " 元"
    return (labels or {}).get(field, {}).get(str(value), str(value))
