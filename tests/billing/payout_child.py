"""Runs a payout batch's execution in a separate process, committing after every
line, and kills itself with SIGKILL at the N-th SQL statement (0: never). The
kill-and-rerun test starts it again and again until a run finishes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from sqlalchemy import event

from billing import payouts
from marketplace.access import Actor
from marketplace.db import begin_write, create_engine, session_factory


async def run(url: str, batch_id: int, kill_at: int, user_id: int) -> None:
    engine = create_engine(url)
    count = 0

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _maybe_die(*_: Any) -> None:
        nonlocal count
        count += 1
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    actor = Actor(user_id=user_id, username="finance", role="finance", region_code="50")
    async with session_factory(engine)() as session:
        await begin_write(session)

        async def commit() -> None:
            await session.commit()
            await begin_write(session)

        await payouts.execute(
            session,
            actor=actor,
            batch_id=batch_id,
            data=payouts.ExecuteIn(mode="online"),
            after_line=commit,
            chunk=2,  # several commits in one run: kills land before, inside and after them
        )
        await session.commit()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
