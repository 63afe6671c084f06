"""Named data-set sizes for ``laowu demo --scale`` and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Scale:
    name: str
    brokers: int
    workers: int
    organizations: int
    jobs: int
    tasks: int  # public-service tasks over the 12 months, with their money
    seed: int = 20261127

    def times(self, factor: float) -> Scale:
        """Every count multiplied by ``factor`` (at least one broker, organisation)."""
        if factor <= 0:
            raise ValueError("scale factor must be positive")
        return replace(
            self,
            name=f"{self.name}×{factor:g}",
            brokers=max(1, round(self.brokers * factor)),
            workers=round(self.workers * factor),
            organizations=max(1, round(self.organizations * factor)),
            jobs=round(self.jobs * factor),
            tasks=round(self.tasks * factor),
        )


SCALES: dict[str, Scale] = {
    # The whole municipality (issue 9): 11,270 villages, 12,000 brokers.
    "chongqing": Scale(
        "chongqing",
        brokers=12_000,
        workers=3_000_000,
        organizations=20_000,
        jobs=100_000,
        tasks=1_000_000,
    ),
    # For tests: every part present, seconds to generate.
    "tiny": Scale("tiny", brokers=60, workers=3_000, organizations=40, jobs=200, tasks=3_000),
}
