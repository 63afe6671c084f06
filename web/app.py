"""The app factory: ``create_app(settings) -> Litestar``. Nothing happens at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from marketplace.db import create_engine, is_sqlite, session_factory
from marketplace.dispatcher import drain
from matching.search import open_backend as open_search
from web import proxies, ratelimit, security_headers
from web.api.audit import AuditController
from web.api.auth import AuthController, MeController
from web.api.billing import BILLING_CONTROLLERS
from web.api.brokers import ApplicationsController, BrokersController
from web.api.exams import ExamsController
from web.api.health import healthz, readyz
from web.api.jobs import JobsController
from web.api.matching import MatchingController
from web.api.notifications import NotificationsController
from web.api.organizations import OrganizationsController
from web.api.questions import QuestionsController
from web.api.recommendations import PlacementsController, RecommendationsController
from web.api.regions import RegionsController
from web.api.scores import BrokerScoresController, ScoreModelsController, ScoresController
from web.api.search import SearchController
from web.api.tasks import CONTROLLERS as TASK_CONTROLLERS
from web.api.training import TrainingCoursesController, TrainingsController
from web.api.users import UsersController
from web.api.workers import WorkersController
from web.auth import AuthMiddleware
from web.deps import DEPENDENCIES
from web.errors import EXCEPTION_HANDLERS, audit_refusal
from web.openapi import COMPONENTS, document_api
from web.ops.memory import limit_malloc_arenas
from web.ops.metrics import Registry
from web.ops.metrics import metrics as metrics_route
from web.ops.observability import observe
from web.pages import PAGE_ROUTES
from web.pages.templating import configure_templates
from web.schedule import Schedule, duties
from web.settings import Settings
from web.wiring import build_registry

log = logging.getLogger(__name__)
HERE = Path(__file__).parent

API_ROUTES: list[ControllerRouterHandler] = [
    AuthController,
    MeController,
    UsersController,
    RegionsController,
    AuditController,
    NotificationsController,
    WorkersController,
    ApplicationsController,
    BrokersController,
    TrainingsController,
    TrainingCoursesController,
    QuestionsController,
    ExamsController,
    MatchingController,
    RecommendationsController,
    PlacementsController,
    OrganizationsController,
    JobsController,
    SearchController,
    *TASK_CONTROLLERS,
    *BILLING_CONTROLLERS,
    ScoresController,
    ScoreModelsController,
    BrokerScoresController,
    healthz,
    readyz,
    metrics_route,
]


async def _outbox_loop(app: Litestar, wakeup: asyncio.Event, interval: float) -> None:
    """The embedded default: drain the outbox inside the server right after a write
    request commits (``wakeup``) and on a short timer (retries, other processes)."""
    schedule = Schedule(duties(app.state.settings.billing))
    while True:
        wakeup.clear()
        try:
            await drain(app.state.sessions, app.state.registry)
        except Exception:  # keep the loop alive; the next tick retries
            log.exception("outbox drain failed")
        await schedule.tick(app.state.duty_sessions)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), timeout=interval)


def create_app(settings: Settings) -> Litestar:
    proxies.trusted()  # a malformed LAOWU_TRUSTED_PROXIES stops the start, with its words
    limit_malloc_arenas()  # every server process, before the index writers' threads
    engine = create_engine(settings.db.url, echo=settings.db.echo, pooled=settings.db.pooled)
    search = open_search(
        url=settings.search.url, api_key=settings.search.api_key, var_dir=settings.var_dir
    )
    state = State(
        {
            "settings": settings,
            "engine": engine,
            "sessions": session_factory(engine),
            "cipher": settings.security.cipher(),
            "registry": build_registry(search=search),
            "search": search,
            "metrics": Registry(),
        }
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        task = None
        duty_engine = engine
        if settings.outbox_in_process:
            # The duties' statements are long at scale (a GROUP BY over 3,000,000
            # workers for the month's HR tasks): on SQLite they run in aiosqlite's
            # thread, not inline on the loop, so requests are answered meanwhile.
            if is_sqlite(settings.db.url):
                duty_engine = create_engine(
                    settings.db.url, pooled=settings.db.pooled, inline=False
                )
            app.state.duty_sessions = session_factory(duty_engine)
            wakeup = asyncio.Event()
            app.state.outbox_wakeup = wakeup
            task = asyncio.create_task(_outbox_loop(app, wakeup, settings.outbox_interval_seconds))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if duty_engine is not engine:
                await duty_engine.dispose()
            await engine.dispose()
            await search.close()

    app = Litestar(
        route_handlers=[
            *API_ROUTES,
            *PAGE_ROUTES,
            create_static_files_router(
                path="/static", directories=[HERE / "static"], name="static"
            ),
        ],
        state=state,
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        after_exception=[audit_refusal],
        middleware=[AuthMiddleware()],
        before_request=ratelimit.before_request,
        csrf_config=CSRFConfig(
            secret=settings.security.secret_key,
            cookie_name="laowu_csrf",
            cookie_secure=settings.security.secure_cookies,
            cookie_samesite="strict",
            exclude=["^/api/", "^/healthz", "^/readyz", "^/schema", "^/metrics"],
        ),
        template_config=TemplateConfig(
            directory=HERE / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=configure_templates,
        ),
        openapi_config=OpenAPIConfig(
            title="劳务经纪人服务平台 API", version="1.0.0", path="/schema", components=COMPONENTS
        ),
        lifespan=[lifespan],
        debug=False,
        # Ours (web/ops/observability.py, set by laowu / web.asgi): Litestar's default
        # would replace the root logger's handlers at startup.
        logging_config=None,
    )
    document_api(app)
    # Outside routing, so 404s and Litestar's own errors get them too (docs/operations.md).
    app.asgi_handler = observe(
        security_headers.wrap(
            app.asgi_handler,
            hsts=settings.security.secure_cookies,
            page_csp={
                security_headers.STRIPE_PAGE_PREFIX: security_headers.stripe_page_csp(
                    js_url=settings.stripe.js_url, api_base=settings.stripe.api_base
                )
            },
        ),
        state["metrics"],
    )
    return app
