"""Schemathesis against the published OpenAPI document, in process, as several roles.

Every API operation gets generated requests, valid and invalid, and each answer is
checked: no 5xx, status code and body as declared, invalid input refused, and the
bearer token not ignorable. ``LAOWU_FUZZ_EXAMPLES`` raises the example count
(``make fuzz``); the suite runs a few per operation so a push stays quick.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate
from marketplace.db import create_engine, session_factory, unit_of_work
from tests.conftest import PASSWORD, TEST_DATA_KEY, _pg_admin, _pg_url, _with_database
from web.app import create_app
from web.settings import DatabaseSettings, SecuritySettings, Settings, StripeSettings

EXAMPLES = int(os.environ.get("LAOWU_FUZZ_EXAMPLES", "3"))
ROLES = {
    "city_admin": "50",
    "broker": "500103001003",
    "finance": "50",
}

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


async def _make_accounts(url: str) -> dict[str, tuple[str, str | None]]:
    engine = create_engine(url)
    made: dict[str, tuple[str, str | None]] = {}
    try:
        cipher = SecuritySettings(secret_key="x" * 44, data_key=TEST_DATA_KEY).cipher()
        async with unit_of_work(session_factory(engine)) as session:
            for role, region in ROLES.items():
                _, uri = await accounts.create_user(
                    session=session,
                    actor=SYSTEM,
                    cipher=cipher,
                    data=UserCreate(
                        username=f"fuzz_{role}",
                        display_name=f"fuzz_{role}",
                        role=role,
                        region_code=region,
                        password=PASSWORD,
                    ),
                )
                made[role] = (f"fuzz_{role}", pyotp.parse_uri(uri).secret if uri else None)
    finally:
        await engine.dispose()
    return made


@pytest.fixture(scope="module")
def fuzz_app(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> Iterator[tuple[object, dict[str, str]]]:
    root = tmp_path_factory.mktemp("fuzz")
    pg = _pg_url() if os.environ.get("LAOWU_FUZZ_POSTGRES") else None
    if pg is not None:
        # make fuzz with LAOWU_TEST_DATABASE_URL set: PostgreSQL refuses what SQLite
        # takes (\0 in text), so the API is fuzzed on both.
        template = request.getfixturevalue("pg_template")
        name = f"laowu_fuzz_{os.getpid()}"
        asyncio.run(_pg_admin(pg, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        url = _with_database(pg, name)
    else:
        path = root / "laowu.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite+aiosqlite:///{path}"
        drop = None
    saved = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    try:
        made = asyncio.run(_make_accounts(url))
        app = create_app(
            Settings(
                env="test",
                db=DatabaseSettings(url=url, pooled=False),
                security=SecuritySettings(
                    secret_key="test-secret-" + "x" * 32, data_key=TEST_DATA_KEY
                ),
                # Configured, so the Stripe routes answer for themselves rather than
                # "not configured" (503); the base goes nowhere.
                stripe=StripeSettings(
                    api_base="http://127.0.0.1:9",
                    api_key="sk_test_fuzz",
                    webhook_secret="whsec_fuzz",
                ),
                media_dir=root / "media",
                var_dir=root,
                outbox_in_process=False,
            )
        )
        tokens: dict[str, str] = {}
        with asgi.get_client(app) as client:
            for role, (username, secret) in made.items():
                body = {"username": username, "password": PASSWORD}
                if secret:
                    body["otp"] = pyotp.TOTP(secret).now()
                response = client.post("/api/v1/auth/login", json=body)
                assert response.status_code == 200, response.text
                tokens[role] = response.json()["access_token"]
        yield app, tokens
    finally:
        accounts._hasher = saved
        asgi.shutdown_lifespans()
        if pg is not None and drop is not None:
            asyncio.run(_pg_admin(pg, drop))


@pytest.fixture(scope="module")
def api_schema(fuzz_app: tuple[object, dict[str, str]]) -> object:
    app, _ = fuzz_app
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES,
        database="none",
        deterministic=True,
    )
    return schema


def _failure_summary(exc: BaseException) -> list[str]:
    failures = getattr(exc, "exceptions", None) or [exc]
    return sorted({f"{type(f).__name__}: {getattr(f, 'title', str(f)).strip()}" for f in failures})


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("role", sorted(ROLES))
def test_api(
    api_schema: object, fuzz_app: tuple[object, dict[str, str]], role: str, mode: GenerationMode
) -> None:
    """Every operation, as this role, with generated (valid or invalid) requests."""
    _, tokens = fuzz_app
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    found: dict[str, list[str]] = {}
    for result in api_schema.get_all_operations():  # type: ignore[attr-defined]
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
            phases=[Phase.generate],
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            # Negative mode on an operation with no input to get wrong (/healthz).
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as exc:
            found[operation.label] = _failure_summary(exc)
    assert not found, "\n".join(f"{op}: {msgs}" for op, msgs in sorted(found.items()))
