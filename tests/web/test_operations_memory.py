"""A process that writes the embedded search index keeps flat: glibc's malloc arenas
are limited to two (web/ops/memory.py). Each run is a fresh interpreter, since the
arenas belong to the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Thirty index updates, as the outbox delivers them: each opens a tantivy writer,
# whose threads take new malloc arenas. Prints the anonymous memory they added, in MiB.
UPDATES = """
import asyncio, re, sys
from pathlib import Path
from matching.search.base import WORKERS, SearchDoc
from matching.search.embedded import EmbeddedBackend
from web.ops.memory import limit_malloc_arenas

def anon():
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"RssAnon:\\s+(\\d+)", status).group(1)) / 1024

async def main():
    if sys.argv[2] == "limited":
        assert limit_malloc_arenas()
    backend = EmbeddedBackend(Path(sys.argv[1]))
    doc = SearchDoc(id=1, text="电焊工 巫溪县", keywords={"region": ["500238"]}, numbers={})
    await backend.upsert(WORKERS, [doc])
    before = anon()
    for i in range(30):
        await backend.upsert(WORKERS, [SearchDoc(id=i + 2, text=doc.text, keywords=doc.keywords, numbers={})])
    print(anon() - before)

asyncio.run(main())
"""


def _growth(tmp_path: Path, mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", UPDATES, str(tmp_path / mode), mode],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_index_updates_do_not_grow_the_process_with_two_arenas(tmp_path: Path) -> None:
    limited = _growth(tmp_path, "limited")
    assert limited < 40, f"{limited:.0f} MiB after 30 index updates"
    # Unlimited, the same updates took about 70 MiB on the 2-core machine.
    assert _growth(tmp_path, "unlimited") > limited
