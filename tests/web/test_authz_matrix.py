"""The authorisation matrix, generated from the app's route table.

Every HTTP route of the app (except ``/static`` and the ``/schema`` docs) must have
a declared rule below; a new route without one fails ``test_every_route_is_declared``
with its method and path. For each API route every role is exercised against an
object in its own region and one in another district, plus an anonymous caller, and
the status must be the one declared. Page routes are declared by path prefix: the
anonymous outcome is checked exactly, and every role's GET must neither fail (5xx)
nor bounce to the login page; the page tests check each role's view in depth.

The callers all sit in 渝中区: the city admin (scope 重庆市), the district-level roles
(渝中区), the township officer (the first township of 渝中区) and the village-level
roles (the first village of that township). "own" objects live in that village,
"other" objects in a village of 巫溪县.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import SYSTEM, Role
from marketplace.accounts import rules
from marketplace.accounts import service as accounts
from marketplace.accounts.models import AuthSession, User
from marketplace.brokers import applications as broker_applications
from marketplace.brokers.models import Broker
from marketplace.clock import local, utcnow
from marketplace.crypto import new_data_key
from marketplace.db import unit_of_work
from marketplace.notifications import service as inbox
from marketplace.organizations.models import OrganizationMember
from marketplace.regions.models import Region
from marketplace.scoring import service as scoring
from marketplace.scoring.models import BrokerScore
from marketplace.scoring.rules import DEFAULT_MODEL, Period
from marketplace.workers import service as worker_service
from marketplace.workers.identity import check_char
from marketplace.workers.models import WorkerCreate
from tests.conftest import WUXI, YUZHONG
from tests.tasks import matrix_objects as task_objects
from tests.web.jobs_matrix_scene import JobsScene, make_jobs_scene
from tests.web.jobs_matrix_scene import of as jobs_of
from tests.web.matrix_matching import add_matching, matching_values
from tests.web.training_matrix import make_training_scene, question_body
from web.app import create_app
from web.settings import DatabaseSettings, SecuritySettings, Settings

# Column order of every row in the tables below.
ROLES: tuple[Role, ...] = (
    Role.city_admin,
    Role.district_admin,
    Role.township_officer,
    Role.village_officer,
    Role.broker,
    Role.employer,
    Role.agency,
    Role.finance,
    Role.auditor,
)
OWN, OTHER = "own", "other"
SKIPPED_PREFIXES = ("/static", "/schema")


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at minimal cost: the matrix tests access rules, not hashing strength."""
    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


# --- the scene -----------------------------------------------------------------------


@dataclass
class Caller:
    role: Role
    user_id: int
    username: str
    token: str
    cookie: str
    notification_id: int


@dataclass
class Scene:
    district: dict[str, str]
    township: dict[str, str]
    village: dict[str, str]
    target_user: dict[str, int]
    other_notification: int
    login_probe: tuple[str, str]
    enrol_probe: tuple[str, str]
    callers: dict[Role, Caller] = field(default_factory=dict)
    sessions: async_sessionmaker[AsyncSession] | None = None
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    # Worker records: one (plus a spare to merge or dismiss with) in each village.
    worker: dict[str, int] = field(default_factory=dict)
    spare_worker: dict[str, int] = field(default_factory=dict)
    # Broker applications (submitted) and broker records, one in each village.
    application: dict[str, int] = field(default_factory=dict)
    application_track: tuple[str, str] = ("", "")
    broker: dict[str, int] = field(default_factory=dict)
    # Training, the question bank and exams (tests/web/training_matrix.py).
    training: dict[str, int] = field(default_factory=dict)
    course: dict[str, int] = field(default_factory=dict)
    material: dict[str, int] = field(default_factory=dict)
    exam: dict[str, int] = field(default_factory=dict)
    question: int = 0
    exam_question: int = 0
    # Organisations and jobs (tests/web/jobs_matrix_scene.py).
    jobs: JobsScene | None = None
    # Matching (docs/matching.md): a published job, a consenting worker to recommend,
    # a pending recommendation and a placement per scope (tests/web/matrix_matching.py).
    job: dict[str, int] = field(default_factory=dict)
    match_worker: dict[str, int] = field(default_factory=dict)
    recommendation: dict[str, int] = field(default_factory=dict)
    placement: dict[str, int] = field(default_factory=dict)
    # Public-service tasks: a task waiting for review, its evidence, a spot check.
    tasks: dict[str, dict[str, int]] = field(default_factory=dict)
    # Billing objects by kind and scope (pools, requests, accounts, batches, brokers).
    billing: dict[str, dict[str, int]] = field(default_factory=dict)
    # Scores of this month: own = the broker caller's, other = a broker in 巫溪县.
    score: dict[str, int] = field(default_factory=dict)
    scored_broker: dict[str, int] = field(default_factory=dict)
    period: str = ""


async def _first_child(session: AsyncSession, parent: str) -> str:
    code = (
        await session.execute(
            select(col(Region.code))
            .where(col(Region.parent_code) == parent)
            .order_by(col(Region.code))
            .limit(1)
        )
    ).scalar_one()
    return str(code)


async def mint_token(sessions: async_sessionmaker[AsyncSession], user_id: int, kind: str) -> str:
    """An open session for ``user_id``, as a successful login would leave it."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with unit_of_work(sessions) as session:
        session.add(
            AuthSession(
                token_hash=accounts.hash_token(token),
                user_id=user_id,
                kind=kind,
                created_at=now,
                last_seen_at=now,
                expires_at=now + rules.ABSOLUTE_TIMEOUT,
            )
        )
    return token


async def build_scene(
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    client: AsyncTestClient[Litestar],
) -> Scene:
    async with sessions() as session:
        township = {OWN: await _first_child(session, YUZHONG)}
        township[OTHER] = await _first_child(session, WUXI)
        village = {scope: await _first_child(session, code) for scope, code in township.items()}
    scope_of = {
        Role.city_admin: "50",
        Role.district_admin: YUZHONG,
        Role.township_officer: township[OWN],
        Role.village_officer: village[OWN],
        Role.broker: village[OWN],
        Role.employer: YUZHONG,
        Role.agency: YUZHONG,
        Role.finance: YUZHONG,
        Role.auditor: YUZHONG,
    }
    own_target = await make_account("broker", village[OWN])
    other_target = await make_account("broker", village[OTHER])
    workers_made = {
        scope: await _make_workers(sessions, client, target, village[scope], scope)
        for scope, target in ((OWN, own_target), (OTHER, other_target))
    }
    login_probe = await make_account("employer", YUZHONG)
    enrol_probe = await make_account("finance", YUZHONG)
    async with unit_of_work(sessions) as session:
        # Not yet enrolled: every call to the enrolment endpoint hands out a secret.
        await session.execute(
            update(User)
            .where(col(User.id) == enrol_probe.id)
            .values(totp_secret_enc=None, totp_confirmed=False)
        )
        other_note = await inbox.send(session=session, user_id=other_target.id, title="他人的消息")
    assert other_note is not None
    assert other_note.id is not None
    scene = Scene(
        district={OWN: YUZHONG, OTHER: WUXI},
        township=township,
        village=village,
        target_user={OWN: own_target.id, OTHER: other_target.id},
        other_notification=other_note.id,
        login_probe=(login_probe.username, login_probe.password),
        enrol_probe=(enrol_probe.username, enrol_probe.password),
        sessions=sessions,
        worker={scope: made[0] for scope, made in workers_made.items()},
        spare_worker={scope: made[1] for scope, made in workers_made.items()},
        tasks=await task_objects.make(
            sessions,
            client.app.state.settings.media_dir,
            {OWN: own_target, OTHER: other_target},
            village,
        ),
    )
    await _make_broker_scene(scene, client)
    for role in ROLES:
        account = await make_account(role.value, scope_of[role])
        body = {"username": account.username, "password": account.password}
        if account.totp_secret:
            body["otp"] = account.otp() or ""
        response = await client.post("/api/v1/auth/login", json=body)
        assert response.status_code == 200, response.text
        async with unit_of_work(sessions) as session:
            note = await inbox.send(session=session, user_id=account.id, title="本人的消息")
        assert note is not None
        assert note.id is not None
        scene.callers[role] = Caller(
            role=role,
            user_id=account.id,
            username=account.username,
            token=response.json()["access_token"],
            cookie=await mint_token(sessions, account.id, "cookie"),
            notification_id=note.id,
        )
    await make_training_scene(scene, client)
    scene.jobs = await make_jobs_scene(
        sessions,
        scene.district,
        scene.callers[Role.employer].user_id,
        scene.callers[Role.agency].user_id,
        {
            scope: (await make_account("employer", code)).id
            for scope, code in scene.district.items()
        },
    )
    await add_matching(scene, client.app.state.cipher, _matrix_id)
    await _billing_scene(sessions, scene, make_account, client)
    await _score_scene(scene, sessions, other_target.id)
    return scene


async def _make_broker_scene(scene: Scene, client: AsyncTestClient[Litestar]) -> None:
    assert scene.sessions is not None
    async with unit_of_work(scene.sessions) as session:
        for scope in (OWN, OTHER):
            made = await broker_applications.submit(
                session=session,
                data=broker_applications.ApplicationInput(**_new_application(scene, scope, 0)),
                cipher=client.app.state.cipher,
            )
            assert made.id is not None
            scene.application[scope] = made.id
            if scope == OWN:
                scene.application_track = (made.tracking_code, "13800000000")
            broker = (
                await session.execute(
                    select(Broker).where(col(Broker.user_id) == scene.target_user[scope])
                )
            ).scalar_one()
            assert broker.id is not None
            scene.broker[scope] = broker.id


def _new_application(scene: Scene, scope: str, n: int) -> dict[str, Any]:
    return {
        "name": "申请人" + chr(0x4E00 + n % 1000),
        "id_number": _matrix_id(2000 + 2 * n + (1 if scope == OTHER else 0)),
        "phone": f"1380000{n % 10000:04d}",
        "village_code": scene.village[scope],
        "background": "grid_worker",
        "computer_skills": True,
        "smartphone_skills": True,
        "enough_time": True,
        "not_on_public_payroll": True,
    }


async def _billing_scene(
    sessions: async_sessionmaker[AsyncSession],
    scene: Scene,
    make_account: Any,
    client: AsyncTestClient[Litestar],
) -> None:
    """In each district: two pools with money, a pending appropriation and transfer
    made by another finance user, a broker with a payable subsidy in a draft batch.
    The own broker is the broker caller's record."""
    from billing import payouts, pools, subsidies
    from marketplace.brokers.models import Broker
    from marketplace.events import emit

    config = client.app.state.settings.billing
    made: dict[str, dict[str, int]] = {}
    for scope in (OWN, OTHER):
        district = scene.district[scope]
        maker = await make_account("finance", district)
        actor = accounts.actor_for(maker.user)
        async with unit_of_work(sessions) as session:
            # The broker caller's own record (made with the account); another in 巫溪县.
            broker = (
                (
                    await session.execute(
                        select(Broker).where(
                            col(Broker.user_id) == scene.callers[Role.broker].user_id
                        )
                    )
                ).scalar_one()
                if scope == OWN
                else Broker(name="矩阵经纪人", village_code=scene.village[scope])
            )
            session.add(broker)
            pool = await pools.ensure_pool(session, district, "employment_subsidy")
            pool_b = await pools.ensure_pool(session, district, "migrant_worker_services")
            assert pool.id is not None
            assert pool_b.id is not None
            await session.flush()
            await pools.appropriate(
                session,
                actor=actor,
                pool_id=pool.id,
                key=f"m-{scope}",
                config=config,
                data=pools.AppropriationIn(
                    amount_fen=1_000_000, document_no="矩阵1号", date=date(2026, 1, 2)
                ),
            )
            pending = await pools.appropriate(
                session,
                actor=actor,
                pool_id=pool.id,
                key=f"p-{scope}",
                config=config,
                data=pools.AppropriationIn(
                    amount_fen=config.approval_threshold_fen + 1,
                    document_no="矩阵2号",
                    date=date(2026, 1, 3),
                ),
            )
            transfer = await pools.request_transfer(
                session,
                actor=actor,
                pool_id=pool.id,
                key=f"t-{scope}",
                data=pools.TransferIn(to_pool_id=pool_b.id, amount_fen=100, document_no="矩阵调剂"),
            )
            event = await emit(
                session,
                "task.approved",
                {
                    "task_id": 1,
                    "submission_id": 900 + len(made),
                    "broker_id": broker.id,
                    "task_type_code": "job_fair",
                    "task_type_version": 1,
                    "district_code": district,
                    "funding_source": "employment_subsidy",
                    "approved_quantity": 2,
                    "rate_fen": 1500,
                    "amount_fen": 3000,
                    "approved_at": "2026-01-10T02:00:00+00:00",
                },
            )
            await subsidies.on_task_approved(session, event)
            await subsidies.promote_payable(session, now=utcnow(), config=config)
            batch = await payouts.build(
                session,
                actor=actor,
                key=f"b-{scope}",
                data=payouts.BatchIn(district_code=district, period="2026-01"),
            )
            assert broker.id is not None
            made[scope] = {
                "pool_id": pool.id,
                "pool_b": pool_b.id,
                "appropriation_id": pending.id or 0,
                "transfer_id": transfer.id or 0,
                "account_id": pool.available_account_id,
                "batch_id": batch.id or 0,
                "broker_id": broker.id,
            }
    from billing.models import MarketFee

    async with unit_of_work(sessions) as session:
        # The fee is the employer caller's organisation's: the agency's is another.
        employer_org = (
            await session.execute(
                select(col(OrganizationMember.organization_id)).where(
                    col(OrganizationMember.user_id) == scene.callers[Role.employer].user_id
                )
            )
        ).scalar_one()
        fee = MarketFee(
            placement_id=501,
            amount_fen=30_000,
            broker_id=made[OWN]["broker_id"],
            organization_id=employer_org,
        )
        session.add(fee)
    for scope in made:
        made[scope]["placement_id"] = 501
    scene.billing = {key: {scope: made[scope][key] for scope in made} for key in made[OWN]}


async def _score_scene(
    scene: Scene, sessions: async_sessionmaker[AsyncSession], other_user_id: int
) -> None:
    """This month's scores, so score routes have objects in and out of region."""
    now = utcnow()
    local_now = local(now)
    period = Period(local_now.year, local_now.month)
    async with unit_of_work(sessions) as session:
        await scoring.compute(session=session, actor=SYSTEM, period=period, now=now)
    async with sessions() as session:
        for scope, user_id in (
            (OWN, scene.callers[Role.broker].user_id),
            (OTHER, other_user_id),
        ):
            broker_id = (
                await session.execute(select(col(Broker.id)).where(col(Broker.user_id) == user_id))
            ).scalar_one()
            score_id = (
                await session.execute(
                    select(col(BrokerScore.id)).where(
                        col(BrokerScore.broker_id) == broker_id,
                        col(BrokerScore.period) == str(period),
                    )
                )
            ).scalar_one()
            scene.scored_broker[scope] = int(broker_id)
            scene.score[scope] = int(score_id)
    scene.period = str(period)


def _matrix_id(n: int) -> str:
    first17 = f"500103{date(1980, 1, 1) + timedelta(days=n):%Y%m%d}{n % 1000:03d}"
    return first17 + check_char(first17)


async def _make_workers(
    sessions: async_sessionmaker[AsyncSession],
    client: AsyncTestClient[Litestar],
    keeper: Any,
    village: str,
    scope: str,
) -> tuple[int, int]:
    """Two records kept by ``keeper`` (a broker of ``village``)."""
    made = []
    async with unit_of_work(sessions) as session:
        for n in (1, 2):
            worker = await worker_service.register(
                session=session,
                actor=accounts.actor_for(keeper.user),
                cipher=client.app.state.cipher,
                data=WorkerCreate(
                    name=f"矩阵{scope}{'甲乙'[n - 1]}",
                    id_number=_matrix_id(5000 + n + (10 if scope == OTHER else 0)),
                    hukou_village_code=village,
                ),
            )
            assert worker.id is not None
            made.append(worker.id)
    return made[0], made[1]


def _new_worker(scene: Scene, scope: str, n: int) -> dict[str, Any]:
    return {
        "name": "新登记" + chr(0x4E00 + n),
        "id_number": _matrix_id(n),
        "hukou_village_code": scene.village[scope],
    }


# --- the declared rules ----------------------------------------------------------------

Body = Callable[[Scene, str, int], dict[str, Any] | None]
Query = Callable[[Scene, str], dict[str, str]]


@dataclass(frozen=True)
class Rule:
    """Expected statuses: ``own``/``other`` list one status per role in ROLES order.
    ``other=None`` marks a route without a regional object (one call per role)."""

    anon: int
    own: tuple[int, ...]
    other: tuple[int, ...] | None = None
    query: Query | None = None
    body: Body | None = None
    fresh_token: bool = False  # the call ends the session it uses (logout)
    headers: Body | None = None  # extra request headers (an Idempotency-Key)
    # Path values for this route only, where a placeholder means another object here
    # than elsewhere (the caller's own broker for earnings, a billed placement).
    fill: Query | None = None


# Billing's objects for placeholders that mean something else on other routes.
BILLING_ROUTE_ONLY = ("broker_id", "placement_id")


def _billing(kind: str) -> Query:
    return lambda s, scope: {f"{{{kind}:int}}": str(s.billing[kind][scope])}


def every(status: int) -> tuple[int, ...]:
    return (status,) * len(ROLES)


def only(status: int, roles: set[Role], otherwise: int = 403) -> tuple[int, ...]:
    return tuple(status if role in roles else otherwise for role in ROLES)


def _new_broker(scene: Scene, scope: str, n: int) -> dict[str, Any]:
    return {
        "username": f"matrix_broker_{n}",
        "display_name": "矩阵测试经纪人",
        "role": "broker",
        "region_code": scene.village[scope],
        "password": "matrix-password-123",
    }


# fmt: off
API_RULES: dict[tuple[str, str], Rule] = {
    # Public: logging in and enrolling the second factor need no session.
    ("POST", "/api/v1/auth/login"): Rule(
        anon=200, own=every(200),
        body=lambda s, _, __: {"username": s.login_probe[0], "password": s.login_probe[1]},
    ),
    ("POST", "/api/v1/auth/totp/enrol"): Rule(
        anon=200, own=every(200),
        body=lambda s, _, __: {"username": s.enrol_probe[0], "password": s.enrol_probe[1]},
    ),
    ("GET", "/healthz"): Rule(anon=200, own=every(200)),
    ("GET", "/readyz"): Rule(anon=200, own=every(200)),
    # Any logged-in user, about themselves.
    ("POST", "/api/v1/auth/logout"): Rule(anon=401, own=every(204), fresh_token=True),
    ("GET", "/api/v1/me"): Rule(anon=401, own=every(200)),
    # A wrong current password: the route is open to every role, and the check holds.
    ("POST", "/api/v1/me/password"): Rule(
        anon=401, own=every(422),
        body=lambda _, __, ___: {"current_password": "not-my-password", "new_password": "x" * 20},
    ),
    ("GET", "/api/v1/notifications"): Rule(anon=401, own=every(200)),
    ("POST", "/api/v1/notifications/read-all"): Rule(anon=401, own=every(200)),
    # own = the caller's own message; other = a message of a user in 巫溪县.
    ("POST", "/api/v1/notifications/{notification_id:int}/read"): Rule(
        anon=401, own=every(200), other=every(404),
    ),
    # The region tree is public reference data for every logged-in role.
    ("GET", "/api/v1/regions"): Rule(
        anon=401, own=every(200), other=every(200),
        query=lambda s, scope: {"parent_code": s.township[scope]},
    ),
    ("GET", "/api/v1/regions/{code:str}"): Rule(anon=401, own=every(200), other=every(200)),
    #                                                   city dist town vill brok empl agcy fin  aud
    ("GET", "/api/v1/regions/{code:str}/coverage"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 403, 403, 403, 200, 200),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
    ),
    ("PATCH", "/api/v1/regions/{code:str}"): Rule(
        anon=401, own=                                (200, 200, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, n: {"population": 1000 + n},
    ),
    # Accounts: administrators only; an account outside the caller's scope is 404
    # (usernames are not public), see docs/access.md.
    ("POST", "/api/v1/users"): Rule(
        anon=401, own=                                (201, 201, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (201, 403, 403, 403, 403, 403, 403, 403, 403),
        body=_new_broker,
    ),
    ("GET", "/api/v1/users"): Rule(
        anon=401, own=                                (200, 200, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        query=lambda s, scope: {"region_code": s.district[scope]},
    ),
    ("GET", "/api/v1/users/{user_id:int}"): Rule(
        anon=401, own=                                (200, 200, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 404, 404, 404, 404, 404, 404),
    ),
    ("PATCH", "/api/v1/users/{user_id:int}"): Rule(
        anon=401, own=                                (200, 200, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 404, 404, 404, 404, 404, 404),
        body=lambda _, __, n: {"display_name": f"改名{n}"},
    ),
    # The audit log: auditors only (their own district's entries; see the journey test).
    ("GET", "/api/v1/audit"): Rule(anon=401, own=only(200, {Role.auditor})),
    ("GET", "/api/v1/audit/verify"): Rule(anon=401, own=only(200, {Role.auditor})),
    # The worker register: brokers keep their villages' records; officers above the
    # village read their region; a record out of reach is 404 (docs/access.md).
    ("POST", "/api/v1/workers"): Rule(
        anon=401, own=only(201, {Role.broker}), other=every(403), body=_new_worker,
    ),
    ("GET", "/api/v1/workers"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        query=lambda s, scope: {"village_code": s.village[scope]},
    ),
    ("GET", "/api/v1/workers/duplicates"): Rule(anon=401, own=only(200, {Role.broker})),
    ("POST", "/api/v1/workers/duplicates/dismiss"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 204, 403, 403, 403, 403),
                   other=                             (403, 404, 404, 403, 404, 403, 403, 403, 403),
        body=lambda s, scope, _: {"a": s.worker[scope], "b": s.spare_worker[scope]},
    ),
    ("GET", "/api/v1/workers/{worker_id:int}"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 404, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/workers/{worker_id:int}/history"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 404, 403, 403, 403, 403),
    ),
    ("PATCH", "/api/v1/workers/{worker_id:int}"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 200, 403, 403, 403, 403),
                   other=                             (403, 404, 404, 403, 404, 403, 403, 403, 403),
        body=lambda _, __, n: {"note": f"备注{n}"},
    ),
    ("POST", "/api/v1/workers/{worker_id:int}/verify"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 200, 403, 403, 403, 403),
                   other=                             (403, 404, 404, 403, 404, 403, 403, 403, 403),
    ),
    ("POST", "/api/v1/workers/{worker_id:int}/merge"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 200, 403, 403, 403, 403),
                   other=                             (403, 404, 404, 403, 404, 403, 403, 403, 403),
        body=lambda s, scope, _: {"other_id": s.spare_worker[scope]},
    ),
    # Import and export (docs/workers.md). The template holds no personal data. The
    # matrix sends no file, so the broker (past the role guard) gets 422.
    ("GET", "/api/v1/workers/import-template"): Rule(anon=401, own=every(200)),
    ("POST", "/api/v1/workers/import"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 422, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/workers/export"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        query=lambda s, scope: {"village_code": s.village[scope], "format": "csv"},
    ),
    # Search (docs/search.md): workers as the register list; published jobs, anyone signed in.
    ("GET", "/api/v1/workers/search"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        query=lambda s, scope: {"village_code": s.village[scope], "q": "新登记"},
    ),
    ("GET", "/api/v1/jobs/search"): Rule(anon=401, own=every(200), query=lambda _, __: {"q": "焊工"}),
    # Organisations (docs/jobs.md): officers read their region (a township officer sees
    # none registered at district level), brokers the verified ones, organisation
    # accounts their own and their partners; out of reach is 404. The employer caller
    # belongs to the own employer, the agency caller to an agency it authorised.
    ("POST", "/api/v1/organizations"): Rule(
        anon=401, own=                                (201, 201, 403, 403, 403, 409, 201, 403, 403),
                   other=                             (201, 403, 403, 403, 403, 409, 403, 403, 403),
        body=lambda s, scope, n: jobs_of(s).new_organization(scope, n),
    ),
    ("GET", "/api/v1/organizations"): Rule(
        anon=401, own=every(200),
                   other=                             (200, 403, 403, 403, 200, 200, 200, 403, 403),
        query=lambda s, scope: {"region_code": s.district[scope]},
    ),
    ("GET", "/api/v1/organizations/{organization_id:int}"): Rule(
        anon=401, own=                                (200, 200, 404, 404, 200, 200, 200, 200, 200),
                   other=                             (200, 404, 404, 404, 200, 404, 404, 404, 404),
    ),
    # A pending organisation: the city admin refuses it first, so the district admin
    # finds it no longer pending (409).
    ("POST", "/api/v1/organizations/{organization_id:int}/verify"): Rule(
        anon=401, own=                                (200, 409, 404, 404, 404, 404, 404, 403, 403),
                   other=                             (200, 404, 404, 404, 404, 404, 404, 404, 404),
        body=lambda _, __, ___: {"approve": False, "reason": "矩阵：证照不清"},
    ),
    ("GET", "/api/v1/organizations/{organization_id:int}/members"): Rule(
        anon=401, own=                                (200, 200, 404, 404, 403, 200, 403, 403, 403),
                   other=                             (200, 404, 404, 404, 403, 404, 404, 404, 404),
    ),
    ("POST", "/api/v1/organizations/{organization_id:int}/members"): Rule(
        anon=401, own=                                (201, 201, 404, 404, 403, 403, 403, 403, 403),
                   other=                             (201, 404, 404, 404, 403, 404, 404, 404, 404),
        body=lambda s, scope, _: {"user_id": jobs_of(s).spare_employer[scope]},
    ),
    ("GET", "/api/v1/organizations/{organization_id:int}/authorizations"): Rule(
        anon=401, own=                                (200, 200, 404, 404, 403, 200, 200, 403, 403),
                   other=                             (200, 404, 404, 404, 403, 404, 404, 404, 404),
    ),
    # The city admin records the other employer's authorisation of the agency first, so
    # the agency then sees that employer (403, not 404).
    ("POST", "/api/v1/organizations/{organization_id:int}/authorizations"): Rule(
        anon=401, own=                                (201, 201, 404, 404, 403, 201, 403, 403, 403),
                   other=                             (201, 404, 404, 404, 403, 404, 403, 404, 404),
        body=lambda s, _, n: jobs_of(s).new_authorization(n),
    ),
    # Jobs: organisations post (an agency may draft for any employer; submitting needs
    # the authorisation); published jobs are read by everyone signed in; drafts only by
    # their organisation; the work district's admin reviews.
    ("POST", "/api/v1/jobs"): Rule(
        anon=401, own=only(201, {Role.employer, Role.agency}),
                   other=only(201, {Role.agency}),
        body=lambda s, scope, n: jobs_of(s).new_job(scope, n),
    ),
    ("GET", "/api/v1/jobs"): Rule(
        anon=401, own=every(200), other=every(200),
        query=lambda s, scope: {"region_code": s.district[scope]},
    ),
    ("GET", "/api/v1/jobs/{job_id:int}"): Rule(anon=401, own=every(200), other=every(200)),
    ("PATCH", "/api/v1/jobs/{job_id:int}"): Rule(
        anon=401, own=only(200, {Role.employer}), other=every(403),
        body=lambda _, __, n: {"headcount": 3 + n},
    ),
    # A draft: seen (and submitted) only by its employer.
    ("POST", "/api/v1/jobs/{job_id:int}/submit"): Rule(
        anon=401, own=only(200, {Role.employer}, otherwise=404), other=every(404),
    ),
    # Waiting for review: the city admin publishes it first, so the district admin
    # finds it already published (409).
    ("POST", "/api/v1/jobs/{job_id:int}/review"): Rule(
        anon=401, own=                                (200, 409, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, ___: {"approve": True},
    ),
    # Matching and recommendations (docs/matching.md). Candidates: the caller's own
    # workers (officers their region, brokers their villages), employers only for their
    # jobs; a worker's matches as the register. A recommendation is the broker's and the
    # job's organisation's; others in the region read it, the rest get 404.
    ("GET", "/api/v1/jobs/{job_id:int}/candidates"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 200, 200, 403, 403),
                   other=                             (200, 200, 200, 403, 200, 404, 404, 403, 403),
    ),
    ("GET", "/api/v1/workers/{worker_id:int}/matches"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 404, 403, 403, 403, 403),
    ),
    ("POST", "/api/v1/recommendations"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 201, 403, 403, 403, 403),
                   other=                             (403, 403, 403, 403, 404, 403, 403, 403, 403),
        body=lambda s, scope, _: {"job_id": s.job[scope], "worker_id": s.match_worker[scope]},
    ),
    ("GET", "/api/v1/recommendations"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 200, 200, 403, 403),
    ),
    ("GET", "/api/v1/recommendations/{recommendation_id:int}"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 200, 200, 403, 403),
                   other=                             (200, 404, 404, 403, 404, 404, 404, 403, 403),
    ),
    # The broker may not shortlist (403); the employer does (200); the agency posting for
    # it then finds it shortlisted already (409).
    ("POST", "/api/v1/recommendations/{recommendation_id:int}/status"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 403, 200, 409, 403, 403),
                   other=                             (403, 403, 403, 403, 404, 404, 404, 403, 403),
        body=lambda _, __, ___: {"status": "shortlisted"},
    ),
    ("GET", "/api/v1/placements/{placement_id:int}"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 200, 200, 403, 403),
                   other=                             (200, 404, 404, 403, 404, 404, 404, 403, 403),
    ),
    # Officers close arrears cases; the matrix's placements have none (404 past the guard).
    ("POST", "/api/v1/placements/{placement_id:int}/arrears/resolve"): Rule(
        anon=401, own=                                (403, 404, 404, 403, 403, 403, 403, 403, 403),
                   other=                             (403, 404, 404, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, ___: {"note": "已足额补发"},
    ),
    ("POST", "/api/v1/placements/{placement_id:int}/wage-reports"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 201, 403, 403, 403, 403),
                   other=                             (403, 403, 403, 403, 404, 403, 403, 403, 403),
        body=lambda _, __, ___: {"paid_in_full": True, "paid_on_time": True},
    ),
    # Public-service tasks (docs/tasks.md). own/other = a task waiting for review in
    # each village (kept by another broker), its evidence, a spot check over each.
    ("GET", "/api/v1/task-types"): Rule(anon=401, own=every(200)),
    ("POST", "/api/v1/task-types"): Rule(
        anon=401, own=only(201, {Role.city_admin}),
        body=lambda _, __, n: {"code": f"matrix_type_{n}", "name": "矩阵类型", "unit": "次",
                               "rate_fen": 100, "funding_source": "employment_subsidy"},
    ),
    ("PATCH", "/api/v1/task-types/{type_code:str}"): Rule(
        anon=401, own=only(200, {Role.city_admin}), body=lambda _, __, n: {"rate_fen": 20000 + n},
    ),
    ("POST", "/api/v1/tasks"): Rule(
        anon=401, own=                                (201, 201, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (201, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda s, scope, _: {"task_type": "policy_outreach", "region_code": s.village[scope],
                                  "quantity": 1, "deadline": (utcnow() + timedelta(days=30)).isoformat()},
    ),
    ("POST", "/api/v1/tasks/bulk"): Rule(
        anon=401, own=                                (201, 201, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (201, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda s, scope, _: {"task_type": "policy_outreach", "region_code": s.township[scope],
                                  "quantity": 1, "deadline": (utcnow() + timedelta(days=30)).isoformat()},
    ),
    ("GET", "/api/v1/tasks"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 200, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 200, 403, 403, 403, 403),
        query=lambda s, scope: {"region_code": s.village[scope]},
    ),
    ("GET", "/api/v1/tasks/{task_id:int}"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 404, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 404, 404, 403, 403, 403, 403),
    ),
    ("POST", "/api/v1/tasks/{task_id:int}/claim"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 409, 403, 403, 403, 403),
                   other=                             (403, 403, 403, 403, 404, 403, 403, 403, 403),
    ),
    # The matrix sends JSON, not a form: the broker (past the role guard) gets 422.
    ("POST", "/api/v1/tasks/{task_id:int}/submissions"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 422, 403, 403, 403, 403),
                   other=                             (403, 403, 403, 403, 422, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/tasks/{task_id:int}/submissions"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 404, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 404, 404, 403, 403, 403, 403),
    ),
    # A rejection without a reason: refused (422) for whoever may review; no change made.
    ("POST", "/api/v1/tasks/{task_id:int}/review"): Rule(
        anon=401, own=                                (422, 422, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (422, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, ___: {"decision": "reject"},
    ),
    ("POST", "/api/v1/tasks/review-bulk"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, ___: {"task_ids": [2_000_000_000]},
    ),
    ("GET", "/api/v1/review-queue"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
    ),
    # Evidence: the submitting broker (not the matrix's) and the region's officers.
    ("GET", "/api/v1/evidence/{evidence_id:int}"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 404, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 404, 403, 403, 403, 403),
    ),
    # A period without approved tasks: whoever may draw learns there is nothing (409).
    ("POST", "/api/v1/spot-checks"): Rule(
        anon=401, own=                                (409, 409, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (409, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda s, scope, _: {"region_code": s.district[scope], "period": "2020-01",
                                  "sample_size": 1},
    ),
    ("GET", "/api/v1/spot-checks"): Rule(anon=401, own=only(200, {Role.city_admin, Role.district_admin})),
    ("GET", "/api/v1/spot-checks/{spot_check_id:int}"): Rule(
        anon=401, own=                                (200, 200, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 404, 403, 403, 403, 403, 403, 403, 403),
    ),
    # A failure without notes: refused (422) for whoever may record; no change made.
    ("POST", "/api/v1/spot-checks/{spot_check_id:int}/results"): Rule(
        anon=401, own=                                (422, 422, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (422, 404, 403, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, ___: {"task_id": 1, "result": "fail"},
    ),
    ("GET", "/api/v1/task-settings/{code:str}"): Rule(
        anon=401, own=                                (200, 200, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
    ),
    ("PUT", "/api/v1/task-settings/{code:str}"): Rule(
        anon=401, own=                                (200, 200, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, ___: {"township_check": False},
    ),
    # Points (docs/scoring.md): the city computes and sets the model; officers read
    # their region; a broker reads and appeals their own score; the district decides.
    ("POST", "/api/v1/scores/runs"): Rule(
        anon=401, own=only(201, {Role.city_admin}), body=lambda s, _, __: {"period": s.period},
    ),
    ("GET", "/api/v1/scores"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        query=lambda s, scope: {"period": s.period, "region_code": s.village[scope]},
    ),
    ("GET", "/api/v1/scores/{score_id:int}"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 200, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
    ),
    ("POST", "/api/v1/scores/{score_id:int}/appeal"): Rule(
        anon=401, own=only(201, {Role.broker}), other=every(403),
        body=lambda _, __, ___: {"reason": "登录天数未计全"},
    ),
    ("GET", "/api/v1/scores/appeals"): Rule(anon=401, own=only(200, {Role.district_admin})),
    # After the appeal above: the district dismisses it; nobody else may decide.
    ("POST", "/api/v1/scores/{score_id:int}/decision"): Rule(
        anon=401, own=only(200, {Role.district_admin}), other=every(403),
        body=lambda _, __, ___: {"kind": "appeal", "decision": "dismiss", "reason": "经核实无误"},
    ),
    ("GET", "/api/v1/score-models"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 403, 403, 403, 403, 403),
    ),
    ("POST", "/api/v1/score-models"): Rule(
        anon=401, own=only(201, {Role.city_admin}),
        body=lambda _, __, ___: {"effective_from": "2099-01", "rules": DEFAULT_MODEL},
    ),
    # The broker object here is another broker of the caller's village.
    ("GET", "/api/v1/brokers/{broker_id:int}/scores"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
    ),
    ("PUT", "/api/v1/brokers/{broker_id:int}/annual-review/targets"): Rule(
        anon=401, own=only(200, {Role.district_admin}), other=every(403),
        body=lambda _, __, ___: {"year": 2026, "targets": {"register_update": 80}},
    ),
    ("POST", "/api/v1/brokers/{broker_id:int}/annual-review"): Rule(
        anon=401, own=only(200, {Role.district_admin}), other=every(403),
        body=lambda _, __, ___: {"year": 2026, "outcome": "称职"},
    ),
    # Last: the broker's call deletes the own record.
    ("DELETE", "/api/v1/workers/{worker_id:int}"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 204, 403, 403, 403, 403),
                   other=                             (403, 404, 404, 403, 404, 403, 403, 403, 403),
        body=lambda _, __, ___: {"reason": "person_request"},
    ),
    # Broker applications (docs/brokers.md): anyone may apply and track their own with
    # code + phone; officers read their region; the decision is the state's role's step
    # (409 for another officer's step). Own application is "submitted" at the start.
    ("POST", "/api/v1/broker-applications"): Rule(
        anon=201, own=every(201), body=lambda s, scope, n: _new_application(s, scope, n),
    ),
    ("GET", "/api/v1/broker-applications/track"): Rule(
        anon=200, own=every(200),
        query=lambda s, _: {"code": s.application_track[0], "phone": s.application_track[1]},
    ),
    # Not returned, so not open to changes: the route is public and the state refuses.
    ("POST", "/api/v1/broker-applications/track/resubmit"): Rule(
        anon=409, own=every(409),
        body=lambda s, scope, n: {
            "tracking_code": s.application_track[0], "phone": s.application_track[1],
            "application": _new_application(s, OWN, 0),
        },
    ),
    ("GET", "/api/v1/broker-applications"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        query=lambda s, scope: {"region_code": s.village[scope]},
    ),
    ("GET", "/api/v1/broker-applications/counts"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        query=lambda s, scope: {"region_code": s.village[scope]},
    ),
    ("GET", "/api/v1/broker-applications/{application_id:int}"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
    ),
    # The village officer's approval moves the own application on (to "recommended").
    ("POST", "/api/v1/broker-applications/{application_id:int}/decisions"): Rule(
        anon=401, own=                                (403, 409, 409, 200, 403, 403, 403, 403, 403),
                   other=                             (403, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, ___: {"decision": "approve"},
    ),
    # Bulk: per-item results (refusals inside the 200), open to the deciding roles only.
    ("POST", "/api/v1/broker-applications/decisions"): Rule(
        anon=401, own=only(200, {Role.district_admin, Role.township_officer, Role.village_officer}),
        body=lambda s, scope, _: {"ids": [s.application[scope]], "decision": "reject",
                                  "comment": "矩阵测试"},
    ),
    ("GET", "/api/v1/brokers"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 200, 403, 403, 200, 200),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        query=lambda s, scope: {"region_code": s.village[scope]},
    ),
    ("GET", "/api/v1/brokers/gaps"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        query=lambda s, scope: {"district_code": s.district[scope]},
    ),
    # own = the broker of the own village (not the calling broker: a broker sees only
    # their own record).
    ("GET", "/api/v1/brokers/{broker_id:int}"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 403, 403, 403, 200, 200),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/brokers/{broker_id:int}/status-history"): Rule(
        anon=401, own=                                (200, 200, 200, 200, 403, 403, 403, 200, 200),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
    ),
    ("PATCH", "/api/v1/brokers/{broker_id:int}"): Rule(
        anon=401, own=                                (200, 200, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, ___: {"key_broker": True},
    ),
    # The city admin suspends first; the district admin then meets the state rule (409).
    ("POST", "/api/v1/brokers/{broker_id:int}/status"): Rule(
        anon=401, own=                                (200, 409, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, ___: {"action": "suspend", "reason": "矩阵测试"},
    ),
    # Training (docs/training.md): the city, district admins and township officers run
    # sessions in their region; another region's session reads as absent (404).
    ("GET", "/api/v1/trainings"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        query=lambda s, scope: {"region_code": s.township[scope]},
    ),
    ("POST", "/api/v1/trainings"): Rule(
        anon=401, own=                                (201, 201, 201, 403, 403, 403, 403, 403, 403),
                   other=                             (201, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda s, scope, n: {"title": f"培训{n}", "region_code": s.township[scope],
                                  "starts_on": "2026-03-01", "days": 2, "mode": "meeting"},
    ),
    ("GET", "/api/v1/trainings/compliance"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 403, 403, 403, 403, 403, 403, 403, 403),
        query=lambda s, scope: {"region_code": s.township[scope]},
    ),
    ("GET", "/api/v1/trainings/{training_id:int}"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 403, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/trainings/{training_id:int}/attendance"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 403, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/trainings/{training_id:int}/trainees"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 403, 403, 403, 403, 403),
    ),
    ("POST", "/api/v1/trainings/{training_id:int}/attendance"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, ___: {"entries": []},
    ),
    # Courses: the city's and a district's are read by the officers below them; only
    # administrators write them.
    ("GET", "/api/v1/training-courses"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
    ),
    ("POST", "/api/v1/training-courses"): Rule(
        anon=401, own=                                (201, 201, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (201, 403, 403, 403, 403, 403, 403, 403, 403),
        body=lambda s, scope, n: {"title": f"课程{n}", "region_code": s.district[scope]},
    ),
    ("GET", "/api/v1/training-courses/{course_id:int}"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 403, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/training-courses/{course_id:int}/materials"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 403, 403, 403, 403, 403),
    ),
    ("POST", "/api/v1/training-courses/{course_id:int}/materials"): Rule(
        anon=401, own=                                (201, 201, 403, 403, 403, 403, 403, 403, 403),
                   other=                             (201, 404, 404, 403, 403, 403, 403, 403, 403),
        body=lambda _, __, n: {"title": f"资料{n}", "text": "正文"},
    ),
    # No file sent: past the role guard, the administrators get 422.
    ("POST", "/api/v1/training-courses/{course_id:int}/materials/upload"): Rule(
        anon=401, own=                                (422, 422, 403, 403, 403, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/training-courses/{course_id:int}/materials/{material_id:int}/file"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 403, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 403, 403, 403, 403, 403),
    ),
    # The question bank: the city writes it, district admins read it (no region).
    ("GET", "/api/v1/questions"): Rule(anon=401, own=only(200, {Role.city_admin, Role.district_admin})),
    ("POST", "/api/v1/questions"): Rule(
        anon=401, own=only(201, {Role.city_admin}), body=lambda _, __, n: question_body(n),
    ),
    ("GET", "/api/v1/questions/{question_id:int}"): Rule(
        anon=401, own=only(200, {Role.city_admin, Role.district_admin}),
    ),
    ("GET", "/api/v1/questions/{question_id:int}/versions"): Rule(
        anon=401, own=only(200, {Role.city_admin, Role.district_admin}),
    ),
    ("PUT", "/api/v1/questions/{question_id:int}"): Rule(
        anon=401, own=only(200, {Role.city_admin}),
        body=lambda _, __, n: {**question_body(n), "code": None},
    ),
    ("POST", "/api/v1/questions/{question_id:int}/active"): Rule(
        anon=401, own=only(200, {Role.city_admin}), body=lambda _, __, ___: {"active": True},
    ),
    ("POST", "/api/v1/questions/import"): Rule(anon=401, own=only(422, {Role.city_admin})),
    # Exams: an applicant opens one with tracking code + phone (none sent here: 422); a
    # broker's login resumes their own attempt. Officers read attempts of their region;
    # only the candidate answers and hands in. own = the calling broker's attempt.
    ("POST", "/api/v1/exams"): Rule(anon=422, own=only(201, {Role.broker}), body=lambda *_: {}),
    ("GET", "/api/v1/exams"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/exams/policy"): Rule(anon=401, own=every(200)),
    ("PUT", "/api/v1/exams/policy"): Rule(
        anon=401, own=only(200, {Role.city_admin}),
        body=lambda *_: {"blueprint": {"政策法规": {"easy": 5, "medium": 10, "hard": 5}},
                         "time_limit_minutes": 30, "pass_mark": 60, "max_attempts": 3},
    ),
    ("GET", "/api/v1/exams/{exam_id:int}"): Rule(
        anon=401, own=                                (200, 200, 200, 403, 200, 403, 403, 403, 403),
                   other=                             (200, 404, 404, 403, 404, 403, 403, 403, 403),
    ),
    ("POST", "/api/v1/exams/{exam_id:int}/answers"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 200, 403, 403, 403, 403),
                   other=                             (403, 403, 403, 403, 404, 403, 403, 403, 403),
        body=lambda s, _, __: {"question_id": s.exam_question, "choices": [0]},
    ),
    # Last of the exams: the broker's call hands the own paper in.
    ("POST", "/api/v1/exams/{exam_id:int}/submit"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 200, 403, 403, 403, 403),
                   other=                             (403, 403, 403, 403, 404, 403, 403, 403, 403),
    ),
    # Billing (docs/billing.md): only finance moves money (a second finance user
    # approves what another made); auditors read; brokers see their own earnings.
    ("GET", "/api/v1/fund-pools"): Rule(anon=401, own=only(200, {Role.finance, Role.auditor})),
    ("POST", "/api/v1/fund-pools"): Rule(
        anon=401, own=only(201, {Role.finance}), other=every(403),
        body=lambda s, scope, _: {"district_code": s.district[scope], "source": "purchase_agriculture"},
    ),
    ("POST", "/api/v1/fund-pools/{pool_id:int}/appropriations"): Rule(
        anon=401, own=only(201, {Role.finance}), other=only(404, {Role.finance}),
        body=lambda _, __, n: {"amount_fen": 100 + n, "document_no": f"矩阵{n}号", "date": "2026-01-05"},
        headers=lambda _, __, n: {"Idempotency-Key": f"matrix-{n}"},
    ),
    ("POST", "/api/v1/fund-pools/{pool_id:int}/transfers"): Rule(
        anon=401, own=only(201, {Role.finance}), other=only(404, {Role.finance}),
        body=lambda s, scope, n: {"to_pool_id": s.billing["pool_b"][scope], "amount_fen": n, "document_no": "调剂"},
        headers=lambda _, __, n: {"Idempotency-Key": f"matrix-{n}"},
    ),
    ("POST", "/api/v1/appropriations/{appropriation_id:int}/approve"): Rule(
        anon=401, own=only(201, {Role.finance}), other=only(404, {Role.finance}),
        headers=lambda _, __, n: {"Idempotency-Key": f"matrix-{n}"},
    ),
    ("POST", "/api/v1/transfers/{transfer_id:int}/approve"): Rule(
        anon=401, own=only(201, {Role.finance}), other=only(404, {Role.finance}),
        headers=lambda _, __, n: {"Idempotency-Key": f"matrix-{n}"},
    ),
    ("GET", "/api/v1/ledger/accounts/{account_id:int}/postings"): Rule(
        anon=401, own=only(200, {Role.finance, Role.auditor}),
        other=only(404, {Role.finance, Role.auditor}),
    ),
    ("GET", "/api/v1/reconciliation"): Rule(
        anon=401, own=only(200, {Role.finance, Role.auditor}), other=every(403),
        query=lambda s, scope: {"period": "2026-01", "district_code": s.district[scope]},
    ),
    ("GET", "/api/v1/brokers/{broker_id:int}/earnings"): Rule(
        anon=401, own=only(200, {Role.broker, Role.finance, Role.auditor}),
        other=only(404, {Role.broker, Role.finance, Role.auditor}), fill=_billing("broker_id"),
    ),
    ("PUT", "/api/v1/me/bank-account"): Rule(
        anon=401, own=only(200, {Role.broker}),
        body=lambda _, __, ___: {"account_name": "矩阵", "bank_name": "农商行", "account_no": "6221000011112222"},
    ),
    ("GET", "/api/v1/me/bank-account"): Rule(anon=401, own=only(200, {Role.broker})),
    # The own district has a draft batch already: building another is a 409 past the guard.
    ("POST", "/api/v1/payout-batches"): Rule(
        anon=401, own=only(409, {Role.finance}), other=every(403),
        body=lambda s, scope, _: {"district_code": s.district[scope], "period": "2026-01"},
        headers=lambda _, __, n: {"Idempotency-Key": f"matrix-{n}"},
    ),
    ("GET", "/api/v1/payout-batches"): Rule(anon=401, own=only(200, {Role.finance, Role.auditor})),
    ("GET", "/api/v1/payout-batches/{batch_id:int}"): Rule(
        anon=401, own=only(200, {Role.finance, Role.auditor}),
        other=only(404, {Role.finance, Role.auditor}),
    ),
    ("POST", "/api/v1/payout-batches/{batch_id:int}/approve"): Rule(
        anon=401, own=only(201, {Role.finance}), other=only(404, {Role.finance}),
        headers=lambda _, __, n: {"Idempotency-Key": f"matrix-{n}"},
    ),
    ("POST", "/api/v1/payout-batches/{batch_id:int}/execute"): Rule(
        anon=401, own=only(201, {Role.finance}), other=only(404, {Role.finance}),
        body=lambda _, __, ___: {"mode": "offline", "references": {}},
        headers=lambda _, __, n: {"Idempotency-Key": f"matrix-{n}"},
    ),
    # Market fees: the matrix app has no Stripe key, so a caller past the guard gets 503.
    # Past the guard, the paying employer (and finance) reach Stripe: 503 here with no
    # key; an organisation whose placement it is not gets 404.
    ("POST", "/api/v1/placements/{placement_id:int}/fee"): Rule(
        anon=401, own=                                (403, 403, 403, 403, 403, 503, 404, 503, 403),
        fill=_billing("placement_id"),
        headers=lambda _, __, n: {"Idempotency-Key": f"matrix-{n}"},
    ),
    ("POST", "/api/v1/placements/{placement_id:int}/fee/refund"): Rule(
        anon=401, own=only(503, {Role.finance}), body=lambda _, __, ___: {"amount_fen": 1},
        fill=_billing("placement_id"),
        headers=lambda _, __, n: {"Idempotency-Key": f"matrix-{n}"},
    ),
    # Stripe's webhook needs no login (its signature is the credential): without a
    # configured secret it refuses everyone alike.
    ("POST", "/api/v1/webhooks/stripe"): Rule(anon=503, own=every(503)),
    # An offline batch has no bank file: 409 past the guard.
    ("GET", "/api/v1/payout-batches/{batch_id:int}/bank-file"): Rule(
        anon=401, own=only(409, {Role.finance}), other=only(404, {Role.finance}),
    ),
}
# fmt: on


@dataclass(frozen=True)
class PageRule:
    """Pages are declared by path prefix: a rule for ``/regions`` also covers
    ``/regions/{code}``; ``/`` covers only the home page."""

    anon: int  # GET: 200 public, 302 to /login for protected pages; POST: 403 without CSRF
    public: bool = False


PAGE_RULES: dict[tuple[str, str], PageRule] = {
    ("GET", "/"): PageRule(anon=302),
    ("GET", "/login"): PageRule(anon=200, public=True),
    # Every page form is CSRF-protected: a POST without the token is refused.
    ("POST", "/login"): PageRule(anon=403, public=True),
    ("POST", "/logout"): PageRule(anon=403),
    # Areas behind the login; the page tests check each role's view of them.
    ("GET", "/regions"): PageRule(anon=302),
    ("POST", "/regions"): PageRule(anon=403),
    ("GET", "/users"): PageRule(anon=302),
    ("POST", "/users"): PageRule(anon=403),
    ("GET", "/audit"): PageRule(anon=302),
    ("GET", "/inbox"): PageRule(anon=302),
    ("POST", "/inbox"): PageRule(anon=403),
    ("GET", "/workers"): PageRule(anon=302),
    ("POST", "/workers"): PageRule(anon=403),
    # The broker application form and its status page are public (docs/brokers.md).
    ("GET", "/apply"): PageRule(anon=200, public=True),
    ("POST", "/apply"): PageRule(anon=403, public=True),
    ("GET", "/broker-applications"): PageRule(anon=302),
    ("POST", "/broker-applications"): PageRule(anon=403),
    ("GET", "/brokers"): PageRule(anon=302),
    ("POST", "/brokers"): PageRule(anon=403),
    # Training and the question bank (officers, city); the exam is public: an applicant
    # enters with tracking code + phone, a broker with their login (docs/training.md).
    ("GET", "/training"): PageRule(anon=302),
    ("POST", "/training"): PageRule(anon=403),
    ("GET", "/questions"): PageRule(anon=302),
    ("POST", "/questions"): PageRule(anon=403),
    # Without an exam session the paper sends the caller back to the entry form.
    ("GET", "/exams/{exam_id:int}"): PageRule(anon=303, public=True),
    ("GET", "/exams"): PageRule(anon=200, public=True),
    ("POST", "/exams"): PageRule(anon=403, public=True),
    ("GET", "/jobs"): PageRule(anon=302),
    ("POST", "/jobs"): PageRule(anon=403),
    ("GET", "/organizations"): PageRule(anon=302),
    ("POST", "/organizations"): PageRule(anon=403),
    # Matching pages (docs/matching.md).
    ("GET", "/matching"): PageRule(anon=302),
    ("POST", "/matching"): PageRule(anon=403),
    ("GET", "/tasks"): PageRule(anon=302),
    ("POST", "/tasks"): PageRule(anon=403),
    ("GET", "/spot-checks"): PageRule(anon=302),
    ("POST", "/spot-checks"): PageRule(anon=403),
    ("GET", "/scores"): PageRule(anon=302),
    ("POST", "/scores"): PageRule(anon=403),
    # Public disclosure of rankings: no login.
    ("GET", "/public/rankings"): PageRule(anon=200, public=True),
    ("GET", "/public/rankings.csv"): PageRule(anon=200, public=True),
    # Billing pages (finance, auditors; brokers' earnings; employers' fee payment).
    ("GET", "/finance"): PageRule(anon=302),
    ("POST", "/finance"): PageRule(anon=403),
    ("GET", "/earnings"): PageRule(anon=302),
    ("POST", "/earnings"): PageRule(anon=403),
    ("GET", "/fees"): PageRule(anon=302),
    ("POST", "/fees"): PageRule(anon=403),
    # Prometheus metrics: loopback or LAOWU_METRICS_TOKEN only, never a session
    # (docs/operations.md); the test client is neither, so 403 for everyone.
    ("GET", "/metrics"): PageRule(anon=403, public=True),
}


# --- the route table -----------------------------------------------------------------


def route_table(app: Litestar) -> list[tuple[str, str]]:
    """(method, path template) of every HTTP route, except static files, the API
    docs and Litestar's automatic OPTIONS (CORS preflight) handlers."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(SKIPPED_PREFIXES):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                if method != "OPTIONS":
                    found.add((method, route.path))
    return sorted(found)


def is_api(path: str) -> bool:
    return path.startswith("/api/") or path in ("/healthz", "/readyz")


def page_rule(method: str, path: str) -> PageRule | None:
    for (rule_method, prefix), rule in PAGE_RULES.items():
        if rule_method != method:
            continue
        if path == prefix or (prefix != "/" and path.startswith(prefix.rstrip("/") + "/")):
            return rule
    return None


def _offline_app(tmp_path: Path) -> Litestar:
    settings = Settings(
        env="test",
        db=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", pooled=False),
        security=SecuritySettings(secret_key="matrix-" + "x" * 40, data_key=new_data_key()),
        media_dir=tmp_path / "media",
        var_dir=tmp_path,
        outbox_in_process=False,
    )
    return create_app(settings)


def test_every_route_is_declared(tmp_path: Path) -> None:
    routes = route_table(_offline_app(tmp_path))
    undeclared = [
        f"{method} {path}"
        for method, path in routes
        if (is_api(path) and (method, path) not in API_RULES)
        or (not is_api(path) and page_rule(method, path) is None)
    ]
    assert not undeclared, (
        "routes without a declared authorisation rule (add them to API_RULES or "
        "PAGE_RULES in tests/web/test_authz_matrix.py): " + ", ".join(undeclared)
    )
    stale = sorted(f"{m} {p}" for m, p in set(API_RULES) - set(routes))
    assert not stale, "API_RULES declares routes the app does not have: " + ", ".join(stale)


def test_rule_rows_have_one_status_per_role() -> None:
    for key, rule in API_RULES.items():
        for row in (rule.own, rule.other):
            assert row is None or len(row) == len(ROLES), key


# --- running the matrix ----------------------------------------------------------------


def _fill(
    path: str,
    scene: Scene,
    caller: Caller | None,
    scope: str,
    overrides: dict[str, str] | None = None,
) -> str:
    values = {
        "{code:str}": scene.village[scope],
        "{user_id:int}": str(scene.target_user[scope]),
        "{worker_id:int}": str(scene.worker[scope]),
        "{application_id:int}": str(scene.application.get(scope, 1)),
        "{broker_id:int}": str(scene.broker.get(scope, 1)),
        "{training_id:int}": str(scene.training.get(scope, 1)),
        "{course_id:int}": str(scene.course.get(scope, 1)),
        "{material_id:int}": str(scene.material.get(scope, 1)),
        "{question_id:int}": str(scene.question or 1),
        "{exam_id:int}": str(scene.exam.get(scope, 1)),
        "{task_id:int}": str(scene.tasks["task"][scope]),
        "{evidence_id:int}": str(scene.tasks["evidence"][scope]),
        "{spot_check_id:int}": str(scene.tasks["spot_check"][scope]),
        "{type_code:str}": "policy_outreach",
        "{score_id:int}": str(scene.score[scope]),
        "{notification_id:int}": str(
            caller.notification_id if caller and scope == OWN else scene.other_notification
        ),
        "{job_id:int}": "1",  # import jobs: pages only, checked anonymous (PAGE_RULES)
    }
    if scene.jobs is not None:
        values.update(scene.jobs.path_values(path, scope))
    values.update(matching_values(path, scene, scope))
    for kind, by_scope in scene.billing.items():
        if kind not in BILLING_ROUTE_ONLY:
            values[f"{{{kind}:int}}"] = str(by_scope[scope])
    values.update(overrides or {})
    for placeholder, value in values.items():
        path = path.replace(placeholder, value)
    assert "{" not in path, f"no sample value for a path parameter in {path}; extend _fill"
    return path


async def _call(
    client: AsyncTestClient[Litestar],
    scene: Scene,
    method: str,
    path: str,
    rule: Rule,
    caller: Caller | None,
    scope: str,
) -> tuple[int, str]:
    headers: dict[str, str] = {}
    if caller is not None:
        token = caller.token
        if rule.fresh_token:
            assert scene.sessions is not None
            token = await mint_token(scene.sessions, caller.user_id, "bearer")
        headers["Authorization"] = f"Bearer {token}"
    n = next(scene.counter)
    if rule.headers:
        headers.update(rule.headers(scene, scope, n) or {})
    body = rule.body(scene, scope, n) if rule.body else None
    params = rule.query(scene, scope) if rule.query else None
    client.cookies.clear()
    response = await client.request(
        method,
        _fill(path, scene, caller, scope, rule.fill(scene, scope) if rule.fill else None),
        headers=headers,
        params=params,
        json=body,
        follow_redirects=False,
    )
    if response.status_code >= 400:
        # Every refusal explains itself in words.
        assert response.json().get("detail"), (method, path, response.text)
    return response.status_code, response.text[:200]


async def _run_api_matrix(client: AsyncTestClient[Litestar], scene: Scene) -> list[str]:
    mismatches: list[str] = []
    for (method, path), rule in API_RULES.items():
        status, text = await _call(client, scene, method, path, rule, None, OWN)
        if status != rule.anon:
            mismatches.append(
                f"{method} {path} anonymous: expected {rule.anon}, got {status} {text}"
            )
        for scope, row in ((OWN, rule.own), (OTHER, rule.other)):
            if row is None:
                continue
            for role, expected in zip(ROLES, row, strict=True):
                caller = scene.callers[role]
                status, text = await _call(client, scene, method, path, rule, caller, scope)
                if status != expected:
                    mismatches.append(
                        f"{method} {path} as {role.value} on {scope} object: "
                        f"expected {expected}, got {status} {text}"
                    )
    return mismatches


async def _run_page_matrix(
    client: AsyncTestClient[Litestar], app: Litestar, scene: Scene
) -> list[str]:
    mismatches: list[str] = []
    for method, path in route_table(app):
        if is_api(path):
            continue
        rule = page_rule(method, path)
        assert rule is not None, f"{method} {path} has no page rule"
        url = _fill(path, scene, None, OWN)
        client.cookies.clear()
        response = await client.request(method, url, follow_redirects=False)
        if response.status_code != rule.anon:
            mismatches.append(
                f"{method} {path} anonymous: expected {rule.anon}, got {response.status_code}"
            )
        elif rule.anon == 302 and not response.headers["location"].startswith("/login?next="):
            mismatches.append(f"{method} {path} anonymous: redirected to {response.headers}")
        if method != "GET":
            continue  # forms are CSRF-protected; the page tests post them properly
        for role in ROLES:
            caller = scene.callers[role]
            client.cookies.clear()
            response = await client.get(
                url, headers={"Cookie": f"laowu_session={caller.cookie}"}, follow_redirects=False
            )
            login_redirect = response.status_code in (302, 303) and response.headers.get(
                "location", ""
            ).startswith("/login")
            if response.status_code >= 500 or (login_redirect and not rule.public):
                mismatches.append(
                    f"{method} {path} as {role.value}: got {response.status_code} "
                    f"{response.headers.get('location', '')}"
                )
    return mismatches


# The access rules are plain Python over values the database hands back; the matrix's
# ~350 requests run on SQLite only to keep the suite quick. The journey and auth tests
# cover the SQL-side scoping (prefix filters on lists) on PostgreSQL too.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_authorisation_matrix(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
) -> None:
    scene = await build_scene(sessions, make_account, client)
    mismatches = await _run_api_matrix(client, scene)
    mismatches += await _run_page_matrix(client, app, scene)
    assert not mismatches, f"{len(mismatches)} cells differ:\n" + "\n".join(mismatches)


def _any_ids(path: str) -> str:
    """Every path parameter filled with some value: the session check comes first."""
    path = path.replace("{code:str}", YUZHONG)
    path = re.sub(r"\{[a-z_]+:int\}", "1", path)
    return re.sub(r"\{[a-z_]+:str\}", "x", path)


async def test_expired_session_is_anonymous_everywhere(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
) -> None:
    """A token past its absolute timeout opens no API route that anonymous cannot."""
    account = await make_account("city_admin", "50")
    token = await mint_token(sessions, account.id, "bearer")
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(AuthSession).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    for (method, path), rule in API_RULES.items():
        if rule.anon != 401:
            continue
        response = await client.request(
            method,
            _any_ids(path),
            headers={"Authorization": f"Bearer {token}"},
            json={} if method != "GET" else None,
        )
        assert response.status_code == 401, (method, path, response.text)
