"""Periodic duties of the platform (monthly scoring, …), run by whichever process
drains the outbox: the server in the embedded default, `laowu worker` at scale.

Each duty decides for itself whether it is due and is idempotent, so two processes
running it, or a restart in the middle, do no harm.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.access import SYSTEM
from marketplace.clock import utcnow
from marketplace.db import unit_of_work
from marketplace.scoring import service as scoring

log = logging.getLogger(__name__)

Duty = Callable[[async_sessionmaker[AsyncSession], datetime], Awaitable[str | None]]
# How often the duties are looked at; each is cheap when there is nothing to do.
INTERVAL_SECONDS = 600.0


async def monthly_scores(factory: async_sessionmaker[AsyncSession], now: datetime) -> str | None:
    """Score the month just ended, once, after it ends."""
    async with unit_of_work(factory) as session:
        period = await scoring.monthly_due(session, now)
        if period is None:
            return None
        result = await scoring.compute(
            session=session, actor=SYSTEM, period=period, trigger="worker", now=now
        )
        return f"{period} 积分已计算：{result.scored} 名经纪人"


DUTIES: list[Duty] = [monthly_scores]


class Schedule:
    """Runs the duties at most every ``interval`` seconds."""

    def __init__(self, interval: float = INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._last = float("-inf")

    async def tick(self, factory: async_sessionmaker[AsyncSession]) -> list[str]:
        if time.monotonic() - self._last < self.interval:
            return []
        self._last = time.monotonic()
        done: list[str] = []
        for duty in DUTIES:
            try:
                message = await duty(factory, utcnow())
            except Exception:  # one failing duty must not stop the others or the outbox
                log.exception("scheduled duty %s failed", duty.__name__)
                continue
            if message:
                log.info(message)
                done.append(message)
        return done
