"""``GET /metrics`` in the Prometheus text format (version 0.0.4), no dependency.

Request counts and latencies are kept in this process (each ``laowu serve`` process
has its own: scrape every process, docs/operations.md); outbox lag and fund-pool
balances are read from the database at scrape time, so any process reports them.

Who may read it: with ``LAOWU_METRICS_TOKEN`` set, callers presenting
``Authorization: Bearer <token>``; without it, only direct connections from the
machine itself (loopback, no proxy forwarding headers). Everyone else gets 403.
"""

from __future__ import annotations

import hmac
import logging
import os
import resource
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response, get
from sqlalchemy import func, select
from sqlmodel import col

from billing.ledger.models import LedgerAccount
from billing.models import FundPool
from marketplace.clock import as_utc, utcnow
from marketplace.events import OutboxEvent

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
STARTED = time.time()
log = logging.getLogger(__name__)


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: int = 0
    sum: float = 0.0


@dataclass
class Registry:
    """The request counters of this process."""

    requests: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    latency: dict[tuple[str, str, str], _Histogram] = field(
        default_factory=lambda: defaultdict(_Histogram)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe_request(self, method: str, route: str, status: str, seconds: float) -> None:
        key = (method, route, status)
        with self.lock:
            self.requests[key] += 1
            hist = self.latency[key]
            hist.total += 1
            hist.sum += seconds
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    hist.counts[i] += 1

    def render(self) -> list[str]:
        with self.lock:
            requests = dict(self.requests)
            latency = {k: (list(h.counts), h.total, h.sum) for k, h in self.latency.items()}
        lines = [
            "# HELP laowu_http_requests_total HTTP requests by method, route template and status class.",
            "# TYPE laowu_http_requests_total counter",
        ]
        for (method, route, status), count in sorted(requests.items()):
            lines.append(f"laowu_http_requests_total{_labels(method, route, status)} {count}")
        lines += [
            "# HELP laowu_http_request_duration_seconds Time to answer, by method, route template and status class.",
            "# TYPE laowu_http_request_duration_seconds histogram",
        ]
        for (method, route, status), (counts, total, total_sum) in sorted(latency.items()):
            for bound, count in zip(BUCKETS, counts, strict=True):
                labels = _labels(method, route, status, le=_number(bound))
                lines.append(f"laowu_http_request_duration_seconds_bucket{labels} {count}")
            labels = _labels(method, route, status, le="+Inf")
            lines.append(f"laowu_http_request_duration_seconds_bucket{labels} {total}")
            base = _labels(method, route, status)
            lines.append(f"laowu_http_request_duration_seconds_sum{base} {total_sum:.6f}")
            lines.append(f"laowu_http_request_duration_seconds_count{base} {total}")
        return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value))


def _labels(method: str, route: str, status: str, *, le: str | None = None) -> str:
    parts = [f'method="{_escape(method)}"', f'route="{_escape(route)}"', f'status="{status}"']
    if le is not None:
        parts.append(f'le="{le}"')
    return "{" + ",".join(parts) + "}"


def resident_memory_bytes() -> int:
    """Current resident set size (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def database_lines(session: Any) -> list[str]:
    now = utcnow()
    unprocessed, oldest = (
        await session.execute(
            select(func.count(), func.min(col(OutboxEvent.created_at))).where(
                col(OutboxEvent.processed_at).is_(None)
            )
        )
    ).one()
    age = max(0.0, (now - as_utc(oldest)).total_seconds()) if oldest is not None else 0.0
    lines = [
        "# HELP laowu_outbox_unprocessed_events Outbox events not yet taken by every handler.",
        "# TYPE laowu_outbox_unprocessed_events gauge",
        f"laowu_outbox_unprocessed_events {int(unprocessed)}",
        "# HELP laowu_outbox_oldest_unprocessed_age_seconds Age of the oldest unprocessed event (0 if none).",
        "# TYPE laowu_outbox_oldest_unprocessed_age_seconds gauge",
        f"laowu_outbox_oldest_unprocessed_age_seconds {age:.3f}",
        "# HELP laowu_fund_pool_balance_fen Fund pool balances in fen (分), by district, source and account.",
        "# TYPE laowu_fund_pool_balance_fen gauge",
    ]
    available = LedgerAccount.__table__.alias("available")  # type: ignore[attr-defined]
    reserved = LedgerAccount.__table__.alias("reserved")  # type: ignore[attr-defined]
    rows = (
        await session.execute(
            select(
                col(FundPool.district_code),
                col(FundPool.source),
                available.c.balance_fen,
                reserved.c.balance_fen,
            )
            .join(available, available.c.id == col(FundPool.available_account_id))
            .join(reserved, reserved.c.id == col(FundPool.reserved_account_id))
            .order_by(col(FundPool.district_code), col(FundPool.source))
        )
    ).all()
    for district, source, avail, held in rows:
        for kind, value in (("available", avail), ("reserved", held)):
            labels = f'district="{_escape(district)}",source="{_escape(source)}",account="{kind}"'
            lines.append(f"laowu_fund_pool_balance_fen{{{labels}}} {int(value)}")
    return lines


def process_lines() -> list[str]:
    return [
        "# HELP process_resident_memory_bytes Resident memory of this server process.",
        "# TYPE process_resident_memory_bytes gauge",
        f"process_resident_memory_bytes {resident_memory_bytes()}",
        "# HELP process_start_time_seconds Start of this process, seconds since the epoch.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {STARTED:.3f}",
    ]


def may_read(request: Request[Any, Any, Any]) -> bool:
    token = os.environ.get("LAOWU_METRICS_TOKEN", "").strip()
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)
    client = request.scope.get("client")
    if not client or client[0] not in LOOPBACK:
        return False
    # A proxy on the same machine connects from loopback on behalf of anyone.
    return not any(name in request.headers for name in FORWARDING_HEADERS)


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[str]:
    if not may_read(request):
        return Response(
            "无权读取监控指标：请从本机访问，或携带 LAOWU_METRICS_TOKEN 令牌\n",
            status_code=403,
            media_type="text/plain; charset=utf-8",
        )
    try:
        async with request.app.state.sessions() as session:
            lines = ["laowu_database_up 1", *await database_lines(session)]
    except Exception:  # still report the process; the gauge says what is missing
        log.exception("metrics: the database did not answer")
        lines = ["laowu_database_up 0"]
    lines = [
        "# HELP laowu_database_up Whether the database answered this scrape.",
        "# TYPE laowu_database_up gauge",
        *lines,
    ]
    body = "\n".join([*request.app.state.metrics.render(), *lines, *process_lines()]) + "\n"
    return Response(body, media_type=CONTENT_TYPE)
