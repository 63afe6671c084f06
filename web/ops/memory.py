"""glibc's malloc arenas, limited to two per process (docs/operations.md, "Load test").

The embedded search backend opens a tantivy index writer, which starts threads of its
own, for every index update the outbox delivers. glibc gives a new thread's
allocations an arena of their own (up to eight per core) and keeps what is freed in
it, so a process that updates the index grows with its writers: 70–110 MiB of
anonymous memory over 30 updates, against about 20 MiB with two arenas
(tests/web/test_operations_memory.py). A ``MALLOC_ARENA_MAX`` set in the environment
is left to glibc."""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas() -> bool:
    """Whether the limit was set (not where the C library is not glibc, or the
    environment already chose)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, ARENAS))
