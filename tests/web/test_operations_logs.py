"""Request ids and structured logs (docs/operations.md)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from web.ops.metrics import Registry
from web.ops.observability import configure_logging, observe

log = logging.getLogger("laowu.test.handler")


@get("/work", sync_to_thread=False)
def work() -> dict[str, str]:
    log.info("doing the work", extra={"worker_id": 7})
    return {"ok": "yes"}


@pytest.fixture
def tiny_app() -> Litestar:
    app = Litestar(route_handlers=[work], logging_config=None)
    app.asgi_handler = observe(app.asgi_handler, Registry())
    return app


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    root = logging.getLogger()
    level = root.level
    configure_logging("json")
    yield capsys
    for handler in [h for h in root.handlers if h.get_name() == "laowu"]:
        root.removeHandler(handler)
    root.setLevel(level)


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    # pytest's own log handler writes plain lines beside ours.
    err = capsys.readouterr().err.splitlines()
    return [json.loads(line) for line in err if line.startswith("{")]


async def test_every_line_of_a_request_carries_its_id(
    tiny_app: Litestar, json_logs: pytest.CaptureFixture[str]
) -> None:
    async with AsyncTestClient(app=tiny_app) as client:
        first = await client.get("/work")
        second = await client.get("/work", headers={"X-Request-ID": "nginx-4f2a.9"})
    own = first.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", own)
    assert second.headers["X-Request-ID"] == "nginx-4f2a.9"  # a proxy's id is kept
    records = lines(json_logs)
    handler_lines = [r for r in records if r["logger"] == "laowu.test.handler"]
    access_lines = [r for r in records if r["logger"] == "laowu.access"]
    assert [r["request_id"] for r in handler_lines] == [own, "nginx-4f2a.9"]
    assert [r["request_id"] for r in access_lines] == [own, "nginx-4f2a.9"]
    assert handler_lines[0]["message"] == "doing the work"
    assert handler_lines[0]["worker_id"] == 7
    assert access_lines[0]["status"] == 200
    assert access_lines[0]["route"] == "/work"
    assert access_lines[0]["level"] == "INFO"


@pytest.mark.parametrize("bad", ["has space", "x" * 65, 'quote"d', "path/like", "semi;colon"])
async def test_an_insane_incoming_id_is_replaced(tiny_app: Litestar, bad: str) -> None:
    async with AsyncTestClient(app=tiny_app) as client:
        response = await client.get("/work", headers={"X-Request-ID": bad})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


async def test_text_logs_name_the_request(
    tiny_app: Litestar, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    level = root.level
    configure_logging("text")
    try:
        async with AsyncTestClient(app=tiny_app) as client:
            response = await client.get("/work", headers={"X-Request-ID": "abc-123"})
    finally:
        for handler in [h for h in root.handlers if h.get_name() == "laowu"]:
            root.removeHandler(handler)
        root.setLevel(level)
    assert response.status_code == 200
    err = capsys.readouterr().err
    assert re.search(r"INFO laowu\.test\.handler \[abc-123\] doing the work", err)
    assert re.search(r"INFO laowu\.access \[abc-123\] GET /work 200 ", err)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_app_answers_every_request_with_an_id(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/healthz", "/login", "/no/such/page", "/api/v1/me"):
        response = await client.get(path)
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), path
