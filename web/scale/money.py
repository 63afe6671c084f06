"""A year of public-service tasks and the money they moved, for ``web.scale``.

Twelve months, December 2025 to November 2026 (Asia/Shanghai), one transaction per
month. What happens to a task is drawn the way it goes in real life: in a finished
month about nine in ten are approved (some partly), a few are rejected back to the
broker, expire unclaimed or are closed; in the last month many are still open,
claimed or waiting for review. Each approved task has its submission and a subsidy,
and the subsidy's money moves through the same ledger entries billing writes
(``billing/subsidies.py``, ``billing/payouts.py``, ``billing/pools.py``):

- a fund pool per district and funding source with its five accounts; appropriations
  (拨款) arrive in tranches at the start of a month whenever the pool would not cover
  the month's reservations, so no pool ever goes below zero;
- approval reserves the amount (Dr reserved / Cr available);
- a monthly payout batch per district, executed on the 10th of the next month, pays
  every payable subsidy of the month: one entry per broker and source
  (Dr paid / Cr reserved), netting what the broker owes (Dr available / Cr receivable);
- about 0.3 % fail a spot check before payment (voided: the reserve entry is
  reversed), about 0.2 % after payment (a receivable the broker's next payout nets);
- November's subsidies are still reserved, waiting for their batch.

The rows are written directly (the ledger's guard triggers, ``billing/ledger/ddl.py``,
are dropped inside each month's transaction and recreated before it commits, so a
crash leaves them in place); entries are written already posted and the accounts'
balances are set to the sum of their postings. ``web.scale.check`` verifies the
ledger's invariants afterwards.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from billing.ledger import ddl
from billing.ledger.models import LedgerAccount, LedgerEntry, LedgerPosting
from billing.ledger.service import Line, content_hash
from billing.models import Appropriation, FundPool, PayoutBatch, PayoutLine, Subsidy
from marketplace.accounts.models import User
from marketplace.clock import SHANGHAI
from marketplace.funding import FUNDING_SOURCES, funding_label
from marketplace.tasks.catalogue import HR_UPDATE, RIGHTS_PROTECTION
from marketplace.tasks.models import ServiceTask, TaskSubmission, TaskType
from web.scale.generate import World
from web.scale.plan import Scale
from web.scale.sink import Buffer, Sink, begin, fix_sequences, max_id

MONTHS = 12
FIRST_MONTH = (2025, 12)
TRANCHE_FEN = 20_000_000  # ¥200,000 per appropriation
VOID_SHARE = 0.003
RECOVER_SHARE = 0.002
POOL_PARTS = (
    ("available", "可用", "debit", True),
    ("reserved", "已预留", "debit", True),
    ("appropriated", "拨入", "credit", False),
    ("paid", "已支付", "debit", False),
    ("reversed", "追回", "credit", False),
)
TABLES = [
    LedgerAccount.__table__,  # type: ignore[attr-defined]
    FundPool.__table__,  # type: ignore[attr-defined]
    LedgerEntry.__table__,  # type: ignore[attr-defined]
    LedgerPosting.__table__,  # type: ignore[attr-defined]
    Appropriation.__table__,  # type: ignore[attr-defined]
    ServiceTask.__table__,  # type: ignore[attr-defined]
    TaskSubmission.__table__,  # type: ignore[attr-defined]
    PayoutBatch.__table__,  # type: ignore[attr-defined]
    PayoutLine.__table__,  # type: ignore[attr-defined]
    Subsidy.__table__,  # type: ignore[attr-defined]
]


def month_start(m: int) -> datetime:
    """Midnight (Shanghai) starting month ``m`` (0 = December 2025), in UTC."""
    year, month = FIRST_MONTH
    month += m
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=SHANGHAI).astimezone(UTC)


def period_of(value: datetime) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m")


@dataclass
class Pool:
    id: int
    district: str
    source: str
    accounts: dict[str, int]  # part -> account id


class Ids:
    """Explicit ids per table, from the table's current maximum."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    async def load(self, conn: AsyncConnection) -> None:
        for table in TABLES:
            self._next[table.name] = await max_id(conn, table) + 1

    def take(self, table: Any) -> int:
        name = table.name
        value = self._next[name]
        self._next[name] = value + 1
        return value


class Books:
    """The ledger being written: entries, postings and every account's balance."""

    def __init__(self, buffer: Buffer, ids: Ids) -> None:
        self.buffer = buffer
        self.ids = ids
        self.normal: dict[int, str] = {}
        self.no_overdraft: set[int] = set()
        self.balance: dict[int, int] = {}
        self.touched: set[int] = set()
        self.entries = 0
        self.postings = 0

    async def account(self, **values: Any) -> int:
        account_id = self.ids.take(LedgerAccount.__table__)  # type: ignore[attr-defined]
        await self.buffer.add(
            LedgerAccount.__table__,  # type: ignore[attr-defined]
            {
                "id": account_id,
                "ledger": "subsidy",
                "currency": "cny",
                "balance_fen": 0,
                "broker_id": None,
                **values,
            },
        )
        self.normal[account_id] = values["normal_side"]
        if values["no_overdraft"]:
            self.no_overdraft.add(account_id)
        self.balance[account_id] = 0
        return account_id

    async def post(
        self,
        *,
        key: str,
        kind: str,
        lines: list[Line],
        memo: str,
        at: datetime,
        reversal_of: int | None = None,
        by: int | None = None,
    ) -> int:
        entry_id = self.ids.take(LedgerEntry.__table__)  # type: ignore[attr-defined]
        await self.buffer.add(
            LedgerEntry.__table__,  # type: ignore[attr-defined]
            {
                "id": entry_id,
                "idempotency_key": key,
                "content_hash": content_hash("subsidy", kind, lines, reversal_of),
                "ledger": "subsidy",
                "kind": kind,
                "memo": memo[:500],
                "reversal_of_id": reversal_of,
                "status": "posted",
                "effective_at": at,
                "created_at": at,
                "created_by": by,
            },
        )
        for line in lines:
            side = str(line.side)
            await self.buffer.add(
                LedgerPosting.__table__,  # type: ignore[attr-defined]
                {
                    "id": self.ids.take(LedgerPosting.__table__),  # type: ignore[attr-defined]
                    "entry_id": entry_id,
                    "account_id": line.account_id,
                    "side": side,
                    "amount_fen": line.amount_fen,
                    "effective_at": at,
                },
            )
            delta = line.amount_fen if side == self.normal[line.account_id] else -line.amount_fen
            self.balance[line.account_id] += delta
            self.touched.add(line.account_id)
            if line.account_id in self.no_overdraft and self.balance[line.account_id] < 0:
                raise AssertionError(f"account {line.account_id} would go below zero ({key})")
            self.postings += 1
        self.entries += 1
        return entry_id

    async def write_balances(self, conn: AsyncConnection) -> None:
        if self.touched:
            await conn.execute(
                text("UPDATE ledger_account SET balance_fen = :b WHERE id = :i"),
                [{"b": self.balance[i], "i": i} for i in sorted(self.touched)],
            )
        self.touched.clear()


@dataclass
class TaskKind:
    id: int
    code: str
    rate_fen: int
    source: str
    per_person: bool


class Year:
    def __init__(
        self, conn: AsyncConnection, scale: Scale, world: World, ids: Ids, users: dict[str, int]
    ) -> None:
        self.conn = conn
        self.scale = scale
        self.world = world
        self.ids = ids
        self.sink = Sink(conn)
        self.buffer = Buffer(self.sink, TABLES)
        self.books = Books(self.buffer, ids)
        self.pools: dict[tuple[str, str], Pool] = {}
        self.receivable: dict[tuple[int, str, str], int] = {}  # (broker, district, source)
        self.owed: dict[tuple[int, str, str], int] = defaultdict(int)
        self.users = users
        self.appropriations = 0
        self.tasks = 0
        self.subsidies = 0
        # subsidies reversed after payment, booked when their month's batch is paid
        self.to_recover: list[dict[str, Any]] = []

    @property
    def finance(self) -> int | None:
        return self.users.get("city_finance")

    async def make_pools(self, districts: list[str]) -> None:
        for district in districts:
            for source in FUNDING_SOURCES:
                label = f"{district}·{funding_label(source)}"
                accounts: dict[str, int] = {}
                for part, name, side, no_overdraft in POOL_PARTS:
                    accounts[part] = await self.books.account(
                        code=f"pool:{district}:{source}:{part}",
                        kind=f"pool_{part}",
                        name=f"{label}·{name}",
                        normal_side=side,
                        no_overdraft=no_overdraft,
                        district_code=district,
                        source=source,
                        created_at=month_start(0),
                    )
                pool_id = self.ids.take(FundPool.__table__)  # type: ignore[attr-defined]
                await self.buffer.add(
                    FundPool.__table__,  # type: ignore[attr-defined]
                    {
                        "id": pool_id,
                        "district_code": district,
                        "source": source,
                        **{f"{part}_account_id": acc for part, acc in accounts.items()},
                        "created_at": month_start(0),
                    },
                )
                self.pools[(district, source)] = Pool(pool_id, district, source, accounts)

    async def ensure_funds(self, pool: Pool, amount: int, m: int) -> None:
        """Appropriate tranches at the start of month ``m`` until the pool covers
        ``amount``."""
        available = pool.accounts["available"]
        while self.books.balance[available] < amount:
            a_id = self.ids.take(Appropriation.__table__)  # type: ignore[attr-defined]
            at = month_start(m)
            tranche = TRANCHE_FEN * (1 + (amount // TRANCHE_FEN))
            document = f"渝财社〔{at.astimezone(SHANGHAI).year}〕{a_id}号"
            entry = await self.books.post(
                key=f"appropriation:{a_id}",
                kind="appropriation",
                lines=[
                    Line(available, "debit", tranche),
                    Line(pool.accounts["appropriated"], "credit", tranche),
                ],
                memo=f"拨款 {document}",
                at=at,
                by=self.finance,
            )
            body = {
                "pool_id": pool.id,
                "amount_fen": tranche,
                "document_no": document,
                "document_date": at.astimezone(SHANGHAI).date().isoformat(),
            }
            await self.buffer.add(
                Appropriation.__table__,  # type: ignore[attr-defined]
                {
                    "id": a_id,
                    "pool_id": pool.id,
                    "amount_fen": tranche,
                    "document_no": document,
                    "document_date": at.astimezone(SHANGHAI).date(),
                    "note": "年度资金分批下达",
                    "status": "posted",
                    "idempotency_key": f"scale:appropriation:{a_id}",
                    "request_hash": hashlib.sha256(
                        json.dumps(body, sort_keys=True).encode()
                    ).hexdigest(),
                    "requested_by": self.finance,
                    "approved_by": self.users.get(f"d{pool.district}_finance"),
                    "entry_id": entry,
                    "created_at": at,
                    "decided_at": at,
                },
            )
            self.appropriations += 1

    async def receivable_account(self, broker: int, district: str, source: str) -> int:
        key = (broker, district, source)
        found = self.receivable.get(key)
        if found is None:
            found = self.receivable[key] = await self.books.account(
                code=f"broker:{broker}:receivable:{district}:{source}",
                kind="broker_receivable",
                name=f"经纪人 {broker} 应追回（{district} {funding_label(source)}）",
                normal_side="debit",
                no_overdraft=False,
                district_code=district,
                source=source,
                broker_id=broker,
                created_at=month_start(0),
            )
        return found

    async def month(self, m: int, kinds: list[TaskKind], n: int) -> None:
        rng = random.Random(f"{self.scale.seed}:tasks:{m}")
        start = month_start(m)
        last = m == MONTHS - 1
        villages = self.world.broker_villages
        month_subsidies: list[dict[str, Any]] = []
        for _ in range(n):
            kind = kinds[rng.randrange(len(kinds))]
            village = villages[rng.randrange(len(villages))]
            keepers = self.world.brokers_of[village]
            broker = keepers[rng.randrange(len(keepers))]
            district = village[:6]
            created = start + timedelta(seconds=rng.randrange(20 * 86400))
            deadline = created + timedelta(days=14)
            quantity = rng.randint(1, 8) if kind.per_person else rng.randint(1, 3)
            r = rng.random()
            if not last:
                status = (
                    "approved" if r < 0.88 else "partly_approved" if r < 0.91
                    else "rejected" if r < 0.93 else "expired" if r < 0.96
                    else "closed" if r < 0.97 else "approved"
                )  # fmt: skip
            else:
                status = (
                    "approved" if r < 0.35 else "partly_approved" if r < 0.37
                    else "rejected" if r < 0.40 else "submitted" if r < 0.60
                    else "township_checked" if r < 0.65 else "claimed" if r < 0.85
                    else "open"
                )  # fmt: skip
            if status == "partly_approved" and quantity == 1:
                status = "approved"
            unclaimed = status in ("open", "expired", "closed")
            claimed_at = None if unclaimed else created + timedelta(days=1)
            submitted_at = (
                claimed_at + timedelta(days=3) if claimed_at and status != "claimed" else None
            )
            decided = status in ("approved", "partly_approved", "rejected")
            decided_at = submitted_at + timedelta(days=2) if submitted_at and decided else None
            approved_qty = (
                quantity
                if status == "approved"
                else quantity - 1
                if status == "partly_approved"
                else None
            )
            amount = kind.rate_fen * approved_qty if approved_qty else None
            fate = rng.random() if approved_qty else 1.0
            voided = fate < VOID_SHARE
            recovered = not voided and not last and fate < VOID_SHARE + RECOVER_SHARE
            task_id = self.ids.take(ServiceTask.__table__)  # type: ignore[attr-defined]
            reversed_at = None
            if voided and decided_at:
                reversed_at = decided_at + timedelta(days=3)
            elif recovered:
                reversed_at = month_start(m + 1) + timedelta(days=19)
            await self.buffer.add(
                ServiceTask.__table__,  # type: ignore[attr-defined]
                {
                    "id": task_id,
                    "task_type_id": kind.id,
                    "task_type_code": kind.code,
                    "region_code": village,
                    "district_code": district,
                    "quantity": quantity,
                    "deadline": deadline,
                    "period": period_of(deadline),
                    "instructions": "",
                    "status": status,
                    "source": "published",
                    "source_key": None,
                    "batch_id": f"scale-{m:02d}-{district}",
                    "assigned": False,
                    "broker_id": None if unclaimed else broker,
                    "claimed_at": claimed_at,
                    "approved_quantity": approved_qty,
                    "approved_at": decided_at if approved_qty else None,
                    "reversed_at": reversed_at,
                    "closed_at": deadline if status in ("closed", "expired") else None,
                    "published_by": self.users.get(f"d{district}_admin"),
                    "created_at": created,
                },
            )
            self.tasks += 1
            if submitted_at is None:
                continue
            sub_id = self.ids.take(TaskSubmission.__table__)  # type: ignore[attr-defined]
            sub_status = {
                "submitted": "pending",
                "township_checked": "township_checked",
                "approved": "approved",
                "partly_approved": "partly_approved",
                "rejected": "rejected",
            }[status]
            if reversed_at is not None:
                sub_status = "reversed"
            await self.buffer.add(
                TaskSubmission.__table__,  # type: ignore[attr-defined]
                {
                    "id": sub_id,
                    "task_id": task_id,
                    "broker_id": broker,
                    "district_code": district,
                    "region_code": village,
                    "quantity": quantity,
                    "note": "",
                    "worker_ids": [],
                    "upload_key": f"scale-{task_id}",
                    "status": sub_status,
                    "submitted_at": submitted_at,
                    "approved_quantity": approved_qty,
                    "rate_fen": kind.rate_fen if approved_qty else None,
                    "amount_fen": amount,
                    "decided_by": self.users.get(f"d{district}_admin") if decided else None,
                    "decided_at": decided_at,
                    "comment": "材料不全，请补充" if status == "rejected" else None,
                },
            )
            if not amount or decided_at is None:
                continue
            pool = self.pools[(district, kind.source)]
            await self.ensure_funds(pool, amount, m)
            subsidy_id = self.ids.take(Subsidy.__table__)  # type: ignore[attr-defined]
            memo = f"任务补贴 任务{task_id} 提交{sub_id}"
            reserve = await self.books.post(
                key=f"subsidy:{subsidy_id}:reserve",
                kind="subsidy_reserve",
                lines=[
                    Line(pool.accounts["reserved"], "debit", amount),
                    Line(pool.accounts["available"], "credit", amount),
                ],
                memo=memo,
                at=decided_at,
            )
            subsidy: dict[str, Any] = {
                "id": subsidy_id,
                "origin_key": f"task:{sub_id}",
                "kind": "task",
                "event_id": None,
                "task_id": task_id,
                "submission_id": sub_id,
                "task_type_code": kind.code,
                "period": None,
                "broker_id": broker,
                "pool_id": pool.id,
                "district_code": district,
                "source": kind.source,
                "quantity": approved_qty,
                "rate_fen": kind.rate_fen,
                "amount_fen": amount,
                "status": "pending",
                "approved_at": decided_at,
                "reserved_at": decided_at,
                "payable_at": None,
                "paid_at": None,
                "voided_at": None,
                "reason": None,
                "batch_id": None,
                "reserve_entry_id": reserve,
                "release_entry_id": None,
                "pay_entry_id": None,
                "receivable_entry_id": None,
                "created_at": decided_at,
            }
            if voided:
                assert reversed_at is not None
                subsidy["release_entry_id"] = await self.books.post(
                    key=f"subsidy:{subsidy_id}:release",
                    kind="subsidy_release",
                    lines=[
                        Line(pool.accounts["available"], "debit", amount),
                        Line(pool.accounts["reserved"], "credit", amount),
                    ],
                    memo=f"作废 {memo}",
                    at=reversed_at,
                    reversal_of=reserve,
                )
                subsidy.update(status="voided", voided_at=reversed_at, reason="抽查未通过")
            elif recovered:
                subsidy["_recover_at"] = reversed_at
            month_subsidies.append(subsidy)
            self.subsidies += 1
        if not last:
            await self.pay(m, month_subsidies)
        for subsidy in month_subsidies:
            subsidy.pop("_recover_at", None)
            await self.buffer.add(Subsidy.__table__, subsidy)  # type: ignore[attr-defined]

    async def pay(self, m: int, subsidies: list[dict[str, Any]]) -> None:
        """The month's payout batches (one per district), executed on the 10th of the
        next month, then the month's after-payment reversals (receivables)."""
        executed = month_start(m + 1) + timedelta(days=9, hours=2)
        period = period_of(month_start(m))
        by_district: dict[str, dict[int, dict[str, list[dict[str, Any]]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(list))
        )
        for s in subsidies:
            if s["status"] == "pending":
                by_district[s["district_code"]][s["broker_id"]][s["source"]].append(s)
        for district in sorted(by_district):
            brokers = by_district[district]
            batch_id = self.ids.take(PayoutBatch.__table__)  # type: ignore[attr-defined]
            lines: list[dict[str, Any]] = []
            for broker in sorted(brokers):
                line_id = self.ids.take(PayoutLine.__table__)  # type: ignore[attr-defined]
                gross_total = netted_total = 0
                for source in sorted(brokers[broker]):
                    items = brokers[broker][source]
                    pool = self.pools[(district, source)]
                    gross = sum(s["amount_fen"] for s in items)
                    postings = [
                        Line(pool.accounts["paid"], "debit", gross),
                        Line(pool.accounts["reserved"], "credit", gross),
                    ]
                    owed_key = (broker, district, source)
                    netted = min(self.owed.get(owed_key, 0), gross)
                    if netted > 0:
                        postings += [
                            Line(pool.accounts["available"], "debit", netted),
                            Line(self.receivable[owed_key], "credit", netted),
                        ]
                        self.owed[owed_key] -= netted
                    reference = f"回单{batch_id}-{line_id}"
                    entry = await self.books.post(
                        key=f"payout:{batch_id}:{line_id}:{source}",
                        kind="payout",
                        lines=postings,
                        memo=f"发放 批次{batch_id} 经纪人{broker} {reference}",
                        at=executed,
                        by=self.finance,
                    )
                    for s in items:
                        s.update(
                            status="paid",
                            batch_id=batch_id,
                            payable_at=executed - timedelta(hours=1),
                            paid_at=executed,
                            pay_entry_id=entry,
                        )
                    gross_total += gross
                    netted_total += netted
                lines.append(
                    {
                        "id": line_id,
                        "batch_id": batch_id,
                        "broker_id": broker,
                        "gross_fen": gross_total,
                        "netted_fen": netted_total,
                        "net_fen": gross_total - netted_total,
                        "status": "paid",
                        "reference": f"回单{batch_id}-{line_id}",
                        "paid_at": executed,
                    }
                )
            await self.buffer.add(
                PayoutBatch.__table__,  # type: ignore[attr-defined]
                {
                    "id": batch_id,
                    "district_code": district,
                    "period": period,
                    "sequence": 1,
                    "status": "executed",
                    "mode": "offline",
                    "idempotency_key": f"scale:{district}:{period}",
                    "created_by": self.users.get(f"d{district}_finance"),
                    "approved_by": self.finance,
                    "executed_by": self.users.get(f"d{district}_finance"),
                    "gross_fen": sum(ln["gross_fen"] for ln in lines),
                    "netted_fen": sum(ln["netted_fen"] for ln in lines),
                    "net_fen": sum(ln["net_fen"] for ln in lines),
                    "created_at": executed - timedelta(days=2),
                    "approved_at": executed - timedelta(days=1),
                    "executed_at": executed,
                },
            )
            for line in lines:
                await self.buffer.add(PayoutLine.__table__, line)  # type: ignore[attr-defined]
        for s in subsidies:
            at = s.get("_recover_at")
            if at is None or s["status"] != "paid":
                continue
            pool = self.pools[(s["district_code"], s["source"])]
            account = await self.receivable_account(s["broker_id"], s["district_code"], s["source"])
            s["receivable_entry_id"] = await self.books.post(
                key=f"subsidy:{s['id']}:receivable",
                kind="subsidy_receivable",
                lines=[
                    Line(account, "debit", s["amount_fen"]),
                    Line(pool.accounts["reversed"], "credit", s["amount_fen"]),
                ],
                memo=f"追回 任务补贴 任务{s['task_id']} 提交{s['submission_id']}",
                at=at,
            )
            self.owed[(s["broker_id"], s["district_code"], s["source"])] += s["amount_fen"]
            s.update(status="reversed", voided_at=at, reason="抽查未通过（已支付，追回）")


async def _guards(conn: AsyncConnection, *, drop: bool) -> None:
    for statement in ddl.statements(conn.dialect.name, drop=drop):
        await conn.execute(text(statement))


async def generate(engine: AsyncEngine, scale: Scale, world: World, progress: Any) -> int | None:
    async with engine.connect() as conn:
        if (await conn.execute(select(func.count()).select_from(ServiceTask))).scalar_one():
            return None
        if (await conn.execute(select(func.count()).select_from(FundPool))).scalar_one():
            raise RuntimeError("已有资金池：任务与资金部分需要在新数据库上生成")
        kinds = [
            TaskKind(int(r.id), r.code, int(r.rate_fen), r.funding_source, bool(r.per_person))
            for r in (
                await conn.execute(
                    select(TaskType)
                    .where(
                        col(TaskType.current),
                        col(TaskType.active),
                        col(TaskType.code).not_in((HR_UPDATE, RIGHTS_PROTECTION)),
                        col(TaskType.rate_fen) > 0,
                    )
                    .order_by(col(TaskType.code))
                )
            ).all()
        ]
        users = {
            str(name): int(uid or 0)
            for name, uid in (
                await conn.execute(
                    select(col(User.username), col(User.id)).where(
                        col(User.role).in_(("finance", "district_admin"))
                    )
                )
            ).all()
        }
        ids = Ids()
        await ids.load(conn)
        year = Year(conn, scale, world, ids, users)
        per_month = [
            scale.tasks // MONTHS + (1 if m < scale.tasks % MONTHS else 0) for m in range(MONTHS)
        ]
        for m in range(MONTHS):
            await begin(conn)
            await _guards(conn, drop=True)
            if m == 0:
                await year.make_pools(world.districts)
            await year.month(m, kinds, per_month[m])
            await year.buffer.flush()
            await year.books.write_balances(conn)
            await _guards(conn, drop=False)
            await conn.commit()
            progress(
                f"  任务 {period_of(month_start(m))}: 累计 {year.tasks:,} 个任务，"
                f"{year.subsidies:,} 笔补贴，{year.books.entries:,} 笔分录"
            )
        await begin(conn)
        await fix_sequences(conn, TABLES)
        await conn.commit()
        return sum(year.sink.rows_written.values())
