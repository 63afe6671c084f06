"""A small in-process rate limit for the public, unauthenticated endpoints (the broker
application form and its status lookup), keyed by client address.

In-process means per server process: behind several ``laowu serve`` processes each
keeps its own window, which still bounds a single client's rate by the process
count. The proxy in front should also limit (docs/brokers.md).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.exceptions import TooManyRequestsException

# Bounds the memory a flood of distinct addresses can take.
MAX_KEYS = 50_000


@dataclass
class Window:
    limit: int
    seconds: float
    hits: dict[str, deque[float]] = field(default_factory=dict)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if len(self.hits) > MAX_KEYS:
            self.hits.clear()
        recent = self.hits.setdefault(key, deque())
        while recent and recent[0] <= now - self.seconds:
            recent.popleft()
        if len(recent) >= self.limit:
            return False
        recent.append(now)
        return True


# Submissions: a village office may send a handful from one address in an hour.
SUBMIT = ("broker_apply_submit", 20, 3600.0)
# Status lookups, including wrong guesses: enough for real use, far too few to guess.
TRACK = ("broker_apply_track", 30, 600.0)


def check(request: Request[Any, Any, Any], which: tuple[str, int, float]) -> None:
    name, limit, seconds = which
    state = request.app.state
    window = state.get(name)
    if window is None:
        window = Window(limit=limit, seconds=seconds)
        state[name] = window
    client = request.scope.get("client")
    key = client[0] if client else "unknown"
    if not window.allow(key):
        raise TooManyRequestsException("请求过于频繁，请稍后再试")
