"""The normaliser's evaluation set (eval_variants.csv) and its scoring.

Rows are split by a hash of the text: ``dev`` rows were used while tuning the taxonomy
and the cutoff, ``holdout`` rows (about a third) only for the final numbers.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path

from matching.normalize import Normalizer

PATH = Path(__file__).with_name("eval_variants.csv")


@dataclass(frozen=True)
class Row:
    text: str
    expected: str | None
    kind: str

    @property
    def split(self) -> str:
        return "holdout" if zlib.crc32(self.text.encode()) % 3 == 0 else "dev"


def load_rows() -> list[Row]:
    with PATH.open(encoding="utf-8") as f:
        lines = [line for line in f if not line.startswith("#")]
    return [Row(r["text"], r["expected"] or None, r["kind"]) for r in csv.DictReader(lines)]


def predict(normalizer: Normalizer, text: str) -> str | None:
    match = normalizer.normalize(text)
    return match.key if match else None


def accuracy(normalizer: Normalizer, rows: list[Row]) -> tuple[float, list[tuple[Row, str | None]]]:
    """Top-1 accuracy (an expected None counts as right only when nothing matched)."""
    wrong = [(r, got) for r in rows if (got := predict(normalizer, r.text)) != r.expected]
    return 1 - len(wrong) / len(rows), wrong
