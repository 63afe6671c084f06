"""A real server for the browser tests: uvicorn in a thread on a free 127.0.0.1
port, serving ``create_app`` over a copy of the migrated SQLite template, and one
headless Debian Chromium (never downloaded)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
import uvicorn

from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate
from marketplace.crypto import DataCipher, decode_key
from marketplace.db import create_engine, session_factory, unit_of_work
from tests.conftest import PASSWORD, TEST_DATA_KEY, YUZHONG
from web.app import create_app
from web.settings import DatabaseSettings, SecuritySettings, Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOWNSHIP = "500103001"  # 七星岗街道
VILLAGE = "500103001003"  # 华一坡社区


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    totp_secret: str | None


@dataclass(frozen=True)
class LiveServer:
    url: str
    logins: dict[str, Login]
    db_url: str = ""  # for steps a journey takes outside the browser


# Each browser journey logs in its own account: a TOTP code may be used only once.
ACCOUNTS = {
    "admin_phone": ("district_admin", YUZHONG, "渝中区管理员甲"),
    "admin_pc": ("district_admin", YUZHONG, "渝中区管理员乙"),
    "broker": ("broker", VILLAGE, "张经纪"),
    "city_phone": ("city_admin", "50", "市局管理员甲"),
    "city_pc": ("city_admin", "50", "市局管理员乙"),
    "auditor_phone": ("auditor", YUZHONG, "渝中区审计甲"),
    "auditor_pc": ("auditor", YUZHONG, "渝中区审计乙"),
    "village_officer": ("village_officer", VILLAGE, "华一坡社区经办人"),
    "township_officer": ("township_officer", TOWNSHIP, "七星岗街道经办人"),
    "city_scores": ("city_admin", "50", "市局积分管理员"),
}


async def _prepare(url: str) -> dict[str, Login]:
    engine = create_engine(url, pooled=False)
    cipher = DataCipher(decode_key(TEST_DATA_KEY))
    logins = {}
    try:
        async with unit_of_work(session_factory(engine)) as session:
            for key, (role, region, name) in ACCOUNTS.items():
                username = f"b_{key}"
                _, uri = await accounts.create_user(
                    session=session,
                    actor=SYSTEM,
                    cipher=cipher,
                    data=UserCreate(
                        username=username,
                        display_name=name,
                        role=role,
                        region_code=region,
                        password=PASSWORD,
                    ),
                )
                secret = pyotp.parse_uri(uri).secret if uri else None
                logins[key] = Login(username, PASSWORD, secret)
    finally:
        await engine.dispose()
    return logins


@pytest.fixture(scope="module")
def live_server(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    db = tmp / "laowu.db"
    shutil.copyfile(sqlite_template, db)
    url = f"sqlite+aiosqlite:///{db}"
    logins = asyncio.run(_prepare(url))
    settings = Settings(
        env="test",
        db=DatabaseSettings(url=url, pooled=False),
        security=SecuritySettings(secret_key="browser-secret-" + "x" * 32, data_key=TEST_DATA_KEY),
        media_dir=tmp / "media",
        var_dir=tmp,
        outbox_in_process=False,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port; no race with a probe
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings), log_level="warning", lifespan="on", ws="none", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(200):  # up to 10 s, returning as soon as uvicorn says it is up
        if server.started or not thread.is_alive():
            started.set()
            break
        started.wait(0.05)
    if not server.started:
        pytest.fail("the test server did not start")
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", logins, db_url=url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def browser(live_server: LiveServer) -> Iterator[object]:
    """Module-scoped, and set up after the server: while Playwright's sync API is
    open its event loop counts as running in this thread, so no fixture may call
    ``asyncio.run`` then, nor may a later async test run."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM} (apt install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-gpu",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
