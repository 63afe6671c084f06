"""Points pages: my score (phone), district rankings with decisions, appeals, and
the public disclosure page (no login)."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from markupsafe import Markup
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import col

from marketplace.access import Role, can, require
from marketplace.brokers.models import Broker
from marketplace.errors import DomainError, NotFound
from marketplace.scoring import decisions, public, service
from marketplace.scoring.models import BrokerScore, ScoreAppeal
from marketplace.scoring.rules import Period
from web.auth import requires_login
from web.deps import CurrentActor, Db, Paging, RowId
from web.pages import charts
from web.pages.base import refuse_in_form, render, render_fragment

MAX_CHART_SCORES = 20_000


class ReasonForm(BaseModel):
    reason: str = ""


class DecisionForm(BaseModel):
    kind: str = ""
    decision: str = ""
    reason: str = ""
    recompute: str = ""


class ComputeForm(BaseModel):
    period: str = ""


def _period_or_latest(text: str | None, latest: Period | None) -> Period | None:
    return Period.parse(text) if text else latest


async def _names(db: Db, ids: list[int]) -> dict[int, str]:
    rows = await db.execute(select(col(Broker.id), col(Broker.name)).where(col(Broker.id).in_(ids)))
    return {int(bid or 0): name for bid, name in rows.all()}


async def _own_broker(db: Db, actor: CurrentActor) -> Broker:
    broker = (
        await db.execute(select(Broker).where(col(Broker.user_id) == actor.user_id))
    ).scalar_one_or_none()
    if broker is None:
        raise NotFound("您的账号没有对应的经纪人档案")
    return broker


@get("/scores/me", guards=[requires_login], include_in_schema=False)
async def my_score(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor
) -> Response[Any] | Template:
    """The broker's latest score with every component, rank, lines and what to do."""
    if actor.role != Role.broker:
        return Redirect("/scores")
    return await _my_score(request, db, actor)


async def _my_score(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    broker = await _own_broker(db, actor)
    history = await service.broker_history(session=db, actor=actor, broker_id=broker.id or 0)
    explained = await service.explain(db, history[-1]) if history else None
    appealed = False
    if history:
        appealed = (
            await db.execute(
                select(col(ScoreAppeal.id)).where(col(ScoreAppeal.score_id) == history[-1].id)
            )
        ).first() is not None
    return await render(
        request,
        db,
        "scores/me.html",
        broker=broker,
        explained=explained,
        appealed=appealed,
        trend=charts.score_trend([(s.period, s.score) for s in history]),
        errors=errors or {},
        status_code=status_code,
    )


@post("/scores/{score_id:int}/appeal", guards=[requires_login], include_in_schema=False)
async def appeal_submit(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    score_id: RowId,
    data: URLEncodedBody[ReasonForm],
) -> Response[Any] | Template:
    try:
        await decisions.appeal(session=db, actor=actor, score_id=score_id, reason=data.reason)
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _my_score(request, db, actor, errors=errors, status_code=exc.status)
    return Redirect("/scores/me", status_code=HTTP_303_SEE_OTHER)


@get("/scores", guards=[requires_login], include_in_schema=False)
async def rankings_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    page: Paging,
    period: FromQuery[str | None] = None,
    region: FromQuery[str | None] = None,
) -> Response[Any] | Template:
    """Officers: the period's ranking for their region, the distribution with the
    lines, and the candidates awaiting a decision."""
    if actor.role == Role.broker:
        return Redirect("/scores/me")
    region_code = region or actor.region_code
    require(actor, "score.view", region_code=region_code)
    chosen = _period_or_latest(period, await public.latest_period(db))
    rows: list[BrokerScore] = []
    total = 0
    chart = ""
    names: dict[int, str] = {}
    if chosen is not None:
        rows, total = await service.list_scores(
            session=db,
            actor=actor,
            period=chosen,
            region_code=region_code,
            limit=page.limit,
            offset=page.offset,
        )
        all_scores, _ = await service.list_scores(
            session=db,
            actor=actor,
            period=chosen,
            region_code=region_code,
            limit=MAX_CHART_SCORES,
            offset=0,
        )
        lines = None
        if len(region_code) >= 6 and all_scores:
            lines, _ = await service.district_lines(db, all_scores[0])
        chart = charts.score_distribution(
            [s.score for s in all_scores],
            lines.promotion if lines else None,
            lines.elimination if lines else None,
            title=f"{chosen} 积分分布",
        )
        names = await _names(db, [r.broker_id for r in rows])
    return await render(
        request,
        db,
        "scores/rankings.html",
        period=chosen,
        region_code=region_code,
        rows=rows,
        total=total,
        page=page,
        chart=chart,
        names=names,
        can_decide=can(actor, "score.decide", region_code=region_code),
        can_compute=can(actor, "score.compute"),
    )


@post("/scores/compute", guards=[requires_login], include_in_schema=False)
async def compute_submit(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, data: URLEncodedBody[ComputeForm]
) -> Response[Any] | Template:
    try:
        period = Period.parse(data.period)
        await service.compute(session=db, actor=actor, period=period, trigger="api")
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await render(request, db, "scores/error.html", errors=errors, status_code=exc.status)
    return Redirect(f"/scores?period={period}", status_code=HTTP_303_SEE_OTHER)


@post("/scores/{score_id:int}/decision", guards=[requires_login], include_in_schema=False)
async def decision_submit(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    score_id: RowId,
    data: URLEncodedBody[DecisionForm],
) -> Response[Any] | Template:
    score = await service.get_score(db, score_id)
    back = "/scores/appeals" if data.kind == "appeal" else f"/scores?period={score.period}"
    try:
        if data.kind == "appeal":
            await decisions.decide_appeal(
                session=db,
                actor=actor,
                score_id=score_id,
                decision=data.decision,
                reason=data.reason,
                recompute=bool(data.recompute),
            )
        else:
            await decisions.decide_candidate(
                session=db,
                actor=actor,
                score_id=score_id,
                kind=data.kind,
                decision=data.decision,
                reason=data.reason,
            )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await render(
            request, db, "scores/error.html", errors=errors, back=back, status_code=exc.status
        )
    return Redirect(back, status_code=HTTP_303_SEE_OTHER)


@get("/scores/appeals", guards=[requires_login], include_in_schema=False)
async def appeals_page(request: Request[Any, Any, Any], db: Db, actor: CurrentActor) -> Template:
    rows = await decisions.pending_appeals(session=db, actor=actor)
    names = await _names(db, [s.broker_id for _, s in rows])
    return await render(request, db, "scores/appeals.html", rows=rows, names=names)


# ------------------------------------------------------------- public disclosure


# The public page is the same for every visitor and changes when a month's scores are
# computed: each server process keeps its rendered content for a short while, so a
# crowd of visitors costs a few queries and renders a minute, not a few per visitor
# (docs/operations.md, "Load test"). Only the layout around it (the visitor's CSRF
# token, a signed-in visitor's header) is rendered per request. Keyed by the query;
# bounded by size, since the query is the visitor's (a district's page is ~130,000
# characters).
PUBLIC_CACHE_SECONDS = 30.0
PUBLIC_CACHE_CHARS = 8_000_000

_PublicKey = tuple[str | None, str | None]
_PublicCache = dict[_PublicKey, tuple[float, Markup]]


async def _public_view(db: Db, district: str | None, period: str | None) -> dict[str, Any]:
    latest = await public.latest_period(db)
    chosen = _period_or_latest(period, latest)
    districts = await public.districts(db)
    figures = await public.district_figures(db, chosen)
    code = district or next((f.code for f in figures if f.average_score is not None), None)
    region = None
    rows: list[public.PublicRow] = []
    reviews: list[public.PublicReview] = []
    if code and chosen:
        region = await public.district_region(db, code)
        rows = await public.ranking(db, code, chosen)
        # The latest year with recorded outcomes: this year's, else last year's.
        reviews = await public.reviews(db, code, chosen.year) or await public.reviews(
            db, code, chosen.year - 1
        )
    bars = charts.district_bars(
        [
            charts.DistrictBar(
                f.name, f.villages_covered / f.villages if f.villages else 0.0, f.average_score
            )
            for f in figures
            if f.villages
        ]
    )
    return {
        "period": chosen,
        "districts": districts,
        "district": region,
        "rows": rows,
        "reviews": reviews,
        "figures": figures,
        "bars": bars,
    }


@get("/public/rankings", include_in_schema=False)
async def public_rankings(
    request: Request[Any, Any, Any],
    db: Db,
    district: FromQuery[str | None] = None,
    period: FromQuery[str | None] = None,
) -> Template:
    """No login: each district's ranking with masked names, the year's review
    outcomes, and coverage by district."""
    cache: _PublicCache = request.app.state.setdefault("public_rankings_cache", {})
    key = (district, period)
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and now - hit[0] < PUBLIC_CACHE_SECONDS:
        body = hit[1]
    else:
        view = await _public_view(db, district, period)  # a refusal is not kept
        body = render_fragment(request, "scores/_public_body.html", **view)
        _keep(cache, key, now, body)
    return await render(request, db, "scores/public.html", body=body)


def _keep(cache: _PublicCache, key: _PublicKey, now: float, body: Markup) -> None:
    """Keep ``body`` under ``key``: first drop what has expired, then the oldest
    until the whole cache fits in PUBLIC_CACHE_CHARS."""
    cache.pop(key, None)
    for old in [k for k, (at, _) in cache.items() if now - at >= PUBLIC_CACHE_SECONDS]:
        del cache[old]
    size = len(body) + sum(len(kept) for _, kept in cache.values())
    while cache and size > PUBLIC_CACHE_CHARS:
        _, dropped = cache.pop(next(iter(cache)))  # the oldest: kept in insertion order
        size -= len(dropped)
    if len(body) <= PUBLIC_CACHE_CHARS:
        cache[key] = (now, body)


@get("/public/rankings.csv", include_in_schema=False)
async def public_rankings_csv(
    db: Db, district: FromQuery[str | None] = None, period: FromQuery[str | None] = None
) -> Response[str]:
    """One district's ranking, or without ``district`` the whole city's."""
    chosen = _period_or_latest(period, await public.latest_period(db))
    if chosen is None:
        raise NotFound("还没有公布的积分")
    rows = await public.ranking(db, district, chosen)
    name = f"rankings-{district or '50'}-{chosen}.csv"
    return Response(
        public.ranking_csv(chosen, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename={name}"},
    )
