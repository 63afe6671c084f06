"""glibc's malloc arenas, limited to two per process (docs/operations.md, "Memory").

The embedded search backend opens a tantivy index writer, which starts threads of its
own, for every index update the outbox delivers. glibc gives a new thread's
allocations an arena of their own (up to eight per core) and keeps what is freed in
it, so a process that updates the index grows with every writer: about 70 MB of
anonymous memory over 30 updates, and 235 MiB in a server that drained the outbox
under load at Chongqing scale, where the servers that did not stayed near 150 MiB.
With two arenas it stays flat (a 20 MB rise over the same 30 updates). A
``MALLOC_ARENA_MAX`` set in the environment is left to glibc."""

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
