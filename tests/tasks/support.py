"""Shared pieces of the task tests: places, evidence files made with Pillow, workers."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts import service as accounts
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.workers import service as worker_service
from marketplace.workers.models import WorkerCreate
from tests.marketplace.test_workers_rules import make_id

TOWNSHIP = "500103001"  # 七星岗街道, 渝中区
VILLAGE = "500103001003"  # 华一坡社区
VILLAGE_2 = "500103001006"  # 临华路社区
WUXI_VILLAGE = "500238001001"  # 九磷社区, 巫溪县

_serials = itertools.count(100)


def jpeg(color: tuple[int, int, int] = (200, 40, 40), *, gps: bool = True) -> bytes:
    image = Image.new("RGB", (64, 48), color)
    exif = Image.Exif()
    if gps:
        exif[0x8825] = {1: "N", 2: (29.0, 33.0, 36.0), 3: "E", 4: (106.0, 34.0, 12.0)}
        exif[0x8769] = {36867: "2026:11:20 10:30:00"}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def add_workers(
    sessions: async_sessionmaker[AsyncSession],
    cipher: DataCipher,
    keeper: Any,
    village: str,
    n: int,
) -> list[int]:
    ids = []
    async with unit_of_work(sessions) as session:
        for _ in range(n):
            serial = next(_serials)
            worker = await worker_service.register(
                session=session,
                actor=accounts.actor_for(keeper.user),
                cipher=cipher,
                data=WorkerCreate(
                    name="测试"
                    + "甲乙丙丁戊己庚辛壬癸"[serial % 10]
                    + "子丑寅卯辰巳午未申酉戌亥"[serial // 10 % 12],
                    id_number=make_id(date(1980, 1, 1) + timedelta(days=serial), serial % 1000),
                    hukou_village_code=village,
                ),
            )
            assert worker.id is not None
            ids.append(worker.id)
    return ids


def files(*items: tuple[str, bytes, str]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", item) for item in items]
