"""Rate versioning, upload validation, generated and event-made tasks, spot checks with
``task.reversed``, and the completion rate over real rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, insert, literal, select, true, update
from sqlmodel import col

from marketplace.access import SYSTEM
from marketplace.brokers.models import Broker
from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.events import OutboxEvent, emit
from marketplace.regions.models import Region
from marketplace.tasks import review, spotchecks
from marketplace.tasks import service as tasks
from marketplace.tasks.models import ServiceTask, TaskSubmission
from marketplace.workers.models import Worker
from tests.conftest import YUZHONG
from tests.tasks.support import (
    VILLAGE,
    VILLAGE_2,
    WUXI_VILLAGE,
    add_workers,
    files,
    in_days,
    jpeg,
    pdf,
)

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def _people(make_account: Any, login: Any) -> dict[str, Any]:
    city = await make_account("city_admin", "50")
    admin = await make_account("district_admin", YUZHONG)
    broker = await make_account("broker", VILLAGE)
    return {
        "city": city,
        "broker": broker,
        "h_city": await login(city),
        "h_admin": await login(admin),
        "h_broker": await login(broker),
    }


async def _claimed(client: Any, p: dict[str, Any], **over: Any) -> int:
    body = {
        "task_type": "policy_outreach",
        "region_code": VILLAGE,
        "quantity": 3,
        "deadline": in_days(9),
        **over,
    }
    made = await client.post("/api/v1/tasks", json=body, headers=p["h_admin"])
    assert made.status_code == 201, made.text
    task_id = int(made.json()["id"])
    claimed = await client.post(f"/api/v1/tasks/{task_id}/claim", headers=p["h_broker"])
    assert claimed.status_code == 200, claimed.text
    return task_id


@sqlite_only
async def test_a_rate_change_applies_to_tasks_published_after_it(
    client: Any, make_account: Any, login: Any
) -> None:
    p = await _people(make_account, login)
    before = await _claimed(client, p)
    changed = await client.patch(
        "/api/v1/task-types/policy_outreach", json={"rate_fen": 25000}, headers=p["h_city"]
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    refused = await client.patch(
        "/api/v1/task-types/policy_outreach", json={"rate_fen": 1}, headers=p["h_admin"]
    )
    assert refused.status_code == 403
    after = await _claimed(client, p)
    for task_id, rate in ((before, 20000), (after, 25000)):
        sent = await client.post(
            f"/api/v1/tasks/{task_id}/submissions",
            data={"quantity": "2"},
            files=files(("a.jpg", jpeg(), "image/jpeg")),
            headers=p["h_broker"],
        )
        assert sent.status_code == 201, sent.text
        done = await client.post(
            f"/api/v1/tasks/{task_id}/review", json={"decision": "approve"}, headers=p["h_admin"]
        )
        assert done.json()["amount_fen"] == 2 * rate
    versions = await client.get(
        "/api/v1/task-types", params={"all_versions": "true"}, headers=p["h_broker"]
    )
    outreach = [t for t in versions.json() if t["code"] == "policy_outreach"]
    assert [(t["version"], t["rate_fen"], t["current"]) for t in outreach] == [
        (1, 20000, False),
        (2, 25000, True),
    ]
    names = {t["name"] for t in versions.json()}
    assert {"人力资源数据库更新", "社保资格认证", "政策咨询与宣传", "培训组织"} <= names


@sqlite_only
async def test_uploads_are_checked_by_content_not_by_name(
    client: Any, make_account: Any, login: Any, sessions: Any
) -> None:
    p = await _people(make_account, login)
    task_id = await _claimed(client, p)
    url = f"/api/v1/tasks/{task_id}/submissions"
    exe = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200 + b"This program cannot be run in DOS mode"
    photo = jpeg()
    cases = [
        ("renamed executable", ("现场照片.jpg", exe, "image/jpeg"), "不是图片"),
        ("truncated image", ("半张.jpg", photo[: len(photo) // 2], "image/jpeg"), "不完整"),
        ("PDF without its end", ("表.pdf", pdf()[:40], "application/pdf"), "不是完整的 PDF"),
        (
            "over 10 MB",
            ("大.pdf", b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024) + b"%%EOF", "application/pdf"),
            "10 MB",
        ),
    ]
    for label, item, words in cases:
        response = await client.post(
            url, data={"quantity": "1"}, files=files(item), headers=p["h_broker"]
        )
        assert response.status_code == 422, label
        assert response.json()["field"] == "files", label
        assert words in response.json()["detail"], label
    none = await client.post(url, data={"quantity": "1"}, headers=p["h_broker"])
    assert none.status_code == 422
    # A good file beside a bad one: the whole submission is refused, nothing kept.
    mixed = await client.post(
        url,
        data={"quantity": "1"},
        files=files(("ok.jpg", photo, "image/jpeg"), ("bad.png", exe, "image/png")),
        headers=p["h_broker"],
    )
    assert mixed.status_code == 422
    async with sessions() as session:
        assert (
            await session.execute(select(func.count()).select_from(TaskSubmission))
        ).scalar_one() == 0
    # A real PNG named .txt is accepted: the content decides.
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (20, 20), (0, 90, 0)).save(out, "PNG")
    ok = await client.post(
        url,
        data={"quantity": "1"},
        files=files(("scan.txt", out.getvalue(), "text/plain")),
        headers=p["h_broker"],
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["evidence"][0]["media_type"] == "image/png"


@sqlite_only
async def test_submissions_after_the_deadline_are_refused(
    client: Any, make_account: Any, login: Any, sessions: Any
) -> None:
    p = await _people(make_account, login)
    task_id = await _claimed(client, p)
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(ServiceTask)
            .where(col(ServiceTask.id) == task_id)
            .values(deadline=datetime.now(UTC) - timedelta(minutes=1))
        )
    late = await client.post(
        f"/api/v1/tasks/{task_id}/submissions",
        data={"quantity": "1"},
        files=files(("a.jpg", jpeg(), "image/jpeg")),
        headers=p["h_broker"],
    )
    assert late.status_code == 409
    assert late.json()["field"] == "deadline"
    async with unit_of_work(sessions) as session:
        moved = await tasks.sweep(session=session)
    assert moved["closed"] == 1


async def test_a_backlog_of_due_tasks_is_swept_in_short_transactions(
    client: Any, make_account: Any, login: Any, sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five tasks past their deadline (three claimed, two never claimed), swept two
    at a time: every one moves, each transaction moves at most two a move, and a
    task still inside its deadline stays."""
    p = await _people(make_account, login)
    claimed = [await _claimed(client, p) for _ in range(3)]
    unclaimed = []
    for _ in range(3):
        body = {"task_type": "policy_outreach", "region_code": VILLAGE, "quantity": 1}
        made = await client.post(
            "/api/v1/tasks", json={**body, "deadline": in_days(9)}, headers=p["h_admin"]
        )
        assert made.status_code == 201, made.text
        unclaimed.append(int(made.json()["id"]))
    past = datetime.now(UTC) - timedelta(minutes=1)
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(ServiceTask)
            .where(col(ServiceTask.id).in_(claimed + unclaimed[:2]))
            .values(deadline=past)
        )
    rounds: list[dict[str, int]] = []
    real_sweep = tasks.sweep

    async def counted(**kwargs: Any) -> dict[str, int]:
        moved = await real_sweep(**kwargs)
        rounds.append(moved)
        return moved

    monkeypatch.setattr(tasks, "sweep", counted)
    total = await tasks.sweep_all(sessions, batch=2)
    assert total == {"expired": 2, "closed": 3}
    assert rounds == [
        {"expired": 2, "closed": 2},
        {"expired": 0, "closed": 1},
    ]
    async with sessions() as session:
        statuses = dict(
            (await session.execute(select(col(ServiceTask.id), col(ServiceTask.status)))).all()
        )
    assert [statuses[i] for i in claimed] == ["closed"] * 3
    assert [statuses[i] for i in unclaimed] == ["expired", "expired", "open"]


async def test_generated_tasks_are_made_once_per_village_and_period(
    sessions: Any, make_account: Any, cipher: Any
) -> None:
    broker = await make_account("broker", VILLAGE)
    ids = await add_workers(sessions, cipher, broker, VILLAGE, 3)
    async with unit_of_work(sessions) as session:
        # One record was verified last month: not stale.
        await session.execute(
            update(Worker)
            .where(col(Worker.id) == ids[0])
            .values(last_verified_at=datetime(2026, 11, 1, tzinfo=UTC))
        )
    async with unit_of_work(sessions) as session:
        first = await tasks.generate_hr_tasks(session=session, period="2026-12")
    async with unit_of_work(sessions) as session:
        second = await tasks.generate_hr_tasks(session=session, period="2026-12")
    assert first["created"] == 1
    assert second["created"] == 0
    async with sessions() as session:
        task = (await session.execute(select(ServiceTask))).scalar_one()
        mine = (
            await session.execute(select(Broker).where(col(Broker.user_id) == broker.id))
        ).scalar_one()
    assert task.quantity == 2
    assert task.status == "claimed"
    assert task.broker_id == mine.id
    assert task.task_type_code == "hr_database_update"
    assert task.period == "2026-12"


async def test_the_stale_look_up_reads_only_villages_still_without_the_months_task(
    sessions: Any, make_account: Any, cipher: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a village has the month's task, the hourly look-up no longer reads its
    register; a village that becomes stale later in the month still gets its task."""
    period = "2026-12"
    for village in (VILLAGE, VILLAGE_2):
        keeper = await make_account("broker", village)
        await add_workers(sessions, cipher, keeper, village, 2)
    async with unit_of_work(sessions) as session:
        first = await tasks.generate_hr_tasks(session=session, period=period)
    assert first["created"] == 2  # one pass over the whole register: most villages lack one

    # Later that month a record is registered in 巫溪县, never verified.
    wuxi = await make_account("broker", WUXI_VILLAGE)
    await add_workers(sessions, cipher, wuxi, WUXI_VILLAGE, 1)
    # Few enough villages lacking the task to read them one by one through the index.
    monkeypatch.setattr(tasks, "STALE_LOOKUP_VILLAGES", 100_000)
    async with sessions() as session:
        stale = await tasks.stale_villages(session=session, period=period)
    assert list(stale) == [WUXI_VILLAGE]  # 渝中区's two still have stale records
    assert sum(stale[WUXI_VILLAGE].values()) == 1
    async with unit_of_work(sessions) as session:
        second = await tasks.generate_hr_tasks(session=session, period=period, stale=stale)
    assert second == {"created": 1, "existing": 2, "no_broker": 0}


async def test_the_stale_look_up_reads_no_register_once_every_village_has_its_task(
    sessions: Any, make_account: Any, cipher: Any
) -> None:
    period = "2026-12"
    keeper = await make_account("broker", VILLAGE)
    await add_workers(sessions, cipher, keeper, VILLAGE, 2)
    async with unit_of_work(sessions) as session:
        assert (await tasks.generate_hr_tasks(session=session, period=period))["created"] == 1
        # Every other village of the city gets the month's task too (copied from it).
        table = ServiceTask.__table__  # type: ignore[attr-defined]
        copied = [
            c for c in table.c if c.key not in ("id", "region_code", "district_code", "source_key")
        ]
        code = col(Region.code)
        await session.execute(
            insert(ServiceTask).from_select(
                [*(c.key for c in copied), "region_code", "district_code", "source_key"],
                select(
                    *copied,
                    code,
                    func.substr(code, 1, 6),
                    literal(f"hr:{period}:") + code,
                )
                # Each village with the one task: a cross join, on purpose.
                .select_from(table.join(Region.__table__, true()))  # type: ignore[attr-defined]
                .where(
                    col(Region.level) == "village",
                    code != VILLAGE,
                    table.c.source_key == f"hr:{period}:{VILLAGE}",
                ),
            )
        )
    statements: list[str] = []
    engine = sessions.kw["bind"].sync_engine

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        async with sessions() as session:
            assert await tasks.stale_villages(session=session, period=period) == {}
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert statements, "the look-up ran no statement at all"
    assert not [s for s in statements if "FROM worker" in s]


async def test_an_arrears_case_becomes_a_rights_protection_task(
    sessions: Any, make_account: Any, app: Any
) -> None:
    broker = await make_account("broker", VILLAGE)
    async with sessions() as session:
        mine = (
            await session.execute(select(Broker).where(col(Broker.user_id) == broker.id))
        ).scalar_one()
    payload = {
        "case_id": 77,
        "placement_id": 5,
        "organization_id": 3,
        "broker_id": mine.id,
        "region_code": VILLAGE,
    }
    for _ in range(2):  # delivered twice, made once
        async with unit_of_work(sessions) as session:
            await emit(session, "arrears.opened", payload)
        await drain(app.state.sessions, app.state.registry)
    async with sessions() as session:
        rows = list((await session.execute(select(ServiceTask))).scalars())
    assert len(rows) == 1
    assert rows[0].task_type_code == "rights_protection"
    assert rows[0].broker_id == mine.id
    assert rows[0].source == "arrears"


async def test_a_failed_spot_check_reverses_the_subsidy(
    client: Any, make_account: Any, login: Any, sessions: Any
) -> None:
    p = await _people(make_account, login)
    ids = []
    for _ in range(3):
        task_id = await _claimed(client, p)
        await client.post(
            f"/api/v1/tasks/{task_id}/submissions",
            data={"quantity": "3"},
            files=files(("a.jpg", jpeg((task_id, 9, 9)), "image/jpeg")),
            headers=p["h_broker"],
        )
        await client.post(
            f"/api/v1/tasks/{task_id}/review", json={"decision": "approve"}, headers=p["h_admin"]
        )
        ids.append(task_id)
    async with sessions() as session:
        period = (await session.get(ServiceTask, ids[0])).period  # type: ignore[union-attr]
    drawn = await client.post(
        "/api/v1/spot-checks",
        json={"region_code": YUZHONG, "period": period, "sample_size": 2, "seed": 99},
        headers=p["h_admin"],
    )
    assert drawn.status_code == 201, drawn.text
    check = drawn.json()
    assert check["seed"] == 99
    assert check["population"] == 3
    sampled = [i["task_id"] for i in check["items"]]
    assert len(sampled) == 2
    assert all("new_broker" in i["reasons"] for i in check["items"])
    no_notes = await client.post(
        f"/api/v1/spot-checks/{check['id']}/results",
        json={"task_id": sampled[0], "result": "fail"},
        headers=p["h_admin"],
    )
    assert no_notes.status_code == 422
    failed = await client.post(
        f"/api/v1/spot-checks/{check['id']}/results",
        json={"task_id": sampled[0], "result": "fail", "notes": "入户核实：宣讲未举办"},
        headers=p["h_admin"],
    )
    assert failed.status_code == 200, failed.text
    passed = await client.post(
        f"/api/v1/spot-checks/{check['id']}/results",
        json={"task_id": sampled[1], "result": "pass"},
        headers=p["h_admin"],
    )
    assert passed.json()["result"] == "pass"
    again = await client.post(
        f"/api/v1/spot-checks/{check['id']}/results",
        json={"task_id": sampled[1], "result": "fail", "notes": "改"},
        headers=p["h_admin"],
    )
    assert again.status_code == 409
    async with sessions() as session:
        event = (
            await session.execute(
                select(OutboxEvent).where(col(OutboxEvent.name) == "task.reversed")
            )
        ).scalar_one()
        sub = (
            await session.execute(
                select(TaskSubmission).where(col(TaskSubmission.task_id) == sampled[0])
            )
        ).scalar_one()
        mine = (
            await session.execute(select(Broker).where(col(Broker.user_id) == p["broker"].id))
        ).scalar_one()
        assert await spotchecks.failures(session=session, broker_id=mine.id or 0) == 1
        rate = await review.completion_rate(
            session=session,
            broker_id=mine.id or 0,
            period=period,
            as_of=datetime.now(UTC) + timedelta(days=30),
        )
    assert event.payload == {
        "task_id": sampled[0],
        "submission_id": sub.id,
        "broker_id": mine.id,
        "district_code": YUZHONG,
        "funding_source": "employment_subsidy",
        "amount_fen": 60000,
        "reason": "入户核实：宣讲未举办",
        "spot_check_id": check["id"],
    }
    assert sub.status == "reversed"
    assert (rate.completed, rate.counted) == (2, 3)  # the reversed one is not completed
    # The same seed over the same pool draws the same sample (recorded for re-checks).
    async with unit_of_work(sessions) as session:
        pool, _ = await spotchecks.candidates(session, YUZHONG, "1999-01")
    assert pool == []
    assert SYSTEM.is_system
