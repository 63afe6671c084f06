"""``GET /metrics`` (docs/operations.md): Prometheus text, who may read it, and what
it reports: requests by route template and status class, latency, outbox lag, pool
balances, memory."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.db import unit_of_work
from marketplace.events import emit
from tests.billing.helpers import finance, fund
from web.app import create_app
from web.settings import DatabaseSettings, Settings

TOKEN = "metrics-token-for-tests-0123456789"


def metric(body: str, name: str, **labels: str) -> float | None:
    """The value of one sample, labels matched exactly (in any order)."""
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        assert match, f"not a Prometheus sample line: {line!r}"
        if match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


async def test_metrics_report_requests_outbox_and_pools(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAOWU_METRICS_TOKEN", TOKEN)
    await fund(sessions, "500103", "employment_subsidy", 123_456, key="m1", actor=finance())
    async with unit_of_work(sessions) as session:
        await emit(session, "metrics.probe", {})
    for _ in range(2):
        assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/no/such/page")).status_code == 404
    assert (await client.get("/api/v1/workers/7")).status_code == 401

    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    body = response.text
    get = {"method": "GET"}
    assert metric(body, "laowu_http_requests_total", **get, route="/healthz", status="2xx") == 2
    assert metric(body, "laowu_http_requests_total", **get, route="unmatched", status="4xx") == 1
    # By route template, not by the path asked for: ids do not explode the series.
    worker_route = {"route": "/api/v1/workers/{worker_id}", "status": "4xx"}
    assert metric(body, "laowu_http_requests_total", **get, **worker_route) == 1
    health = {**get, "route": "/healthz", "status": "2xx"}
    assert metric(body, "laowu_http_request_duration_seconds_count", **health) == 2
    assert metric(body, "laowu_http_request_duration_seconds_bucket", **health, le="+Inf") == 2
    assert metric(body, "laowu_http_request_duration_seconds_bucket", **health, le="10.0") == 2

    unprocessed = metric(body, "laowu_outbox_unprocessed_events")
    assert unprocessed is not None
    assert unprocessed >= 1  # the probe, and the appropriation's own events
    age = metric(body, "laowu_outbox_oldest_unprocessed_age_seconds")
    assert age is not None
    assert age >= 0
    pool = {"district": "500103", "source": "employment_subsidy"}
    assert metric(body, "laowu_fund_pool_balance_fen", **pool, account="available") == 123_456
    assert metric(body, "laowu_fund_pool_balance_fen", **pool, account="reserved") == 0
    assert metric(body, "laowu_database_up") == 1
    memory = metric(body, "process_resident_memory_bytes")
    assert memory is not None
    assert memory > 10_000_000


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_metrics_need_the_token_when_one_is_set(
    client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAOWU_METRICS_TOKEN", TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 403
        assert "无权读取监控指标" in response.text


async def _from(app: Litestar, host: str, headers: dict[str, str] | None = None) -> Any:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as raw:
        return await raw.get("/metrics", headers=headers or {})


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_without_a_token_only_direct_loopback_may_read(
    app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAOWU_METRICS_TOKEN", raising=False)
    assert (await _from(app, "127.0.0.1")).status_code == 200
    assert (await _from(app, "::1")).status_code == 200
    assert (await _from(app, "203.0.113.9")).status_code == 403
    # Through a proxy on the same machine: the connection is loopback, the caller is not.
    proxied = await _from(app, "127.0.0.1", {"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_metrics_still_answer_when_the_database_does_not(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAOWU_METRICS_TOKEN", TOKEN)
    gone = f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'laowu.db'}"
    app = create_app(dataclasses.replace(settings, db=DatabaseSettings(url=gone, pooled=False)))
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert metric(response.text, "laowu_database_up") == 0
    assert metric(response.text, "process_resident_memory_bytes")
