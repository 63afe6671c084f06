"""Hypothesis strategies for uploaded files: arbitrary bytes, damaged versions of
good files (truncated, bytes flipped), and polyglots (one format's magic bytes in
front of another's body)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# ``make fuzz`` raises it; the suite stays quick.
EXAMPLES = int(os.environ.get("LAOWU_FUZZ_EXAMPLES", "0")) or 60

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="LAOWU_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def damaged(good: bytes) -> st.SearchStrategy[bytes]:
    """``good`` truncated, with bytes overwritten, or with junk spliced in."""
    n = len(good)
    truncated = st.integers(0, n - 1).map(lambda k: good[:k])
    flipped = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), max_size=8).map(
        lambda edits: _overwrite(good, edits)
    )
    spliced = st.tuples(st.integers(0, n), st.binary(max_size=64)).map(
        lambda p: good[: p[0]] + p[1] + good[p[0] :]
    )
    return st.one_of(truncated, flipped, spliced)


def _overwrite(good: bytes, edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(good)
    for index, value in edits:
        data[index] = value
    return bytes(data)


def polyglot(heads: list[bytes], bodies: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.tuples(st.sampled_from(heads), st.sampled_from(bodies), st.binary(max_size=32)).map(
        lambda t: t[0] + t[2] + t[1]
    )


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    for row in rows:
        # Characters a worksheet cannot hold at all (Excel could not have written them).
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def image_bytes(fmt: str, *, exif: bool = False) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (24, 16), (200, 30, 30))
    out = io.BytesIO()
    kwargs: dict[str, object] = {}
    if exif:
        info = Image.Exif()
        info[0x0132] = "2026:05:01 10:00:00"
        kwargs["exif"] = info
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def raises_only(expected: tuple[type[BaseException], ...], call: Callable[[], object]) -> None:
    """Run ``call``; the domain's errors are fine, anything else fails the test."""
    with contextlib.suppress(expected):
        call()
