"""Broker applications (public submission and tracking, officers' review) and the
broker record (profile, flags, villages, status). docs/brokers.md."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, patch, post
from litestar.params import JSONBody, QueryParameter

from marketplace.brokers import applications, gaps
from marketplace.brokers import service as brokers
from marketplace.brokers.applications import ApplicationInput, Outcome
from marketplace.brokers.models import (
    ApplicationCreate,
    ApplicationCreated,
    ApplicationPublic,
    ApplicationResubmit,
    ApplicationStatus,
    ApplicationTracked,
    BrokerPublic,
    BrokerStatus,
    BrokerStatusRequest,
    BrokerUpdate,
    BulkDecisionRequest,
    BulkItemResult,
    Credentials,
    DecisionRequest,
    DecisionResult,
    GapVillage,
    StatusChangePublic,
)
from web import ratelimit
from web.api.schemas import Paged
from web.auth import client_ip, requires_login
from web.deps import Cipher, CurrentActor, Db, Paging, RowId

RegionCode = Annotated[
    str | None, QueryParameter(pattern=r"^\d{2,12}$", description="区划代码前缀")
]


def as_input(data: ApplicationCreate) -> ApplicationInput:
    return ApplicationInput(**data.model_dump())


async def _result(db: Db, cipher: Cipher, outcome: Outcome) -> DecisionResult:
    credentials = None
    if outcome.username and outcome.initial_password:
        credentials = Credentials(
            username=outcome.username, initial_password=outcome.initial_password
        )
    return DecisionResult(
        application=await applications.to_public(db, outcome.application, cipher),
        credentials=credentials,
    )


class ApplicationsController(Controller):
    """Submitting and tracking need no login (anyone may apply and follow their own
    application with its code and phone); everything else is for officers."""

    path = "/api/v1/broker-applications"
    tags = ["经纪人申请"]

    @post("/", status_code=201)
    async def submit(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        cipher: Cipher,
        data: JSONBody[ApplicationCreate],
    ) -> ApplicationCreated:
        ratelimit.check(request, ratelimit.SUBMIT)
        application = await applications.submit(
            session=db, data=as_input(data), cipher=cipher, ip=client_ip(request.scope)
        )
        assert application.id is not None
        return ApplicationCreated(
            id=application.id, tracking_code=application.tracking_code, status=application.status
        )

    @get("/track")
    async def track(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        cipher: Cipher,
        code: Annotated[str, QueryParameter(min_length=1, max_length=32, description="跟踪码")],
        phone: Annotated[str, QueryParameter(min_length=1, max_length=20, description="手机号")],
    ) -> ApplicationTracked:
        ratelimit.check(request, ratelimit.TRACK)
        application = await applications.track(session=db, code=code, phone=phone, cipher=cipher)
        return await applications.to_tracked(db, application, cipher)

    @post("/track/resubmit", status_code=200)
    async def resubmit(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        cipher: Cipher,
        data: JSONBody[ApplicationResubmit],
    ) -> ApplicationTracked:
        ratelimit.check(request, ratelimit.TRACK)
        application = await applications.resubmit(
            session=db,
            code=data.tracking_code,
            phone=data.phone,
            data=as_input(data.application),
            cipher=cipher,
            ip=client_ip(request.scope),
        )
        return await applications.to_tracked(db, application, cipher)

    @get("/", guards=[requires_login])
    async def list_applications(
        self,
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        page: Paging,
        status: Annotated[ApplicationStatus | None, QueryParameter()] = None,
        region_code: RegionCode = None,
    ) -> Paged[ApplicationPublic]:
        items, total = await applications.list_applications(
            session=db,
            actor=actor,
            status=status,
            region_code=region_code,
            limit=page.limit,
            offset=page.offset,
        )
        return Paged(
            items=[await applications.to_public(db, a, cipher) for a in items], total=total
        )

    @get("/counts", guards=[requires_login])
    async def counts(
        self, db: Db, actor: CurrentActor, region_code: RegionCode = None
    ) -> dict[str, int]:
        return await applications.counts(session=db, actor=actor, region_code=region_code)

    @get("/{application_id:int}", guards=[requires_login])
    async def get_application(
        self, db: Db, actor: CurrentActor, cipher: Cipher, application_id: RowId
    ) -> ApplicationPublic:
        application = await applications.get(session=db, actor=actor, application_id=application_id)
        return await applications.to_public(db, application, cipher, with_history=True)

    @post("/{application_id:int}/decisions", status_code=200, guards=[requires_login])
    async def decide(
        self,
        db: Db,
        actor: CurrentActor,
        cipher: Cipher,
        application_id: RowId,
        data: JSONBody[DecisionRequest],
    ) -> DecisionResult:
        outcome = await applications.decide(
            session=db,
            actor=actor,
            application_id=application_id,
            decision=data.decision,
            comment=data.comment,
            cipher=cipher,
        )
        return await _result(db, cipher, outcome)

    @post("/decisions", status_code=200, guards=[requires_login])
    async def decide_many(
        self, db: Db, actor: CurrentActor, cipher: Cipher, data: JSONBody[BulkDecisionRequest]
    ) -> list[BulkItemResult]:
        results = await applications.decide_many(
            session=db,
            actor=actor,
            application_ids=data.ids,
            decision=data.decision,
            comment=data.comment,
            cipher=cipher,
        )
        items = []
        for r in results:
            if r.outcome is None:
                items.append(
                    BulkItemResult(
                        id=r.application_id, ok=False, error=r.error.message if r.error else None
                    )
                )
                continue
            shaped = await _result(db, cipher, r.outcome)
            items.append(
                BulkItemResult(
                    id=r.application_id,
                    ok=True,
                    status=r.outcome.application.status,
                    credentials=shaped.credentials,
                )
            )
        return items


class BrokersController(Controller):
    path = "/api/v1/brokers"
    tags = ["经纪人"]
    guards = [requires_login]

    @get("/")
    async def list_brokers(
        self,
        db: Db,
        actor: CurrentActor,
        page: Paging,
        region_code: RegionCode = None,
        status: Annotated[BrokerStatus | None, QueryParameter()] = None,
    ) -> Paged[BrokerPublic]:
        items, total = await brokers.list_brokers(
            session=db,
            actor=actor,
            region_code=region_code,
            status=status,
            limit=page.limit,
            offset=page.offset,
        )
        return Paged(items=[await brokers.to_public(db, b) for b in items], total=total)

    @get("/gaps")
    async def recruitment_gaps(
        self,
        db: Db,
        actor: CurrentActor,
        district_code: Annotated[
            str | None, QueryParameter(pattern=r"^\d{6}$", description="区县代码")
        ] = None,
    ) -> list[GapVillage]:
        return await gaps.village_gaps(session=db, actor=actor, district_code=district_code)

    @get("/{broker_id:int}")
    async def get_broker(self, db: Db, actor: CurrentActor, broker_id: RowId) -> BrokerPublic:
        broker = await brokers.get(session=db, actor=actor, broker_id=broker_id)
        return await brokers.to_public(db, broker)

    @get("/{broker_id:int}/status-history")
    async def status_history(
        self, db: Db, actor: CurrentActor, broker_id: RowId
    ) -> list[StatusChangePublic]:
        await brokers.get(session=db, actor=actor, broker_id=broker_id)
        return await brokers.status_history(session=db, broker_id=broker_id)

    @patch("/{broker_id:int}")
    async def update_broker(
        self, db: Db, actor: CurrentActor, broker_id: RowId, data: JSONBody[BrokerUpdate]
    ) -> BrokerPublic:
        broker = await brokers.update(session=db, actor=actor, broker_id=broker_id, data=data)
        return await brokers.to_public(db, broker)

    @post("/{broker_id:int}/status", status_code=200)
    async def change_status(
        self, db: Db, actor: CurrentActor, broker_id: RowId, data: JSONBody[BrokerStatusRequest]
    ) -> BrokerPublic:
        broker = await brokers.change_status(
            session=db, actor=actor, broker_id=broker_id, action=data.action, reason=data.reason
        )
        return await brokers.to_public(db, broker)
