"""Demo organisations and jobs for ``laowu demo``: deterministic from a seed, loaded once.

Employers and agencies in the three demo districts and a few others (most verified,
some pending, two refused); the demo employer and agency accounts of each district
belong to one of them. 2,000 jobs with realistic titles and wages: in the demo
districts, elsewhere in Chongqing, and in 广东/浙江 cities recruited for by Chongqing
agencies (劳务输出), in every state; a few carry the flags the review queue shows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import SYSTEM
from marketplace.accounts.models import User
from marketplace.clock import utcnow
from marketplace.events import OutboxEvent
from marketplace.jobs import rules
from marketplace.jobs.models import Job, JobStatus
from marketplace.jobs.service import EVENT, today_local
from marketplace.organizations.credit_code import ALPHABET, check_char
from marketplace.organizations.models import (
    AgencyAuthorization,
    Organization,
    OrganizationKind,
    OrganizationMember,
    OrganizationStatus,
)
from marketplace.regions.models import Region, RegionLevel

JOBS = 2_000
DEMO_DISTRICTS = {"yuzhong": "500103", "wuxi": "500238", "wanzhou": "500101"}
OTHER_DISTRICTS = ("500105", "500112", "500107", "500106", "500102", "500118", "500113")
# 劳务输出 destinations: (GB/T 2260 city code, province and city)
ELSEWHERE = (
    ("440300", "广东省深圳市"),
    ("441900", "广东省东莞市"),
    ("440100", "广东省广州市"),
    ("440600", "广东省佛山市"),
    ("330200", "浙江省宁波市"),
    ("330100", "浙江省杭州市"),
    ("330300", "浙江省温州市"),
    ("330782", "浙江省义乌市"),
)


@dataclass(frozen=True)
class Title:
    title: str
    occupation: str  # taxonomy key (tests check it is what the normaliser gives)
    unit: str
    low: int  # fen
    high: int
    certificate: str | None = None
    text: str = ""


# fmt: off
TITLES = (
    Title("钢筋工", "rebar_worker", "day", 28_000, 40_000, None, "扎钢筋，按图施工，点工或包工均可"),
    Title("木工（支模）", "formwork_carpenter", "day", 30_000, 42_000, None, "支模拆模，有高层经验"),
    Title("电焊工", "welder", "day", 30_000, 45_000, "焊工证", "二保焊、氩弧焊，持证上岗"),
    Title("架子工", "scaffolder", "day", 30_000, 40_000, "架子工证", "外架搭设，持特种作业证"),
    Title("砌筑工", "bricklayer", "day", 26_000, 35_000, None, "砌砖砌块，小工配合"),
    Title("建筑小工", "construction_labourer", "day", 18_000, 25_000, None, "工地杂工，搬运清理"),
    Title("水电工", "plumber_electrician", "day", 28_000, 38_000, "电工证", "家装水电改造"),
    Title("塔吊司机", "tower_crane_operator", "month", 900_000, 1_300_000, "塔式起重机司机证", "两班倒"),
    Title("挖掘机司机", "excavator_operator", "month", 800_000, 1_200_000, None, "熟练操作，能修简单故障"),
    Title("普工", "general_worker", "month", 450_000, 650_000, None, "流水线作业，长白班，加班另计"),
    Title("电子厂普工", "general_worker", "hour", 2_200, 2_800, None, "无尘车间，两班倒，小时工"),
    Title("质检员", "quality_inspector", "month", 500_000, 650_000, None, "来料和成品检验，会看图纸优先"),
    Title("数控车工", "cnc_lathe_operator", "month", 700_000, 1_000_000, None, "会编程调机"),
    Title("注塑工", "injection_moulder", "month", 500_000, 700_000, None, "看机、修边、包装"),
    Title("汽车装配工", "auto_assembler", "month", 550_000, 750_000, None, "整车总装，站立作业"),
    Title("缝纫工", "sewing_machinist", "piece", 100, 300, None, "平车、包缝，计件多劳多得"),
    Title("包装工", "packer", "month", 420_000, 550_000, None, "成品包装贴标"),
    Title("火锅底料炒料工", "hotpot_base_maker", "month", 500_000, 700_000, "健康证", "炒料、称重、灌装"),
    Title("快递分拣员", "sorter", "hour", 2_100, 2_600, None, "夜班分拣，旺季加班"),
    Title("装卸工", "loader_unloader", "day", 20_000, 30_000, None, "仓库装卸车，计件另补"),
    Title("仓管员", "warehouse_keeper", "month", 450_000, 600_000, None, "出入库登记，会用电脑"),
    Title("叉车司机", "forklift_driver", "month", 550_000, 750_000, "叉车证", "仓库叉车作业"),
    Title("货车司机", "truck_driver", "month", 800_000, 1_200_000, "B2驾照", "市内配送或跑长途"),
    Title("外卖骑手", "food_delivery_rider", "piece", 500, 900, None, "按单计酬，电动车公司可租"),
    Title("养老护理员", "elderly_carer", "month", 450_000, 650_000, "养老护理员证", "养老院照护失能老人"),
    Title("住家保姆", "housekeeper", "month", 500_000, 700_000, None, "做饭、打扫、照顾老人"),
    Title("月嫂", "maternity_carer", "month", 800_000, 1_500_000, "母婴护理证", "产妇和新生儿护理"),
    Title("中餐厨师", "chinese_cook", "month", 600_000, 900_000, "健康证", "川菜，会做火锅优先"),
    Title("餐厅服务员", "waiter", "month", 380_000, 480_000, "健康证", "点单传菜，做六休一"),
    Title("洗碗工", "dishwasher", "month", 320_000, 380_000, None, "后厨洗碗保洁"),
    Title("帮厨", "kitchen_helper", "month", 380_000, 450_000, "健康证", "切配洗菜"),
    Title("保安员", "security_guard", "month", 350_000, 450_000, "保安员证", "小区门岗巡逻，12小时班"),
    Title("保洁员", "cleaner", "month", 300_000, 380_000, None, "写字楼保洁"),
    Title("环卫工", "street_sweeper", "month", 280_000, 350_000, None, "道路清扫"),
    Title("采茶工", "tea_picker", "day", 12_000, 18_000, None, "春茶采摘，按斤另有奖励"),
    Title("果园采摘工", "harvester", "day", 12_000, 16_000, None, "柑橘采摘装箱"),
    Title("畜禽养殖员", "livestock_keeper", "month", 450_000, 600_000, None, "生猪养殖场饲养"),
    Title("收银员", "cashier", "month", 330_000, 420_000, None, "超市收银"),
    Title("汽车维修工", "auto_mechanic", "month", 550_000, 900_000, None, "机修、保养"),
)
# fmt: on

EMPLOYER_WORDS = (
    "鑫达", "宏远", "恒通", "佳华", "渝丰", "川江", "长运", "金城", "瑞祥", "兴旺", "华盛", "盛源",
    "德信", "福顺", "永泰", "嘉陵", "巴渝", "三峡", "万通", "平安", "新世纪", "天府", "锦程", "聚力",
)  # fmt: skip
INDUSTRIES = (
    "建筑劳务", "建设工程", "机械制造", "电子科技", "汽车零部件", "食品", "物流", "家政服务",
    "餐饮管理", "物业管理", "保安服务", "农业开发", "服饰", "养老服务", "商贸",
)  # fmt: skip
EXTERNAL = ("电子", "精密五金", "服装", "玩具", "包装材料", "小商品")
STATES = (
    (JobStatus.published, 0.60),
    (JobStatus.pending_review, 0.10),
    (JobStatus.draft, 0.10),
    (JobStatus.filled, 0.07),
    (JobStatus.closed, 0.06),
    (JobStatus.expired, 0.07),
)
# Phrases a few pending or draft demo jobs carry, so the review queue has flags to show.
UNLAWFUL = ("限男性，", "限本地户口，", "入职交押金300元，", "女性优先，已婚已育，", "体检费自理，")


def _credit_code(rng: random.Random, division: str) -> str:
    first17 = "91" + division + "".join(rng.choice(ALPHABET) for _ in range(9))
    return first17 + check_char(first17)


def _org(
    rng: random.Random, kind: str, region: str, name: str, status: OrganizationStatus
) -> Organization:
    now = utcnow()
    return Organization(
        kind=kind,
        name=name,
        credit_code=_credit_code(rng, region[:6]),
        contact_name=rng.choice("王李张刘陈杨黄赵周吴")
        + rng.choice(("经理", "主管", "女士", "先生")),
        contact_phone=f"1{rng.choice('3578')}{rng.randrange(10**9):09d}",
        address=f"{name[:2]}路 {rng.randrange(1, 300)} 号",
        licence_no=f"渝人社服证字〔2024〕第{rng.randrange(100000):05d}号"
        if kind == OrganizationKind.agency
        else None,
        region_code=region,
        status=status,
        status_reason="营业执照已注销" if status == OrganizationStatus.rejected else None,
        verified_at=now if status == OrganizationStatus.verified else None,
    )


async def _organizations(
    session: AsyncSession, rng: random.Random
) -> tuple[dict[str, list[Organization]], dict[str, Organization], list[Organization]]:
    """Employers by district, the agency of each demo district, and the coastal
    employers the agencies recruit for."""
    employers: dict[str, list[Organization]] = {}
    agencies: dict[str, Organization] = {}
    names: set[str] = set()

    def name(prefix: str, words: tuple[str, ...], suffix: str) -> str:
        while True:
            candidate = f"{prefix}{rng.choice(EMPLOYER_WORDS)}{rng.choice(words)}{suffix}"
            if candidate not in names:
                names.add(candidate)
                return candidate

    for district in (*DEMO_DISTRICTS.values(), *OTHER_DISTRICTS):
        count = 12 if district in DEMO_DISTRICTS.values() else 4
        rows = []
        for n in range(count):
            status = OrganizationStatus.verified
            if n == count - 1:
                status = OrganizationStatus.pending
            elif n == count - 2 and district in DEMO_DISTRICTS.values():
                status = (
                    OrganizationStatus.pending
                    if district != "500238"
                    else OrganizationStatus.rejected
                )
            rows.append(
                _org(
                    rng,
                    OrganizationKind.employer,
                    district,
                    name("重庆", INDUSTRIES, "有限公司"),
                    status,
                )
            )
        employers[district] = rows
    for district in DEMO_DISTRICTS.values():
        agencies[district] = _org(
            rng, OrganizationKind.agency, district, name("重庆", ("人力资源",), "有限公司"),
            OrganizationStatus.verified,
        )  # fmt: skip
    external = [
        _org(
            rng, OrganizationKind.employer, rng.choice(list(DEMO_DISTRICTS.values())),
            name(place[3:5], EXTERNAL, "有限公司"), OrganizationStatus.verified,
        )
        for _, place in ELSEWHERE
    ]  # fmt: skip
    session.add_all(
        [*(o for rows in employers.values() for o in rows), *agencies.values(), *external]
    )
    await session.flush()
    return employers, agencies, external


async def _link_accounts(
    session: AsyncSession,
    employers: dict[str, list[Organization]],
    agencies: dict[str, Organization],
    external: list[Organization],
) -> None:
    today = today_local()
    for key, district in DEMO_DISTRICTS.items():
        users = await session.execute(
            select(User).where(col(User.username).in_([f"{key}_employer", f"{key}_agency"]))
        )
        for user in users.scalars():
            org = employers[district][0] if user.role == "employer" else agencies[district]
            if org.id is not None and user.id is not None:
                session.add(OrganizationMember(organization_id=org.id, user_id=user.id))
    grants = [(employer, agencies[employer.region_code[:6]]) for employer in external] + [
        (employer, agencies[district])
        for district in DEMO_DISTRICTS.values()
        for employer in employers[district][1:3]
    ]
    for n, (employer, agency) in enumerate(grants, start=1):
        session.add(
            AgencyAuthorization(
                employer_id=employer.id or 0,
                agency_id=agency.id or 0,
                document_ref=f"委托招聘授权书 2026-{n:03d}",
                valid_from=today - timedelta(days=60),
                valid_until=today + timedelta(days=305),
            )
        )


def _state(rng: random.Random) -> JobStatus:
    pick = rng.random()
    for state, share in STATES:
        if pick < share:
            return state
        pick -= share
    return JobStatus.published


def _job(
    rng: random.Random,
    employer: Organization,
    agency: Organization | None,
    place: tuple[str, str | None],
    today: date,
) -> Job:
    kind = rng.choice(TITLES)
    state = _state(rng)
    step = {"month": 10_000, "day": 1_000, "hour": 100}.get(kind.unit, 10)  # round figures
    spread = (kind.high - kind.low) // step
    low = kind.low + step * rng.randrange(0, max(1, spread // 2))
    high = max(low, kind.high - step * rng.randrange(0, max(1, spread // 3)))
    if state == JobStatus.expired:
        starts = today - timedelta(days=rng.randrange(60, 150))
        ends: date | None = today - timedelta(days=rng.randrange(1, 30))
    elif state in (JobStatus.closed, JobStatus.filled):
        starts = today - timedelta(days=rng.randrange(10, 90))
        ends = today + timedelta(days=rng.randrange(10, 120))
    else:
        starts = today + timedelta(days=rng.randrange(-20, 45))
        ends = None if rng.random() < 0.3 else starts + timedelta(days=rng.randrange(60, 360))
    board, lodging = rng.random() < 0.6, rng.random() < 0.55
    text = kind.text
    if state in (JobStatus.pending_review, JobStatus.draft) and rng.random() < 0.25:
        text = rng.choice(UNLAWFUL) + text
    if rng.random() < 0.5:
        text += "，" + ("男女不限" if rng.random() < 0.5 else "不限户籍")
    text += "。" + ("包吃包住。" if board and lodging else ("包住。" if lodging else ""))
    age_max = rng.choice((None, 50, 55, 60))
    job = Job(
        organization_id=employer.id or 0,
        agency_id=agency.id if agency else None,
        title=kind.title,
        description=text,
        occupation_code=kind.occupation,
        headcount=rng.choice((1, 2, 3, 5, 5, 8, 10, 20, 30, 50)),
        wage_min_fen=low,
        wage_max_fen=high,
        wage_unit=kind.unit,
        pay_day=rng.choice((10, 15, 20, 25)) if kind.unit in ("month", "piece") else None,
        work_region_code=place[0],
        work_location_text=place[1],
        address=f"{place[1] or ''}{rng.choice(('工业园', '工地', '物流园', '镇上', '城区'))}",
        starts_on=starts,
        ends_on=ends,
        certificates_required=[kind.certificate] if kind.certificate else [],
        age_min=18,
        age_max=age_max,
        board=board,
        lodging=lodging,
        social_insurance=kind.unit == "month" and rng.random() < 0.7,
        contact=f"{employer.contact_name} {employer.contact_phone}",
        fee_fixed_fen=rng.choice((None, 20_000, 30_000, 50_000)) if rng.random() < 0.5 else None,
        status=state,
        review_district_code=place[0][:6]
        if place[0].startswith("50")
        else employer.region_code[:6],
    )
    if job.fee_fixed_fen is None and rng.random() < 0.3:
        job.fee_share_bp = rng.choice((500, 800, 1000))
    flags = rules.all_flags(
        title=job.title,
        description=job.description,
        certificates=job.certificates_required,
        wage_min_fen=job.wage_min_fen,
        wage_max_fen=job.wage_max_fen,
        wage_unit=job.wage_unit,
        work_region_code=job.work_region_code,
        age_max=job.age_max,
    )
    job.flags = [flag.as_dict() for flag in flags]
    job.flagged = bool(flags)
    now = utcnow()
    if state != JobStatus.draft:
        job.submitted_at = now - timedelta(days=rng.randrange(0, 20))
    if state not in (JobStatus.draft, JobStatus.pending_review):
        job.published_at = job.reviewed_at = job.submitted_at
    if state in (JobStatus.filled, JobStatus.closed, JobStatus.expired):
        job.closed_at = now
    return job


def _place(
    rng: random.Random, district: str, villages: dict[str, list[str]]
) -> tuple[str, str | None]:
    """A district, or now and then a township inside it."""
    inner = villages.get(district) or []
    if inner and rng.random() < 0.3:
        return rng.choice(inner), None
    return district, None


async def demo_jobs(session: AsyncSession, *, seed: int) -> int:
    """Load the demo organisations and jobs; returns how many jobs were added (0 when
    they are there already)."""
    if (await session.execute(select(func.count()).select_from(Organization))).scalar_one():
        return 0
    rng = random.Random(f"{seed}:jobs")  # noqa: S311  (demo data, not secrets)
    employers, agencies, external = await _organizations(session, rng)
    await _link_accounts(session, employers, agencies, external)
    townships = await _townships(session, [*DEMO_DISTRICTS.values(), *OTHER_DISTRICTS])
    today = today_local()
    shares = [(d, 0.18) for d in DEMO_DISTRICTS.values()] + [(d, 0.045) for d in OTHER_DISTRICTS]
    jobs: list[Job] = []
    for n in range(JOBS):
        if n % 7 == 6:  # 劳务输出: coastal employers through the Chongqing agencies
            employer = external[n // 7 % len(external)]
            agency = agencies[employer.region_code[:6]]
            code, text = ELSEWHERE[external.index(employer)]
            jobs.append(_job(rng, employer, agency, (code, text), today))
            continue
        district = rng.choices([d for d, _ in shares], weights=[w for _, w in shares])[0]
        pool = employers[district]  # mostly verified employers post
        weights = [1.0 if o.status == OrganizationStatus.verified else 0.15 for o in pool]
        employer = rng.choices(pool, weights=weights)[0]
        job = _job(rng, employer, None, _place(rng, district, townships), today)
        if employer.status != OrganizationStatus.verified:
            job.status = JobStatus.draft  # unverified organisations draft only
            job.submitted_at = job.published_at = job.reviewed_at = job.closed_at = None
        jobs.append(job)
    session.add_all(jobs)
    await session.flush()
    session.add_all(
        OutboxEvent(
            name=EVENT,
            payload={
                "job_id": job.id,
                "action": "publish" if job.status == JobStatus.published else "create",
            },
        )
        for job in jobs
    )
    await audit.record(
        session=session,
        actor=SYSTEM,
        action="demo.jobs",
        object_type="job",
        detail={
            "jobs": len(jobs),
            "organizations": sum(map(len, employers.values())) + len(agencies) + len(external),
        },
    )
    await session.flush()
    return len(jobs)


async def _townships(session: AsyncSession, districts: list[str]) -> dict[str, list[str]]:
    rows = await session.execute(
        select(col(Region.code)).where(
            col(Region.level) == RegionLevel.township,
            col(Region.parent_code).in_(districts),
        )
    )
    found: dict[str, list[str]] = {}
    for code in rows.scalars():
        found.setdefault(code[:6], []).append(code)
    return found
