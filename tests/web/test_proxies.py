"""The caller's address behind a reverse proxy (web/proxies.py, docs/operations.md):
the audit log records the address the proxy saw, and only when the peer is a proxy
named in LAOWU_TRUSTED_PROXIES."""

from __future__ import annotations

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.audit.models import AuditEntry
from tests.conftest import PASSWORD, YUZHONG
from web import proxies

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def _login_ip(
    app: Litestar,
    sessions: async_sessionmaker[AsyncSession],
    username: str,
    peer: str,
    forwarded: str | None,
) -> str | None:
    """Log in from ``peer`` (with an X-Forwarded-For) and return the audited address."""
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://laowu") as client:
        response = await client.post(
            "/api/v1/auth/login",
            json={"username": username, "password": PASSWORD},
            headers=headers,
        )
        assert response.status_code == 200, response.text
    async with sessions() as session:
        entry = (
            await session.execute(
                select(AuditEntry)
                .where(col(AuditEntry.action).like("auth.login%"))
                .order_by(col(AuditEntry.id).desc())
                .limit(1)
            )
        ).scalar_one()
    return entry.ip


@SQLITE
async def test_the_audit_log_records_the_caller_behind_a_trusted_proxy(
    app: Litestar,
    sessions: async_sessionmaker[AsyncSession],
    make_account: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = await make_account("employer", YUZHONG)  # type: ignore[operator]
    monkeypatch.setenv(proxies.VARIABLE, "10.0.0.0/8")
    # Through the proxy (10.1.2.3): the address nginx saw, not the forged first entry.
    ip = await _login_ip(app, sessions, account.username, "10.1.2.3", "1.1.1.1, 203.0.113.9")
    assert ip == "203.0.113.9"
    # A caller outside the trusted network cannot choose its address with the header.
    ip = await _login_ip(app, sessions, account.username, "198.51.100.4", "203.0.113.9")
    assert ip == "198.51.100.4"
    # An empty setting trusts no one: the proxy's own address is recorded.
    monkeypatch.setenv(proxies.VARIABLE, "")
    ip = await _login_ip(app, sessions, account.username, "10.1.2.3", "203.0.113.9")
    assert ip == "10.1.2.3"


def test_trusted_proxies_take_addresses_and_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(proxies.VARIABLE, " 192.168.10.5 , fd00::/8,10.0.0.0/8")
    assert proxies.is_trusted("192.168.10.5")
    assert not proxies.is_trusted("192.168.10.6")
    assert proxies.is_trusted("fd00::1")
    assert proxies.is_trusted("10.200.0.1")
    assert not proxies.is_trusted("testclient")
    monkeypatch.delenv(proxies.VARIABLE)
    assert proxies.is_trusted("127.0.0.1")  # nginx on the same machine, by default
    with pytest.raises(ValueError, match=r"LAOWU_TRUSTED_PROXIES.*10\.0\.0\.0/33"):
        proxies.parse("10.0.0.0/33")


def test_a_garbage_forwarded_entry_keeps_the_proxy_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scope = {"client": ("127.0.0.1", 1), "headers": [(b"x-forwarded-for", b"not-an-ip")]}
    assert proxies.client_ip(scope) == "127.0.0.1"
