"""Forms and labels shared by the broker pages (public and officers')."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template
from pydantic import BaseModel, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.brokers import rules
from marketplace.brokers.applications import ApplicationInput
from web.pages.base import render

LABELS: dict[str, Any] = {
    "STATUS_LABELS": rules.STATUS_LABELS,
    "DECISION_LABELS": rules.DECISION_LABELS,
    "BACKGROUND_LABELS": rules.BACKGROUND_LABELS,
    "BROKER_STATUS_LABELS": rules.BROKER_STATUS_LABELS,
    "ACTION_LABELS": rules.ACTION_LABELS,
    "STEP_LABELS": rules.ROLE_STEP_LABELS,
    "ACTOR_LABELS": {
        "applicant": "申请人",
        "system": "系统（考试）",
        "village_officer": "村（社区）",
        "township_officer": "乡镇（街道）",
        "district_admin": "区县人力社保局",
        "city_admin": "市人力社保局",
    },
    "yuan": lambda fen: "" if fen is None else f"{fen / 100:.2f}",
}


def checked(value: Any) -> bool:
    return value not in (None, "", "0", "false", "off", False)


class ApplyForm(BaseModel):
    name: str = ""
    id_number: str = ""
    phone: str = ""
    district_code: str = ""
    township_code: str = ""
    village_code: str = ""
    background: str = ""
    computer_skills: bool = False
    smartphone_skills: bool = False
    enough_time: bool = False
    not_on_public_payroll: bool = False
    note: str = ""

    @field_validator(
        "computer_skills",
        "smartphone_skills",
        "enough_time",
        "not_on_public_payroll",
        mode="before",
    )
    @classmethod
    def _box(cls, value: Any) -> bool:
        return checked(value)

    def to_input(self) -> ApplicationInput:
        return ApplicationInput(
            name=self.name,
            id_number=self.id_number,
            phone=self.phone,
            village_code=self.village_code,
            background=self.background,
            computer_skills=self.computer_skills,
            smartphone_skills=self.smartphone_skills,
            enough_time=self.enough_time,
            not_on_public_payroll=self.not_on_public_payroll,
            note=self.note or None,
        )


class TrackForm(BaseModel):
    tracking_code: str = ""
    phone: str = ""


class ResubmitForm(ApplyForm):
    tracking_code: str = ""
    current_phone: str = ""


class DecisionForm(BaseModel):
    decision: str = ""
    comment: str = ""


class BulkForm(BaseModel):
    ids: list[int] = []
    decision: str = ""
    comment: str = ""
    status: str = ""

    @field_validator("ids", mode="before")
    @classmethod
    def _many(cls, value: Any) -> list[Any]:
        if value in (None, ""):
            return []
        return value if isinstance(value, list) else [value]


class BrokerForm(BaseModel):
    key_broker: bool = False
    welfare_post: bool = False
    welfare_post_task_types: str = ""
    welfare_post_monthly_yuan: str = ""
    assigned_villages: str = ""

    @field_validator("key_broker", "welfare_post", mode="before")
    @classmethod
    def _box(cls, value: Any) -> bool:
        return checked(value)


class StatusForm(BaseModel):
    action: str = ""
    reason: str = ""


async def show(
    request: Request[Any, Any, Any], db: AsyncSession, name: str, **ctx: Any
) -> Template:
    return await render(request, db, name, **LABELS, **ctx)
