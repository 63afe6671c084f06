"""The app factory's own behaviour: the in-process outbox and health endpoints."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from marketplace.notifications import service as inbox
from tests.conftest import YUZHONG
from web.app import create_app
from web.settings import Settings


async def test_in_process_outbox_delivers_right_after_the_write_commits(
    settings: Settings, make_account
) -> None:
    # A timer far longer than the test: only the post-commit wake-up can deliver in time.
    live = dataclasses.replace(settings, outbox_in_process=True, outbox_interval_seconds=3600)
    app = create_app(live)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        await asyncio.sleep(0.2)  # the loop's first drain on start-up
        admin = await make_account("city_admin", "50")
        body = {"username": admin.username, "password": admin.password, "otp": admin.otp()}
        token = (await client.post("/api/v1/auth/login", json=body)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        created = await client.post(
            "/api/v1/users",
            headers=auth,
            json={
                "username": "newofficer",
                "display_name": "新经办人",
                "role": "township_officer",
                "region_code": f"{YUZHONG}001",
                "password": "a-long-password-123",
            },
        )
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        for _ in range(50):
            async with app.state.sessions() as session:
                if await inbox.unread_count(session=session, user_id=user_id):
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the welcome message was not delivered after the commit")


async def test_health_and_readiness(client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_guards_run_on_the_event_loop(app: Litestar) -> None:
    """Litestar runs a plain ``def`` guard in its thread pool (a thread hand-off on
    every request it guards); every guard of ours is ``async def``."""
    guards = {
        getattr(guard, "func", guard)
        for route in app.routes
        for handler in route.route_handlers
        for guard in handler.resolve_guards()
    }
    assert guards
    assert [g.__name__ for g in guards if not inspect.iscoroutinefunction(g)] == []
