"""The job form as a phone posts it, turned into ``JobCreate``/``JobUpdate``: amounts
in yuan, certificates separated by 、, the place as a district or a finer code, the fee
as a type and one value; and the domain's field names mapped back to the inputs."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

from marketplace.errors import Invalid
from marketplace.jobs.models import JobCreate, JobPublic, JobUpdate
from web.pages.worker_forms import fen_to_yuan, split_list, yuan_to_fen

# Domain field → form input, where they differ.
_INPUT_OF = {
    "wage_min_fen": "wage_min",
    "wage_max_fen": "wage_max",
    "fee_fixed_fen": "fee_value",
    "fee_share_bp": "fee_value",
    "certificates_required": "certificates",
}
OUTSIDE = "outside"  # the district select's "重庆市外" option


class JobForm(BaseModel):
    organization_id: str = ""
    title: str = ""
    description: str = ""
    headcount: str = ""
    wage_min: str = ""
    wage_max: str = ""
    wage_unit: str = "month"
    pay_day: str = ""
    work_district: str = ""
    work_region_code: str = ""
    work_location_text: str = ""
    address: str = ""
    starts_on: str = ""
    ends_on: str = ""
    certificates: str = ""
    age_min: str = ""
    age_max: str = ""
    board: str = ""
    lodging: str = ""
    social_insurance: str = ""
    contact: str = ""
    fee_kind: str = ""  # "" | fixed | share
    fee_value: str = ""


def _int(text: str, field: str) -> int | None:
    raw = text.strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise Invalid(field, "请填写整数")
    return int(raw)


def _share_bp(text: str) -> int | None:
    """ "8" or "8.5" percent → 800 or 850 basis points."""
    raw = text.strip().removesuffix("%").removesuffix("％")
    if not raw:
        return None
    try:
        percent = Decimal(raw)
    except InvalidOperation:
        raise Invalid("fee_value", "请填写百分比，如 8 或 8.5") from None
    bp = percent * 100
    if not percent.is_finite() or bp != bp.to_integral_value() or not 0 <= bp <= 10_000:
        raise Invalid("fee_value", "比例应在 0 到 100 之间，最多两位小数")
    return int(bp)


def _values(form: JobForm) -> dict[str, Any]:
    code = form.work_region_code.strip()
    if not code and form.work_district != OUTSIDE:
        code = form.work_district.strip()
    if not code:
        raise Invalid(
            "work_region_code", "请选择工作地点所在区县；重庆市外请填写城市的 6 位行政区划代码"
        )
    fee_fixed = fee_share = None
    if form.fee_kind == "fixed":
        fee_fixed = yuan_to_fen(form.fee_value, "fee_value")
        if fee_fixed is None:
            raise Invalid("fee_value", "请填写每人服务费金额（元）")
    elif form.fee_kind == "share":
        fee_share = _share_bp(form.fee_value)
        if fee_share is None:
            raise Invalid("fee_value", "请填写占首月工资的百分比")
    return {
        "title": form.title.strip(),
        "description": form.description.strip(),
        "headcount": _int(form.headcount, "headcount"),
        "wage_min_fen": yuan_to_fen(form.wage_min, "wage_min"),
        "wage_max_fen": yuan_to_fen(form.wage_max, "wage_max")
        if form.wage_max.strip()
        else yuan_to_fen(form.wage_min, "wage_min"),
        "wage_unit": form.wage_unit or None,
        "pay_day": _int(form.pay_day, "pay_day"),
        "work_region_code": code,
        "work_location_text": form.work_location_text.strip() or None,
        "address": form.address.strip() or None,
        "starts_on": form.starts_on.strip() or None,
        "ends_on": form.ends_on.strip() or None,
        "certificates_required": split_list(form.certificates),
        "age_min": _int(form.age_min, "age_min"),
        "age_max": _int(form.age_max, "age_max"),
        "board": form.board == "1",
        "lodging": form.lodging == "1",
        "social_insurance": form.social_insurance == "1",
        "contact": form.contact.strip() or None,
        "fee_fixed_fen": fee_fixed,
        "fee_share_bp": fee_share,
    }


def to_create(form: JobForm) -> JobCreate:
    """Raises ``Invalid`` for a bad amount and pydantic's ``ValidationError``."""
    return JobCreate.model_validate(
        {**_values(form), "organization_id": _int(form.organization_id, "organization_id")}
    )


def to_update(form: JobForm, published: bool) -> JobUpdate:
    """A draft changes every field; a published job only what needs no new review."""
    if published:  # the other inputs are disabled on the page and not posted
        return JobUpdate.model_validate(
            {
                "headcount": _int(form.headcount, "headcount"),
                "ends_on": form.ends_on.strip() or None,
                "contact": form.contact.strip() or None,
                "pay_day": _int(form.pay_day, "pay_day"),
            }
        )
    return JobUpdate.model_validate(_values(form))


def form_of(job: JobPublic, districts: set[str]) -> JobForm:
    code = job.work_region_code
    in_list = code in districts
    fee_kind = (
        "fixed"
        if job.fee_fixed_fen is not None
        else ("share" if job.fee_share_bp is not None else "")
    )
    fee_value = (
        fen_to_yuan(job.fee_fixed_fen)
        if job.fee_fixed_fen is not None
        else (
            f"{Decimal(job.fee_share_bp) / 100:f}".removesuffix(".00")
            if job.fee_share_bp is not None
            else ""
        )
    )
    return JobForm(
        organization_id=str(job.organization_id),
        title=job.title,
        description=job.description,
        headcount=str(job.headcount),
        wage_min=fen_to_yuan(job.wage_min_fen),
        wage_max=fen_to_yuan(job.wage_max_fen),
        wage_unit=job.wage_unit,
        pay_day=str(job.pay_day or ""),
        work_district=code if in_list else (code[:6] if code.startswith("50") else OUTSIDE),
        work_region_code="" if in_list else code,
        work_location_text=job.work_location_text or "",
        address=job.address or "",
        starts_on=job.starts_on.isoformat(),
        ends_on=job.ends_on.isoformat() if job.ends_on else "",
        certificates="、".join(job.certificates_required),
        age_min=str(job.age_min or ""),
        age_max=str(job.age_max or ""),
        board="1" if job.board else "",
        lodging="1" if job.lodging else "",
        social_insurance="1" if job.social_insurance else "",
        contact=job.contact or "",
        fee_kind=fee_kind,
        fee_value=fee_value,
    )


def input_errors(errors: dict[str, str]) -> dict[str, str]:
    return {_INPUT_OF.get(field, field): message for field, message in errors.items()}
