"""Tasks over HTTP on SQLite and PostgreSQL: publish, dispatch scope, claim and its
limit, evidence submission (retries and resumes never duplicate), the fraud check
across brokers, review with ``task.approved``, and the state machine end to end."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from marketplace.dispatcher import drain
from marketplace.events import OutboxEvent
from marketplace.notifications.models import Notification
from marketplace.tasks.models import EvidenceFile, PersonConflict, TaskSubmission
from tests.conftest import YUZHONG
from tests.tasks.support import (
    TOWNSHIP,
    VILLAGE,
    VILLAGE_2,
    WUXI_VILLAGE,
    add_workers,
    files,
    in_days,
    jpeg,
    pdf,
)


async def _scene(make_account: Any, login: Any) -> dict[str, Any]:
    admin = await make_account("district_admin", YUZHONG)
    broker = await make_account("broker", VILLAGE)
    other = await make_account("broker", VILLAGE_2)
    far = await make_account("broker", WUXI_VILLAGE)
    return {
        "admin": admin,
        "broker": broker,
        "other": other,
        "far": far,
        "h_admin": await login(admin),
        "h_broker": await login(broker),
        "h_other": await login(other),
        "h_far": await login(far),
    }


async def _publish(client: Any, headers: dict[str, str], **over: Any) -> dict[str, Any]:
    body = {
        "task_type": "policy_outreach",
        "region_code": TOWNSHIP,
        "quantity": 2,
        "deadline": in_days(10),
        "instructions": "在社区活动室宣讲就业政策",
        **over,
    }
    response = await client.post("/api/v1/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_claim_submit_review_and_the_approved_event(
    client: Any, make_account: Any, login: Any, sessions: Any
) -> None:
    s = await _scene(make_account, login)
    task = await _publish(client, s["h_admin"])
    assert task["status"] == "open"
    assert task["task_type_version"] == 1

    # Dispatch: open to brokers whose villages the township covers, not to 巫溪县's.
    near = await client.get("/api/v1/tasks", headers=s["h_broker"])
    assert [t["id"] for t in near.json()["items"]] == [task["id"]]
    far = await client.get("/api/v1/tasks", headers=s["h_far"])
    assert far.json()["total"] == 0
    refused = await client.post(f"/api/v1/tasks/{task['id']}/claim", headers=s["h_far"])
    assert refused.status_code == 404

    claimed = await client.post(f"/api/v1/tasks/{task['id']}/claim", headers=s["h_broker"])
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "claimed"
    again = await client.post(f"/api/v1/tasks/{task['id']}/claim", headers=s["h_other"])
    assert again.status_code == 409  # taken by someone else, said plainly

    # Over the quantity: refused, nothing stored.
    over = await client.post(
        f"/api/v1/tasks/{task['id']}/submissions",
        data={"quantity": "3", "note": "多报"},
        files=files(("a.jpg", jpeg(), "image/jpeg")),
        headers=s["h_broker"],
    )
    assert over.status_code == 422
    assert over.json()["field"] == "quantity"

    sent = await client.post(
        f"/api/v1/tasks/{task['id']}/submissions",
        data={"quantity": "2", "note": "两场宣讲"},
        files=files(("photo.jpg", jpeg(), "image/jpeg"), ("sheet.pdf", pdf(), "application/pdf")),
        headers={**s["h_broker"], "Idempotency-Key": "phone-upload-1"},
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert len(body["evidence"]) == 2
    assert body["evidence"][0]["gps_lat"] is None  # the broker's view carries no EXIF data

    # The officer sees location and time; the served copy carries no EXIF.
    subs = await client.get(f"/api/v1/tasks/{task['id']}/submissions", headers=s["h_admin"])
    photo = subs.json()[0]["evidence"][0]
    assert photo["gps_lat"] == 29.56
    assert photo["taken_at"].startswith("2026-11-20T02:30")
    image = await client.get(photo["url"], headers=s["h_admin"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert b"Exif" not in image.content[:200]
    assert (await client.get(photo["url"], headers=s["h_other"])).status_code == 404

    # Approved quantity above the submitted one: refused.
    too_many = await client.post(
        f"/api/v1/tasks/{task['id']}/review",
        json={"decision": "approve", "approved_quantity": 3},
        headers=s["h_admin"],
    )
    assert too_many.status_code == 422
    assert too_many.json()["field"] == "approved_quantity"
    queue = await client.get("/api/v1/review-queue", headers=s["h_admin"])
    assert [
        (i["task_id"], i["task_type_name"], i["evidence_count"], i["conflict_count"])
        for i in queue.json()["items"]
    ] == [(task["id"], "政策咨询与宣传", 2, 0)]

    partly = await client.post(
        f"/api/v1/tasks/{task['id']}/review",
        json={"decision": "approve", "approved_quantity": 1, "comment": "第二场签到表不全"},
        headers=s["h_admin"],
    )
    assert partly.status_code == 200, partly.text
    assert partly.json()["status"] == "partly_approved"
    assert partly.json()["amount_fen"] == 20000
    shown = await client.get(f"/api/v1/tasks/{task['id']}", headers=s["h_broker"])
    assert shown.json()["status"] == "partly_approved"
    # Reviewing again is out of turn.
    twice = await client.post(
        f"/api/v1/tasks/{task['id']}/review", json={"decision": "approve"}, headers=s["h_admin"]
    )
    assert twice.status_code == 409

    async with sessions() as session:
        event = (
            await session.execute(
                select(OutboxEvent).where(col(OutboxEvent.name) == "task.approved")
            )
        ).scalar_one()
    payload = dict(event.payload)
    approved_at = payload.pop("approved_at")
    assert approved_at
    assert payload == {
        "task_id": task["id"],
        "submission_id": body["id"],
        "broker_id": payload["broker_id"],
        "task_type_code": "policy_outreach",
        "task_type_version": 1,
        "district_code": YUZHONG,
        "funding_source": "employment_subsidy",
        "approved_quantity": 1,
        "rate_fen": 20000,
        "amount_fen": 20000,
    }
    async with sessions() as session:
        titles = (
            await session.execute(
                select(col(Notification.title)).where(col(Notification.user_id) == s["broker"].id)
            )
        ).scalars()
        assert "任务部分通过" in list(titles)


async def test_retried_and_resumed_uploads_never_duplicate(
    client: Any, make_account: Any, login: Any, sessions: Any
) -> None:
    s = await _scene(make_account, login)
    task = await _publish(client, s["h_admin"], region_code=VILLAGE, broker_id=None)
    await client.post(f"/api/v1/tasks/{task['id']}/claim", headers=s["h_broker"])
    url = f"/api/v1/tasks/{task['id']}/submissions"
    first_photo, second_photo = jpeg((10, 200, 10)), jpeg((10, 10, 200))
    headers = {**s["h_broker"], "Idempotency-Key": "upload-42"}
    # The connection dropped after the first photo: the phone resumes with both.
    one = await client.post(
        url,
        data={"quantity": "2"},
        files=files(("1.jpg", first_photo, "image/jpeg")),
        headers=headers,
    )
    assert one.status_code == 201
    both = await client.post(
        url,
        data={"quantity": "2"},
        files=files(("1.jpg", first_photo, "image/jpeg"), ("2.jpg", second_photo, "image/jpeg")),
        headers=headers,
    )
    assert both.status_code == 200
    assert both.json()["replayed"] is True
    assert both.json()["id"] == one.json()["id"]
    assert len(both.json()["evidence"]) == 2
    # A plain retry without a key finds the first submission by its content.
    plain = await client.post(
        url,
        data={"quantity": "2"},
        files=files(("x.jpg", first_photo, "image/jpeg")),
        headers=s["h_broker"],
    )
    assert plain.status_code in (200, 409)
    async with sessions() as session:
        subs = (
            await session.execute(select(func.count()).select_from(TaskSubmission))
        ).scalar_one()
        evidence = (
            await session.execute(select(func.count()).select_from(EvidenceFile))
        ).scalar_one()
    assert subs == 1
    assert evidence == 2
    # The same key with other numbers is a mistake, said plainly.
    changed = await client.post(
        url,
        data={"quantity": "1"},
        files=files(("1.jpg", first_photo, "image/jpeg")),
        headers=headers,
    )
    assert changed.status_code == 409
    assert changed.json()["field"] == "upload_id"


async def test_a_person_counts_once_per_type_and_period_across_brokers(
    client: Any, make_account: Any, login: Any, sessions: Any, cipher: Any
) -> None:
    s = await _scene(make_account, login)
    # The other broker also serves 华一坡社区 (an assigned village).
    from marketplace.brokers.models import Broker, BrokerVillage
    from marketplace.db import unit_of_work

    async with unit_of_work(sessions) as session:
        other = (
            await session.execute(select(Broker).where(col(Broker.user_id) == s["other"].id))
        ).scalar_one()
        session.add(BrokerVillage(broker_id=other.id or 0, village_code=VILLAGE))
    people = await add_workers(sessions, cipher, s["broker"], VILLAGE, 3)
    mine = await _publish(client, s["h_admin"], task_type="job_referral", region_code=VILLAGE)
    theirs = await _publish(client, s["h_admin"], task_type="job_referral", region_code=VILLAGE)
    await client.post(f"/api/v1/tasks/{mine['id']}/claim", headers=s["h_broker"])
    await client.post(f"/api/v1/tasks/{theirs['id']}/claim", headers=s["h_other"])

    wrong_count = await client.post(
        f"/api/v1/tasks/{mine['id']}/submissions",
        data={"quantity": "2", "worker_ids": str(people[0])},
        files=files(("a.jpg", jpeg(), "image/jpeg")),
        headers=s["h_broker"],
    )
    assert wrong_count.status_code == 422
    assert wrong_count.json()["field"] == "worker_ids"
    ok = await client.post(
        f"/api/v1/tasks/{mine['id']}/submissions",
        data={"quantity": "2", "worker_ids": f"{people[0]},{people[1]}"},
        files=files(("a.jpg", jpeg(), "image/jpeg")),
        headers=s["h_broker"],
    )
    assert ok.status_code == 201, ok.text
    double = await client.post(
        f"/api/v1/tasks/{theirs['id']}/submissions",
        data={"quantity": "2", "worker_ids": [str(people[1]), str(people[2])]},
        files=files(("b.jpg", jpeg((1, 2, 3)), "image/jpeg")),
        headers=s["h_other"],
    )
    assert double.status_code == 409
    assert double.json()["field"] == "worker_ids"
    assert str(people[1]) in double.json()["detail"]
    # Nothing of the refused submission is stored, but the attempt is, for the reviewer.
    async with sessions() as session:
        count = (
            await session.execute(
                select(func.count())
                .select_from(TaskSubmission)
                .where(col(TaskSubmission.task_id) == theirs["id"])
            )
        ).scalar_one()
        conflicts = (
            await session.execute(select(func.count()).select_from(PersonConflict))
        ).scalar_one()
    assert count == 0
    assert conflicts == 1
    review = await client.get(f"/api/v1/tasks/{mine['id']}/submissions", headers=s["h_admin"])
    assert review.json()[0]["conflicts"][0]["worker_id"] == people[1]
    # The review queue counts the submission's photo and the refused attempt.
    queue = await client.get("/api/v1/review-queue", headers=s["h_admin"])
    assert [
        (i["task_id"], i["evidence_count"], i["conflict_count"]) for i in queue.json()["items"]
    ] == [(mine["id"], 1, 1)]
    # A conflicted submission is not "clean": bulk approval leaves it for a person.
    bulk = await client.post(
        "/api/v1/tasks/review-bulk", json={"task_ids": [mine["id"]]}, headers=s["h_admin"]
    )
    assert bulk.json()["approved"] == []
    assert str(mine["id"]) in bulk.json()["skipped"]
    # Rejected: the persons are free again for an honest resubmission by anyone.
    await client.post(
        f"/api/v1/tasks/{mine['id']}/review",
        json={"decision": "reject", "comment": "名单与现场照片不符"},
        headers=s["h_admin"],
    )
    retry = await client.post(
        f"/api/v1/tasks/{theirs['id']}/submissions",
        data={"quantity": "2", "worker_ids": f"{people[1]},{people[2]}"},
        files=files(("b.jpg", jpeg((1, 2, 3)), "image/jpeg")),
        headers=s["h_other"],
    )
    assert retry.status_code == 201, retry.text


async def test_claim_limit_and_bulk_publish(client: Any, make_account: Any, login: Any) -> None:
    s = await _scene(make_account, login)
    limit = await client.put(
        f"/api/v1/task-settings/{YUZHONG}",
        json={"township_check": False, "claim_limit": 2},
        headers=s["h_admin"],
    )
    assert limit.status_code == 200, limit.text
    bulk = await client.post(
        "/api/v1/tasks/bulk",
        json={
            "task_type": "hr_database_update",
            "region_code": TOWNSHIP,
            "quantity": 5,
            "deadline": in_days(20),
        },
        headers=s["h_admin"],
    )
    assert bulk.status_code == 201, bulk.text
    created = bulk.json()["created"]
    assert created > 5
    listed = await client.get(
        "/api/v1/tasks", params={"region_code": TOWNSHIP, "limit": 500}, headers=s["h_admin"]
    )
    assert listed.json()["total"] == created
    assert {t["region_code"][:9] for t in listed.json()["items"]} == {TOWNSHIP}
    near = (await client.get("/api/v1/tasks", headers=s["h_broker"])).json()["items"]
    assert [t["region_code"] for t in near] == [VILLAGE]  # one per village: only its own
    # Claim limit: two open claims, the third is refused.
    for _ in range(2):
        task = await _publish(client, s["h_admin"], region_code=VILLAGE)
        ok = await client.post(f"/api/v1/tasks/{task['id']}/claim", headers=s["h_broker"])
        assert ok.status_code == 200
    third = await client.post(f"/api/v1/tasks/{near[0]['id']}/claim", headers=s["h_broker"])
    assert third.status_code == 409
    assert third.json()["field"] == "claim_limit"
    # Out of region: 渝中区 cannot publish in 巫溪县.
    outside = await client.post(
        "/api/v1/tasks",
        json={
            "task_type": "policy_outreach",
            "region_code": WUXI_VILLAGE,
            "quantity": 1,
            "deadline": in_days(3),
        },
        headers=s["h_admin"],
    )
    assert outside.status_code == 403


async def test_township_check_comes_first_where_the_district_asks(
    client: Any, make_account: Any, login: Any, app: Any
) -> None:
    s = await _scene(make_account, login)
    township = await make_account("township_officer", TOWNSHIP)
    h_town = await login(township)
    await client.put(
        f"/api/v1/task-settings/{YUZHONG}", json={"township_check": True}, headers=s["h_admin"]
    )
    task = await _publish(client, s["h_admin"], region_code=VILLAGE)
    await client.post(f"/api/v1/tasks/{task['id']}/claim", headers=s["h_broker"])
    await client.post(
        f"/api/v1/tasks/{task['id']}/submissions",
        data={"quantity": "2"},
        files=files(("a.jpg", jpeg(), "image/jpeg")),
        headers=s["h_broker"],
    )
    early = await client.post(
        f"/api/v1/tasks/{task['id']}/review", json={"decision": "approve"}, headers=s["h_admin"]
    )
    assert early.status_code == 409  # out of turn
    assert (await client.get("/api/v1/review-queue", headers=s["h_admin"])).json()["total"] == 0
    assert (await client.get("/api/v1/review-queue", headers=h_town)).json()["total"] == 1
    town_approve = await client.post(
        f"/api/v1/tasks/{task['id']}/review", json={"decision": "approve"}, headers=h_town
    )
    assert town_approve.status_code == 422
    passed = await client.post(
        f"/api/v1/tasks/{task['id']}/review", json={"decision": "township_pass"}, headers=h_town
    )
    assert passed.status_code == 200, passed.text
    shown = await client.get(f"/api/v1/tasks/{task['id']}", headers=s["h_admin"])
    assert shown.json()["status"] == "township_checked"
    done = await client.post(
        f"/api/v1/tasks/{task['id']}/review", json={"decision": "approve"}, headers=s["h_admin"]
    )
    assert done.json()["status"] == "approved"
    await drain(app.state.sessions, app.state.registry)


async def test_two_brokers_claiming_at_once_one_wins(
    client: Any, make_account: Any, login: Any
) -> None:
    import asyncio

    s = await _scene(make_account, login)
    task = await _publish(client, s["h_admin"])
    results = await asyncio.gather(
        client.post(f"/api/v1/tasks/{task['id']}/claim", headers=s["h_broker"]),
        client.post(f"/api/v1/tasks/{task['id']}/claim", headers=s["h_other"]),
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    shown = await client.get(f"/api/v1/tasks/{task['id']}", headers=s["h_admin"])
    winner = next(r for r in results if r.status_code == 200)
    assert shown.json()["broker_id"] == winner.json()["broker_id"]
