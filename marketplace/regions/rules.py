"""Pure rules about regions: the staffing rule and the coverage roll-up."""

from __future__ import annotations

from dataclasses import dataclass

RESIDENTS_PER_EXTRA_BROKER = 5000


def required_brokers(population: int | None) -> int:
    """The bureau's plan: one broker per village, one more per 5,000 residents.

    An unknown population counts as one broker: every village needs at least one.
    """
    if population is None:
        return 1
    if population < 0:
        raise ValueError("population cannot be negative")
    return 1 + population // RESIDENTS_PER_EXTRA_BROKER


def prefix_bounds(prefix: str) -> tuple[str, str | None] | None:
    """Region codes (digits) starting with ``prefix`` are exactly those in
    ``[low, high)`` (no upper bound for a prefix of nines); ``None`` if ``prefix`` is not
    all digits. 500103 → [500103, 500104): 500103001001 is in, 500104001001 is not."""
    if not prefix.isdigit():
        return None
    if set(prefix) == {"9"}:
        return prefix, None
    return prefix, str(int(prefix) + 1).zfill(len(prefix))


@dataclass
class Tally:
    villages: int = 0
    villages_covered: int = 0
    brokers_required: int = 0
    brokers_active: int = 0
    shortfall: int = 0

    def add_village(self, population: int | None, active: int) -> None:
        need = required_brokers(population)
        self.villages += 1
        self.villages_covered += 1 if active > 0 else 0
        self.brokers_required += need
        self.brokers_active += active
        # A surplus in one village does not staff another: shortfall is per village.
        self.shortfall += max(0, need - active)

    def merge(self, other: Tally) -> None:
        self.villages += other.villages
        self.villages_covered += other.villages_covered
        self.brokers_required += other.brokers_required
        self.brokers_active += other.brokers_active
        self.shortfall += other.shortfall
