"""Deterministic scale data for benchmarks: workers, brokers, organisations and jobs,
inserted straight into the tables (no services, no events), fast.

    from bench.scale_data import generate
    counts = await generate(url, workers=1_000_000, jobs=100_000, seed=5)

``url`` is a migrated database with the region tree loaded (``prepare`` does both).
The same ``seed`` always gives the same rows, so results are comparable between runs
and between the search and ranking benchmarks. Running it again on a database that
already holds the data does nothing. Workers spread over every village of Chongqing
(one active broker per village); skills and job titles come from the occupation
taxonomy's synonyms, so the text looks like what brokers type. About 60 s per
million workers on SQLite on the shared 2-core machine.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from marketplace.brokers.models import Broker
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.jobs.models import Job
from marketplace.organizations.models import Organization
from marketplace.regions import service as regions
from marketplace.regions.models import Region
from marketplace.workers.models import Worker
from matching.taxonomy import load_taxonomy

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "建国明华强伟芳丽军平刚杰勇敏静磊洋艳娟涛超秀英霞红玉兰桂珍凤春林海波成德福贵生荣才山林云飞鹏志文东兴发"
STATUSES = ["seeking"] * 4 + ["employed_local"] * 2 + ["employed_away"] * 3 + ["unknown"]
PLACES = [
    "广东省东莞市",
    "浙江省宁波市",
    "江苏省苏州市",
    "重庆市主城",
    "福建省泉州市",
    "本地",
    "新疆",
    "上海市",
]
JOB_SUFFIX = ["", "（长期）", "（包吃住）", "学徒", "（日结）", "师傅", "（急招）"]
JOB_TEXT = [
    "工地长期用工",
    "按月发薪，不拖欠",
    "提供住宿",
    "有经验者优先",
    "年龄 18–55 岁",
    "缴纳社保",
    "工作稳定",
]
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Counts:
    brokers: int
    workers: int
    organizations: int
    jobs: int


async def prepare(url: str) -> None:
    """Migrate and load the region tree (idempotent)."""
    from web.migrate import upgrade

    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with unit_of_work(session_factory(engine)) as session:
            await regions.load(session=session, rows=regions.read_csv(regions.bundled_csv()))
    finally:
        await engine.dispose()


async def _count(engine: AsyncEngine, model: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


async def _insert(
    engine: AsyncEngine, model: Any, rows: Iterator[dict[str, Any]], batch: int
) -> None:
    buf: list[dict[str, Any]] = []
    async with engine.begin() as conn:
        for row in rows:
            buf.append(row)
            if len(buf) >= batch:
                await conn.execute(insert(model), buf)
                buf = []
        if buf:
            await conn.execute(insert(model), buf)


def _skills(rng: random.Random, terms: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    picked = [terms[rng.randrange(len(terms))] for _ in range(rng.choice((1, 1, 2, 2, 3)))]
    return [t for t, _ in picked], list(dict.fromkeys(k for _, k in picked))


def worker_rows(
    n: int, seed: int, villages: list[str], broker_of: dict[str, int]
) -> Iterator[dict[str, Any]]:
    """``n`` worker rows; the i-th row is the same for the same seed."""
    rng = random.Random(seed)
    terms = [(term, occ.key) for occ in load_taxonomy() for term in occ.terms]
    for i in range(n):
        village = villages[rng.randrange(len(villages))]
        skills, keys = _skills(rng, terms)
        stamp = EPOCH + timedelta(seconds=i * 17)
        wage = rng.randrange(150, 450) * 100
        yield {
            "broker_id": broker_of[village],
            "name": rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2)))),
            "gender": rng.choice(("男", "女")),
            "birth_date": date(
                1960 + rng.randrange(45), 1 + rng.randrange(12), 1 + rng.randrange(28)
            ),
            "current_location_text": rng.choice(PLACES),
            "skills": skills,
            "occupation_codes": keys,
            "certificates": [],
            "wage_min_fen": wage * 100 // 100,
            "wage_max_fen": wage + 10000,
            "wage_unit": "day",
            "available_from": None
            if rng.random() < 0.5
            else date(2026, 1, 1) + timedelta(days=rng.randrange(400)),
            "mobility": rng.choice(("local", "chongqing", "anywhere")),
            "training_wishes": [],
            "consent_to_recommend": rng.random() < 0.8,
            "hukou_village_code": village,
            "employment_status": rng.choice(STATUSES),
            "created_at": stamp,
            "updated_at": stamp,
        }


def job_rows(
    n: int, seed: int, regions_: list[str], organizations: list[int]
) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed + 1)
    occupations = list(load_taxonomy())
    for i in range(n):
        occ = occupations[rng.randrange(len(occupations))]
        region = regions_[rng.randrange(len(regions_))]
        unit = rng.choice(("day", "day", "month", "hour"))
        low = {
            "day": rng.randrange(150, 400) * 100,
            "month": rng.randrange(2500, 9000) * 100,
            "hour": rng.randrange(20, 45) * 100,
        }[unit]
        stamp = EPOCH + timedelta(seconds=i * 97)
        status = (
            "published"
            if rng.random() < 0.7
            else rng.choice(("draft", "closed", "filled", "expired", "pending_review"))
        )
        title = rng.choice(occ.terms)[:20] + rng.choice(JOB_SUFFIX)
        yield {
            "organization_id": organizations[rng.randrange(len(organizations))],
            "title": title[:60],
            "description": "，".join(rng.sample(JOB_TEXT, 3)),
            "occupation_code": occ.key,
            "headcount": rng.randrange(1, 50),
            "wage_min_fen": low,
            "wage_max_fen": low + low // 4,
            "wage_unit": unit,
            "work_region_code": region,
            "work_location_text": None,
            "starts_on": date(2026, 1, 1) + timedelta(days=rng.randrange(500)),
            "certificates_required": [],
            "board": rng.random() < 0.5,
            "lodging": rng.random() < 0.5,
            "social_insurance": rng.random() < 0.5,
            "status": status,
            "flags": [],
            "flagged": False,
            "review_district_code": region[:6],
            "created_at": stamp,
            "updated_at": stamp,
        }


async def generate(
    url: str, *, workers: int = 1_000_000, jobs: int = 100_000, seed: int = 5, batch: int = 5000
) -> Counts:
    """Fill ``url`` with brokers (one per village), workers, organisations and jobs."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            villages = list(
                (
                    await conn.execute(
                        select(col(Region.code))
                        .where(col(Region.level) == "village")
                        .order_by(col(Region.code))
                    )
                ).scalars()
            )
            districts = list(
                (
                    await conn.execute(
                        select(col(Region.code))
                        .where(col(Region.level).in_(("district", "township")))
                        .order_by(col(Region.code))
                    )
                ).scalars()
            )
        if await _count(engine, Broker) == 0:
            await _insert(
                engine,
                Broker,
                (
                    {
                        "name": f"经纪人{v[-6:]}",
                        "village_code": v,
                        "status": "active",
                        "welfare_post_task_types": [],
                        "created_at": EPOCH,
                    }
                    for v in villages
                ),
                batch,
            )
        async with engine.connect() as conn:
            broker_of = {
                v: int(i)
                for i, v in (
                    await conn.execute(select(col(Broker.id), col(Broker.village_code)))
                ).all()
            }
        if await _count(engine, Worker) < workers:
            await _insert(engine, Worker, worker_rows(workers, seed, villages, broker_of), batch)
        if await _count(engine, Organization) == 0:
            rng = random.Random(seed + 2)
            await _insert(
                engine,
                Organization,
                (
                    {
                        "kind": "employer",
                        "name": f"重庆{rng.choice(('建工', '机电', '物流', '食品', '家政', '安保', '电子'))}有限公司{i}",
                        "credit_code": f"915000{i:012d}",
                        "contact_name": "联系人",
                        "contact_phone": "023-00000000",
                        "address": "重庆市",
                        "region_code": districts[i % len(districts)][:6],
                        "status": "verified",
                        "created_at": EPOCH,
                        "updated_at": EPOCH,
                    }
                    for i in range(2000)
                ),
                batch,
            )
        async with engine.connect() as conn:
            orgs = list(
                (
                    await conn.execute(select(col(Organization.id)).order_by(col(Organization.id)))
                ).scalars()
            )
        if await _count(engine, Job) < jobs:
            await _insert(
                engine, Job, job_rows(jobs, seed, districts, [int(o) for o in orgs]), batch
            )
        return Counts(
            brokers=await _count(engine, Broker),
            workers=await _count(engine, Worker),
            organizations=await _count(engine, Organization),
            jobs=await _count(engine, Job),
        )
    finally:
        await engine.dispose()
